"""Removable media: put an ISO volume into a VM's CD-ROM drive, or take it out.

virDomainUpdateDeviceFlags with the drive's own <disk> element (read from the
definition, so its bus, target, address and driver stay as they are) and a new
<source> or none: AFFECT_CONFIG always, AFFECT_LIVE too while the VM runs, so
the running guest sees the change at once and the next start keeps it. Only
volumes of the host's pools are offered and accepted, never a path typed by a
person: a path would let anyone with the right to change a VM attach any file
of the host to it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import libvirt

from vmdash.virt.connection import pool
from vmdash.virt.domains import lookup
from vmdash.virt.errors import InvalidInput, NotFound, translate
from vmdash.virt.refs import HostRef
from vmdash.virt.xml import remove, tostring
from vmdash.virt.xml.domain import DiskXML, DomainXML

_SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


@dataclass(frozen=True)
class Drive:
    target: str  # hdc, sda, ...
    bus: str
    source: str  # the file in it now ("" when empty)


@dataclass(frozen=True)
class Changed:
    target: str
    before: str  # the file that was in it ("" for none)
    after: str
    live: bool  # the running guest saw it too


def _drives(doc: DomainXML) -> list[DiskXML]:
    return [d for d in doc.disks if d.device == "cdrom"]


def drives(host: HostRef, name: str) -> list[Drive]:
    """The VM's CD-ROM drives as the running VM has them (else its definition)."""

    def act(conn: libvirt.virConnect) -> list[Drive]:
        dom = lookup(conn, host, name)
        doc = DomainXML.parse(str(dom.XMLDesc(0)))
        return [
            Drive(d.target_dev or "", d.target_bus or "", d.source_file or d.source_dev or "")
            for d in _drives(doc)
        ]

    return pool().call(host.uri, act, f"Cannot read VM '{name}'")


def isos(host: HostRef) -> list[tuple[str, str]]:
    """(pool/volume, its path) of every .iso volume in the host's running pools."""

    def act(conn: libvirt.virConnect) -> list[tuple[str, str]]:
        out = []
        for p in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
            for v in p.listAllVolumes(0):
                if v.name().lower().endswith(".iso"):
                    out.append((f"{p.name()}/{v.name()}", v.path()))
        return sorted(out, key=lambda kv: kv[0].casefold())

    return pool().call(host.uri, act, f"Cannot list the volumes of host '{host.label}'")


def _volume_path(conn: libvirt.virConnect, choice: str) -> str:
    pool_name, _, volume = choice.partition("/")
    try:
        return str(conn.storagePoolLookupByName(pool_name).storageVolLookupByName(volume).path())
    except libvirt.libvirtError:
        raise NotFound(f"There is no volume '{choice}' on this host.") from None


def drive_with(drive: DiskXML, path: str) -> str:
    """The drive's <disk> element with `path` in it ("" for empty): its driver,
    target, address and flags as they are, only the source new."""
    disk = DiskXML(copy.deepcopy(drive.node))
    disk.node.tail = None
    for old in disk.node.findall("source"):
        remove(old)
    if path:
        disk.type = "file"
        disk.source_file = path
    return tostring(disk.node)


_TRAY_TRIES = 4  # a busy guest may hold a fresh drive's tray shut for a few seconds


def change(host: HostRef, name: str, target: str, volume: str) -> Changed:
    """Insert `volume` ("pool/name") into the drive `target`, or eject it ("").

    NotFound (no such drive or volume), InvalidInput/InvalidState (libvirt's
    sentence: a locked tray, a drive that is not a CD-ROM)."""
    doing = f"Cannot change the media of VM '{name}'"

    def act(conn: libvirt.virConnect) -> Changed:
        dom = lookup(conn, host, name)
        doc = DomainXML.parse(str(dom.XMLDesc(_SECURE)))
        drive = next((d for d in _drives(doc) if d.target_dev == target), None)
        if drive is None:
            raise NotFound(f"{doing}: it has no CD-ROM drive '{target}'.")
        live_doc = DomainXML.parse(str(dom.XMLDesc(0))) if dom.isActive() else doc
        now = next((d for d in _drives(live_doc) if d.target_dev == target), drive)
        before = now.source_file or now.source_dev or ""
        path = _volume_path(conn, volume) if volume else ""
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        live = bool(dom.isActive())
        if live:
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        try:
            dom.updateDeviceFlags(drive_with(drive, path), flags)
        except libvirt.libvirtError as err:
            if not (live and not before and "tray" in str(err).lower()):
                raise translate(err, doing) from None
            # An empty drive whose tray the guest keeps shut (Linux's sr driver
            # does while it probes, QEMU then answers "Tray of the device is
            # not open"): there is nothing in it to take away from the guest,
            # so insert with FORCE, as `virsh change-media --force` does.
            forced = flags | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE
            for attempt in range(_TRAY_TRIES):
                try:
                    dom.updateDeviceFlags(drive_with(drive, path), forced)
                    break
                except libvirt.libvirtError as again:
                    if attempt == _TRAY_TRIES - 1 or "tray" not in str(again).lower():
                        raise translate(again, doing) from None
                    time.sleep(1)  # QEMU waits for the guest to let the tray open
        return Changed(target, before, path, live)

    if volume and "/" not in volume:
        raise InvalidInput(f"{doing}: choose a volume as pool/volume.")
    return pool().call(host.uri, act, doing)
