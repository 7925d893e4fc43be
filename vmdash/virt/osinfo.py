"""The OS variants of Debian's osinfo-db, read with lxml (no libosinfo, no GObject).

The database is XML under /usr/share/osinfo (the package) and /etc/osinfo
(local overrides, read later so they win): os/<vendor>/<id>.xml. We keep
what a new VM's defaults need:

- resources (RAM, vCPUs, disk) of the entry itself, never inherited, x86_64
  before "all": `recommended`, else 2 x `minimum` (virt-manager's rule);
- devices inherited through `derives-from` / `clones` (a child's
  supported='false' takes one away): they decide virtio against e1000e/sata;
- firmware: UEFI offered or required (bios supported='false').

Entries that share an id (the package's and an override) are merged.
Debian 12's db ends at Ubuntu 22.10 and has no debian12: `GENERIC_LINUX`
stands in with modern defaults.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

DB_DIRS = (Path("/usr/share/osinfo"), Path("/etc/osinfo"))
GIB = 1024**3
MIB = 1024**2

# PCI ids (and the q35 chipset) osinfo names, and what they mean for our XML.
NET_MODELS = {
    "http://pcisig.com/pci/1af4/1000": "virtio",
    "http://pcisig.com/pci/1af4/1041": "virtio",
    "http://pcisig.com/pci/8086/10d3": "e1000e",
    "http://pcisig.com/pci/8086/100e": "e1000",
    "http://pcisig.com/pci/10ec/8139": "rtl8139",
}
VIRTIO_BLOCK = {"http://pcisig.com/pci/1af4/1001", "http://pcisig.com/pci/1af4/1042"}
Q35 = "http://qemu.org/chipset/x86/q35"
NET_PREFERENCE = ("virtio", "e1000e", "e1000", "rtl8139")


@dataclass(frozen=True)
class OsVariant:
    """One OS and the defaults a new VM of it gets."""

    id: str  # the short id: win11, debian11, ...
    name: str
    family: str
    memory_mib: int
    vcpus: int
    disk_gib: int
    net_model: str
    disk_bus: str
    machine: str  # q35 or pc
    uefi: str  # "required", "offered" or ""
    tpm: bool
    secure_boot: bool
    release: str = ""

    @property
    def windows(self) -> bool:
        return self.family == "winnt"


GENERIC_LINUX = OsVariant(
    id="linux2022",
    name="Generic Linux 2022+ (Debian 12, Ubuntu 24.04, Fedora 40, ...)",
    family="linux",
    memory_mib=4096,
    vcpus=2,
    disk_gib=20,
    net_model="virtio",
    disk_bus="virtio",
    machine="q35",
    uefi="offered",
    tpm=False,
    secure_boot=False,
    release="2022",
)
GENERIC = OsVariant(
    id="generic",
    name="Generic or unknown OS",
    family="",
    memory_mib=1024,
    vcpus=1,
    disk_gib=10,
    net_model="e1000",
    disk_bus="sata",
    machine="q35",
    uefi="",
    tpm=False,
    secure_boot=False,
)


@dataclass
class _Entry:
    """One <os id=...>, merged over every file that names it."""

    nodes: list[etree._Element]

    def texts(self, tag: str) -> list[str]:
        return [e.text.strip() for n in self.nodes for e in n.findall(tag) if e.text]

    def first(self, tag: str) -> str:
        plain = [
            e.text.strip()
            for n in self.nodes
            for e in n.findall(tag)
            if e.text and e.get("{http://www.w3.org/XML/1998/namespace}lang") is None
        ]
        return plain[-1] if plain else ""

    def all(self, path: str) -> list[etree._Element]:
        return [e for n in self.nodes for e in n.findall(path)]


class Db:
    """The database read once: id -> entry, short id -> id."""

    def __init__(self, dirs: tuple[Path, ...] = DB_DIRS) -> None:
        self.entries: dict[str, _Entry] = {}
        self.short: dict[str, str] = {}
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        for base in dirs:
            for path in sorted((base / "os").glob("*/*.xml")):
                try:
                    root = etree.parse(str(path), parser).getroot()
                except etree.XMLSyntaxError:
                    continue  # a broken override must not hide the rest
                for node in root.findall("os"):
                    self.entries.setdefault(node.get("id", ""), _Entry([])).nodes.append(node)
        for os_id, entry in self.entries.items():
            for short in entry.texts("short-id"):
                self.short[short] = os_id

    def devices(self, os_id: str, seen: frozenset[str] = frozenset()) -> set[str]:
        """The device ids of `os_id` and what it derives from or clones."""
        entry = self.entries.get(os_id)
        if entry is None or os_id in seen:
            return set()
        found: set[str] = set()
        for link in entry.all("derives-from") + entry.all("clones"):
            found |= self.devices(link.get("id", ""), seen | {os_id})
        for dev in entry.all("devices/device"):
            if dev.get("supported") == "false":
                found.discard(dev.get("id", ""))
            else:
                found.add(dev.get("id", ""))
        return found

    def variant(self, short_id: str) -> OsVariant | None:
        if short_id == GENERIC_LINUX.id:
            return GENERIC_LINUX
        if short_id == GENERIC.id:
            return GENERIC
        os_id = self.short.get(short_id)
        if os_id is None:
            return None
        return _variant(self, short_id, self.entries[os_id], self.devices(os_id))

    def choices(self) -> list[tuple[str, str]]:
        """(short id, name) of every OS with a release date, newest first, generics first."""
        dated = []
        for entry in self.entries.values():
            shorts, released = entry.texts("short-id"), entry.first("release-date")
            if shorts and released and not entry.first("eol-date"):
                dated.append((released, shorts[0], entry.first("name") or shorts[0]))
        dated.sort(reverse=True)
        head = [(GENERIC_LINUX.id, GENERIC_LINUX.name), (GENERIC.id, GENERIC.name)]
        return head + [(s, n) for _r, s, n in dated]


def _resource(entry: _Entry, tag: str) -> int:
    """recommended, else 2 x minimum; x86_64 before 'all'; 0 when neither says."""
    blocks = entry.all("resources")
    ordered = [b for b in blocks if b.get("arch") == "x86_64"] + [
        b for b in blocks if b.get("arch") == "all"
    ]
    for kind, factor in (("recommended", 1), ("minimum", 2)):
        for block in ordered:
            value = block.findtext(f"{kind}/{tag}")
            if value and value.strip().isdigit():
                return int(value) * factor
    return 0


def _firmware(entry: _Entry) -> tuple[str, bool]:
    """(uefi: required/offered/'', bios refused)."""
    kinds = {(f.get("type"), f.get("supported", "true")) for f in entry.all("firmware")}
    bios_refused = ("bios", "false") in kinds
    if ("efi", "true") in kinds:
        return ("required" if bios_refused else "offered"), bios_refused
    return "", bios_refused


def _variant(db: Db, short_id: str, entry: _Entry, devices: set[str]) -> OsVariant:
    family = entry.first("family")
    nets = [NET_MODELS[d] for d in devices if d in NET_MODELS]
    net = next((m for m in NET_PREFERENCE if m in nets), "virtio" if family == "linux" else "e1000")
    machine = "q35" if Q35 in devices or family in ("linux", "winnt") else "pc"
    bus = "virtio" if devices & VIRTIO_BLOCK else ("sata" if machine == "q35" else "ide")
    uefi, bios_refused = _firmware(entry)
    ram, cpus, disk = (_resource(entry, t) for t in ("ram", "n-cpus", "storage"))
    # osinfo-db 2022 has no TPM element: Windows that refuses BIOS (11, Server 2022)
    # also refuses to install without TPM 2.0 and Secure Boot.
    needs_tpm = family == "winnt" and bios_refused
    return OsVariant(
        id=short_id,
        name=entry.first("name") or short_id,
        family=family,
        memory_mib=(ram // MIB) or GENERIC.memory_mib,
        vcpus=cpus or GENERIC.vcpus,
        disk_gib=(disk // GIB) or GENERIC.disk_gib,
        net_model=net,
        disk_bus=bus,
        machine=machine,
        uefi=uefi,
        tpm=needs_tpm,
        secure_boot=needs_tpm,
        release=entry.first("release-date"),
    )


_lock = threading.Lock()
_db: Db | None = None


def db() -> Db:
    """The database, read on first use (about 0.5 s) and kept."""
    global _db
    with _lock:
        if _db is None:
            _db = Db()
        return _db


def lookup(short_id: str) -> OsVariant | None:
    """The OS with this short id (win11, debian11, linux2022), or None."""
    return db().variant(short_id)
