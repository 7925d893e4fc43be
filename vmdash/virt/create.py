"""New VMs, clones, imports and delete-with-storage: the steps and their undo.

Every step that makes something (a volume, a definition) is remembered, and
a failure at any later step takes back what was made, newest first, before
the error goes on (`Undo`). libvirt errors come out as VirtError kinds.

Which accelerator: a host offers type='kvm' when /dev/kvm exists, but a
software nested module (kvm_pvm) also makes /dev/kvm, and stock guests die
on it. So kvm is chosen only when libvirt offers it *and* the host CPU has
the hardware virtualisation flag (vmx / svm in the capabilities' host CPU),
which also works for remote hosts; else TCG (type='qemu'). `HostFacts.why`
says which was chosen and why, and the page shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import libvirt
from lxml import etree

from vmdash.virt import cloudinit, storage
from vmdash.virt.connection import pool
from vmdash.virt.errors import NotFound, VirtError, still_there
from vmdash.virt.refs import DomainRef, HostRef, VolumeRef
from vmdash.virt.xml import parse
from vmdash.virt.xml.newdomain import DiskKind, Firmware, VmSpec, build
from vmdash.virt.xml.volume import VolumeFormat

T = TypeVar("T")
Progress = Callable[[float, str], None]


def _call(host: HostRef, fn: Callable[[libvirt.virConnect], T], doing: str) -> T:
    return pool().call(host.uri, fn, doing)


# What the host offers


@dataclass(frozen=True)
class PoolFree:
    name: str
    available: int  # bytes
    active: bool


@dataclass(frozen=True)
class HostFacts:
    virt_type: str  # kvm or qemu
    why: str
    arch: str
    machines: tuple[str, ...]
    uefi: bool
    secure_boot: bool
    tpm: bool
    memory_mib: int
    max_vcpus: int
    domains: frozenset[str]
    networks: tuple[tuple[str, bool], ...]  # (name, active)
    pools: tuple[PoolFree, ...]

    def pool(self, name: str) -> PoolFree | None:
        return next((p for p in self.pools if p.name == name), None)


def _choose_type(caps: etree._Element, arch: str) -> tuple[str, str]:
    arches = [a for a in caps.findall("guest/arch") if a.get("name") == arch]
    offered = {d.get("type") for a in arches for d in a.findall("domain")}
    flags = {f.get("name") for f in caps.findall("host/cpu/feature")}
    if "kvm" in offered and flags & {"vmx", "svm"}:
        return "kvm", "KVM: libvirt offers it and the CPU has hardware virtualisation."
    if "kvm" in offered:
        return "qemu", (
            "TCG (type='qemu'): /dev/kvm exists but the CPU shows no vmx/svm flag "
            "(a nested software KVM module); guests would die under it."
        )
    if "qemu" not in offered and offered:
        only = sorted(t for t in offered if t)[0]
        return only, f"type='{only}': the only kind of domain this host offers."
    return "qemu", "TCG (type='qemu'): this host offers no KVM."


def _domcaps(conn: libvirt.virConnect, arch: str, virt_type: str) -> etree._Element:
    """The domain capabilities; an empty set from a driver without them (test:///)."""
    try:
        return parse(conn.getDomainCapabilities(None, arch, None, virt_type, 0))
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise
        return etree.Element("domainCapabilities")


def _values(node: etree._Element, path: str) -> set[str]:
    return {v.text or "" for v in node.findall(path)}


def _read_facts(conn: libvirt.virConnect, arch: str) -> HostFacts:
    caps = parse(conn.getCapabilities())
    virt_type, why = _choose_type(caps, arch)
    dc = _domcaps(conn, arch, virt_type)
    arches = [a for a in caps.findall("guest/arch") if a.get("name") == arch]
    machines = tuple(sorted({m.text or "" for a in arches for m in a.findall("machine")}))
    loader = "os/loader"
    uefi = "efi" in _values(dc, "os/enum[@name='firmware']/value") or bool(
        dc.findall(f"{loader}/value")
    )
    secure = "yes" in _values(dc, f"{loader}/enum[@name='secure']/value")
    tpm = dc.find("devices/tpm[@supported='yes']") is not None
    vcpu_max = dc.find("vcpu")

    def free(p: libvirt.virStoragePool) -> PoolFree:
        active = bool(p.isActive())
        return PoolFree(p.name(), int(p.info()[3]) if active else 0, active)

    # A pool deleted while this is read (another person, a test) is left out.
    pools = still_there(conn.listAllStoragePools(0), free, libvirt.VIR_ERR_NO_STORAGE_POOL)
    return HostFacts(
        virt_type=virt_type,
        why=why,
        arch=arch,
        machines=machines,
        uefi=uefi,
        secure_boot=secure,
        tpm=tpm,
        memory_mib=int(conn.getInfo()[1]),
        max_vcpus=int(vcpu_max.get("max", "1")) if vcpu_max is not None else 255,
        domains=frozenset(d.name() for d in conn.listAllDomains(0)),
        networks=tuple(sorted((n.name(), bool(n.isActive())) for n in conn.listAllNetworks(0))),
        pools=tuple(sorted(pools, key=lambda p: p.name.casefold())),
    )


def host_facts(host: HostRef, arch: str = "x86_64") -> HostFacts:
    """What a new VM can use here (virConnectGetCapabilities, GetDomainCapabilities,
    GetInfo, the pools' and networks' lists); VirtError."""
    return _call(host, lambda c: _read_facts(c, arch), f"Cannot read host '{host.label}'")


def problems(
    spec: VmSpec, facts: HostFacts, volumes: dict[str, set[str]], start: bool = False
) -> dict[str, str]:
    """Field name -> what is wrong with `spec` on this host ({} when it can be made).

    `volumes` maps each pool the spec names to the volume names in it; `start`:
    the VM is to start at once, so its networks must be running."""
    found: dict[str, str] = {}
    if spec.name in facts.domains:
        found["name"] = f"There is already a VM '{spec.name}' on this host."
    if spec.memory_mib > facts.memory_mib:
        found["memory_mib"] = f"The host has {facts.memory_mib} MiB in all."
    if spec.vcpus > facts.max_vcpus:
        found["vcpus"] = f"This host allows at most {facts.max_vcpus} vCPUs."
    if spec.firmware != Firmware.BIOS and not facts.uefi:
        found["firmware"] = "This host has no UEFI firmware (Debian: apt-get install ovmf)."
    elif spec.firmware == Firmware.UEFI_SECURE and not facts.secure_boot:
        found["firmware"] = "This host's UEFI firmware has no Secure Boot build."
    if spec.tpm and not facts.tpm:
        found["tpm"] = "This host cannot emulate a TPM (Debian: apt-get install swtpm)."
    found.update(_disk_problems(spec, facts, volumes))
    nets = dict(facts.networks)
    for nic in spec.nics:
        if nic.type == "network" and nic.source not in nets:
            found["network"] = f"There is no network '{nic.source}' on this host."
        elif nic.type == "network" and start and not nets[nic.source]:
            found["network"] = (
                f"Network '{nic.source}' is not running: start it, or do not start the VM now."
            )
    return found


def _disk_problems(spec: VmSpec, facts: HostFacts, volumes: dict[str, set[str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    need: dict[str, int] = {}
    for d in spec.disks:
        key = {DiskKind.CDROM: "iso", DiskKind.SEED: "ci_hostname"}.get(d.kind, "disk")
        p = facts.pool(d.pool)
        if p is None or not p.active:
            found[key] = f"There is no active pool '{d.pool}' on this host."
            continue
        names = volumes.get(d.pool, set())
        if d.kind in (DiskKind.NEW, DiskKind.SEED):
            if d.volume in names:
                found[key] = f"Pool '{d.pool}' already has a volume '{d.volume}'."
            need[d.pool] = need.get(d.pool, 0) + d.capacity  # a seed: a few hundred kB
        elif d.volume not in names:
            found[key] = f"Pool '{d.pool}' has no volume '{d.volume}'."
    for name, size in need.items():
        p = facts.pool(name)
        if p is not None and size > p.available and "disk" not in found:
            free = p.available // 2**20
            found["disk_gib"] = f"Pool '{name}' has {free} MiB free; the disk would be larger."
    return found


# Undo: what a failed step leaves behind is taken back


@dataclass
class Undo:
    steps: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    def add(self, what: str, step: Callable[[], object]) -> None:
        self.steps.append((what, step))

    def run(self) -> list[str]:
        """Take everything back, newest first; what could not be taken back."""
        left = []
        for what, step in reversed(self.steps):
            try:
                step()
            except (VirtError, libvirt.libvirtError):
                left.append(what)
        self.steps.clear()
        return left


def _fail(err: VirtError, undo: Undo) -> VirtError:
    left = undo.run()
    if left:
        return type(err)(f"{err} Not removed: {', '.join(left)}.")
    return type(err)(f"{err} Everything this create made was removed.")


_UNDEFINE = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)


def _remove_domain(host: HostRef, name: str) -> None:
    def run(conn: libvirt.virConnect) -> None:
        dom = conn.lookupByName(name)
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(_UNDEFINE)

    _call(host, run, f"Cannot remove VM '{name}'")


def _define(host: HostRef, text: str, doing: str) -> DomainRef:
    def run(conn: libvirt.virConnect) -> DomainRef:
        dom = conn.defineXMLFlags(text, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        return DomainRef(host.slug, dom.name(), dom.UUIDString())

    return _call(host, run, doing)


def _start(host: HostRef, name: str, autostart: bool, start: bool) -> None:
    def run(conn: libvirt.virConnect) -> None:
        dom = conn.lookupByName(name)
        if autostart:
            dom.setAutostart(1)
        if start:
            dom.create()

    _call(host, run, f"Cannot start VM '{name}'")


@dataclass(frozen=True)
class Created:
    ref: DomainRef
    xml: str
    virt_type: str
    volumes: tuple[VolumeRef, ...]


def create_vm(
    host: HostRef, spec: VmSpec, start: bool, autostart: bool, progress: Progress
) -> Created:
    """New volumes (virStorageVolCreateXML), define (VIR_DOMAIN_DEFINE_VALIDATE),
    autostart, start (virDomainCreate). A failing step removes what the earlier ones
    made; VirtError says why."""
    text = build(spec).tostring()
    undo = Undo()
    made: list[VolumeRef] = []
    news = [d for d in spec.disks if d.kind == DiskKind.NEW]
    try:
        for i, d in enumerate(news):
            progress(0.1 + 0.4 * i / max(1, len(news)), f"Creating volume {d.pool}/{d.volume}")
            fmt = VolumeFormat(d.format)
            vspec = storage.VolumeSpec(d.volume, fmt, d.capacity, backing=d.backing)
            ref, _xml = storage.create_volume(host, d.pool, vspec)
            undo.add(f"volume {d.pool}/{d.volume}", _deleter(host, d.pool, d.volume))
            made.append(ref)
        made.extend(_seeds(host, spec, undo, progress))
        progress(0.6, f"Defining VM {spec.name}")
        dref = _define(host, text, f"Cannot define VM '{spec.name}'")
        undo.add(f"VM {spec.name}", lambda: _remove_domain(host, spec.name))
        if start or autostart:
            progress(0.8, f"Starting VM {spec.name}" if start else "Autostart")
            _start(host, spec.name, autostart, start)
    except VirtError as err:
        raise _fail(err, undo) from None
    storage.forget_users(host)
    progress(1.0, "Done")
    return Created(dref, text, spec.virt_type, tuple(made))


def _seeds(host: HostRef, spec: VmSpec, undo: Undo, progress: Progress) -> list[VolumeRef]:
    """The cloud-init seed ISO (built here, uploaded through libvirt) for each SEED disk."""
    made = []
    for d in spec.disks:
        if d.kind != DiskKind.SEED or spec.cloudinit is None:
            continue
        progress(0.5, f"Uploading cloud-init seed {d.pool}/{d.volume}")
        made.append(cloudinit.upload_seed(host, d.pool, d.volume, spec.cloudinit))
        undo.add(f"volume {d.pool}/{d.volume}", _deleter(host, d.pool, d.volume))
    return made


def _deleter(host: HostRef, pool_name: str, name: str) -> Callable[[], object]:
    return lambda: storage.delete_volume(host, pool_name, name, even_in_use=True)


def preview(spec: VmSpec) -> str:
    """The XML that create_vm would define (for the summary on the page)."""
    return build(spec).tostring()


def volumes_of(host: HostRef, pools: set[str]) -> dict[str, set[str]]:
    """pool -> its volume names, for the pools a spec names (inactive or missing: empty)."""
    out: dict[str, set[str]] = {}
    for name in pools:
        try:
            out[name] = set(storage.volume_names(host, name))
        except NotFound:
            out[name] = set()
    return out
