"""A VM's disks: attach a volume of one of the host's pools, detach one, tune one.

virDomainAttachDeviceFlags / DetachDeviceFlags with AFFECT_CONFIG, and
AFFECT_LIVE too while the VM runs (hot-plug: virtio and SCSI take it, SATA
and IDE do not, and libvirt says so). The <disk> is built through the XML
layer from what the pool says of the volume (file or block, its format); the
target name is the first free one for the bus (vda, vdb, ... sda, ...).
Only volumes are accepted, never a typed path, and a volume another VM uses
is refused with that VM's name: two VMs writing one disk destroy it.
Detaching keeps the volume: deleting it is the storage pages' business.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import libvirt
from django.utils.translation import gettext as _
from lxml import etree

from vmdash.virt.connection import pool
from vmdash.virt.devices import detach
from vmdash.virt.domains import edit, lookup
from vmdash.virt.errors import InvalidInput, NotFound, translate
from vmdash.virt.refs import HostRef
from vmdash.virt.xml import tostring
from vmdash.virt.xml.domain import DiskXML, DomainXML
from vmdash.virt.xml.volume import VolumeXML

BUSES = {"virtio": "vd", "scsi": "sd", "sata": "sd", "ide": "hd"}
DRIVER_FORMATS = ("raw", "qcow2", "qed", "vmdk", "vdi", "vpc", "vhdx")
_SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


@dataclass(frozen=True)
class Done:
    target: str
    live: bool
    waiting: bool = False  # a detach the running guest has not let go of yet


def volumes(host: HostRef) -> list[str]:
    """ "pool/volume" of every volume a disk can be made of (not .iso) in running pools."""

    def act(conn: libvirt.virConnect) -> list[str]:
        out = []
        for p in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
            out += [f"{p.name()}/{v.name()}" for v in p.listAllVolumes(0)
                    if not v.name().lower().endswith(".iso")]  # fmt: skip
        return sorted(out, key=str.casefold)

    return pool().call(host.uri, act, f"Cannot list the volumes of host '{host.label}'")


def _sources(doc: DomainXML) -> set[str]:
    return {d.source_file or d.source_dev or "" for d in doc.disks} - {""}


def _users(conn: libvirt.virConnect, path: str, besides: str) -> list[str]:
    """The other VMs whose definition or running state uses `path`."""
    out = []
    for dom in conn.listAllDomains(0):
        if dom.UUIDString() == besides:
            continue
        flags = [libvirt.VIR_DOMAIN_XML_INACTIVE] + ([0] if dom.isActive() else [])
        try:
            if any(path in _sources(DomainXML.parse(str(dom.XMLDesc(f)))) for f in flags):
                out.append(str(dom.name()))
        except libvirt.libvirtError:
            continue  # gone meanwhile
    return sorted(out)


def free_target(taken: set[str], bus: str) -> str:
    prefix = BUSES[bus]
    for letter in string.ascii_lowercase:
        if prefix + letter not in taken:
            return prefix + letter
    raise InvalidInput(_("The VM has no free %(bus)s disk name left.") % {"bus": bus})


def new_disk(path: str, kind: str, fmt: str, target: str, bus: str) -> str:
    """The <disk> of a volume: kind "file" or "block", its format, where it plugs in."""
    node = etree.Element("disk", type=kind, device="disk")
    disk = DiskXML(node)
    disk.driver_name, disk.driver_type = "qemu", fmt or "raw"
    if kind == "block":
        disk.source_dev = path
    else:
        disk.source_file = path
    disk.target_dev, disk.target_bus = target, bus
    return tostring(node)


def _volume(conn: libvirt.virConnect, choice: str) -> tuple[str, str, str]:
    """(path, file|block, format) of "pool/volume"; NotFound."""
    pool_name, _slash, name = choice.partition("/")
    try:
        vol = conn.storagePoolLookupByName(pool_name).storageVolLookupByName(name)
    except libvirt.libvirtError:
        raise NotFound(_("There is no volume '%(v)s' on this host.") % {"v": choice}) from None
    kind = "block" if vol.info()[0] == libvirt.VIR_STORAGE_VOL_BLOCK else "file"
    fmt = VolumeXML.parse(str(vol.XMLDesc(0))).format or "raw"
    return str(vol.path()), kind, fmt if fmt in DRIVER_FORMATS else "raw"


def add(host: HostRef, name: str, volume: str, bus: str) -> Done:
    doing = f"Cannot add a disk to VM '{name}'"
    if bus not in BUSES:
        raise InvalidInput(_("Choose a bus: %(buses)s.") % {"buses": ", ".join(BUSES)})
    if "/" not in volume:
        raise InvalidInput(_("Choose a volume as pool/volume."))

    def act(conn: libvirt.virConnect) -> Done:
        dom = lookup(conn, host, name)
        path, kind, fmt = _volume(conn, volume)
        config = DomainXML.parse(str(dom.XMLDesc(_SECURE)))
        docs = [config] + ([DomainXML.parse(str(dom.XMLDesc(0)))] if dom.isActive() else [])
        if any(path in _sources(doc) for doc in docs):
            raise InvalidInput(_("The VM has this volume already."))
        others = _users(conn, path, dom.UUIDString())
        if others:
            raise InvalidInput(
                _("Another VM uses this volume: %(vms)s. Two VMs writing one disk destroy it.")
                % {"vms": ", ".join(others)}
            )
        taken = {d.target_dev or "" for doc in docs for d in doc.disks}
        target = free_target(taken, bus)
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if dom.isActive():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        try:
            dom.attachDeviceFlags(new_disk(path, kind, fmt, target, bus), flags)
        except libvirt.libvirtError as err:
            raise translate(err, doing) from None
        return Done(target, bool(dom.isActive()))

    return pool().call(host.uri, act, doing)


def _own(doc: DomainXML, target: str) -> DiskXML | None:
    return next((d for d in doc.disks if d.target_dev == target), None)


def remove(host: HostRef, name: str, target: str) -> Done:
    doing = f"Cannot remove disk {target} of VM '{name}'"

    def act(conn: libvirt.virConnect) -> Done:
        dom = lookup(conn, host, name)
        missing = _("The VM has no disk %(t)s.") % {"t": target}
        done = detach(dom, lambda doc: _own(doc, target), missing, doing)
        return Done(target, done.live, done.waiting)

    return pool().call(host.uri, act, doing)


# How a disk is attached and cached: changed in the definition only (QEMU
# cannot change them on a running disk), so for a running VM they apply at
# its next start. "" keeps the hypervisor's default (the attribute goes).
CACHES = ("", "none", "writeback", "writethrough", "directsync", "unsafe")
IOS = ("", "native", "threads", "io_uring")
DISCARDS = ("", "unmap", "ignore")


@dataclass(frozen=True)
class Tuning:
    bus: str
    cache: str = ""
    io: str = ""
    discard: str = ""


def tuning_problem(t: Tuning) -> str:
    """Why `t` cannot be (a sentence), or ""."""
    if t.bus not in BUSES:
        return _("Choose a bus: %(buses)s.") % {"buses": ", ".join(BUSES)}
    if t.cache not in CACHES or t.io not in IOS or t.discard not in DISCARDS:
        return _("Choose the cache, I/O and discard modes from the lists.")
    if t.io == "native" and t.cache not in ("none", "directsync"):
        # QEMU refuses to start such a disk (aio=native needs O_DIRECT).
        return _("Native I/O needs the cache mode none or directsync.")
    return ""


def _tune(doc: DomainXML, target: str, t: Tuning) -> str:
    """Change disk `target` of `doc` as `t` says; its target after (a new bus renames it)."""
    disk = _own(doc, target)
    if disk is None or disk.device not in ("disk", "cdrom", "lun"):
        raise NotFound(_("The VM has no disk %(t)s.") % {"t": target})
    if disk.target_bus != t.bus:
        if disk.device == "cdrom" and t.bus == "virtio":
            raise InvalidInput(_("A CD-ROM cannot be on the virtio bus."))
        taken = {d.target_dev or "" for d in doc.disks} - {target}
        disk.target_dev = free_target(taken, t.bus) if BUSES[t.bus] != target[:2] else target
        disk.target_bus = t.bus
        disk.address = False  # the old bus's address means nothing on the new one
    if disk.driver_name is None and (t.cache or t.io or t.discard):
        disk.driver_name = "qemu"
    disk.driver_cache = t.cache or None
    disk.driver_io = t.io or None
    disk.driver_discard = t.discard or None
    return disk.target_dev or target


def tune(host: HostRef, name: str, target: str, t: Tuning) -> tuple[str, str]:
    """Set the bus, cache, io and discard of disk `target` in the definition
    (validated); (the diff, its target after the change: a new bus renames it)."""
    doing = f"Cannot change disk {target} of VM '{name}'"
    problem = tuning_problem(t)
    if problem:
        raise InvalidInput(problem)
    moved: dict[str, str] = {}

    def change(doc: DomainXML) -> None:
        moved["to"] = _tune(doc, target, t)

    diff = edit(host, name, change, doing=doing, persistent_only=True)
    return diff, moved.get("to", target)
