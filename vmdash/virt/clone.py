"""Clone a VM, and delete a VM with the storage volumes a person ticked.

Clone (what virt-clone does): new name, no UUID and no MACs (libvirt makes
new ones), each disk volume copied with virStorageVolCreateXMLFrom into the
same pool, the copy's disks named by pool and volume. A running VM is
copied only when the person accepts a crash-consistent copy: it is paused
(virDomainSuspend) for the copy and resumed after, whatever happens; that
is what a person expects from "clone now" (virt-clone refuses outright, and a
blockcopy per disk would need a transient domain). The NVRAM is not copied:
libvirt makes the clone a fresh one from the firmware's template (the
variables store holds boot entries, which the guest writes again). A failure
removes the copies made so far and the definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libvirt

from vmdash.virt import storage
from vmdash.virt.connection import pool
from vmdash.virt.create import Progress, Undo
from vmdash.virt.domains import lookup
from vmdash.virt.errors import InvalidInput, InvalidState, NotFound, OperationFailed, VirtError
from vmdash.virt.names import name_problem
from vmdash.virt.refs import DomainRef, HostRef
from vmdash.virt.xml import remove
from vmdash.virt.xml.domain import DiskXML, DomainXML
from vmdash.virt.xml.volume import VolumeXML

_XML_FLAGS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
_UNDEFINE = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)


@dataclass(frozen=True)
class DiskVolume:
    """A disk of a VM that is a volume of a pool."""

    target: str
    pool: str
    volume: str
    format: str
    others: tuple[str, ...] = ()  # other VMs whose disks name the same volume

    @property
    def key(self) -> str:
        return f"{self.pool}/{self.volume}"


def _volume_of(conn: libvirt.virConnect, disk: DiskXML) -> tuple[str, str] | None:
    if disk.type == "volume" and disk.source_pool and disk.source_volume:
        return disk.source_pool, disk.source_volume
    path = disk.source_file or disk.source_dev
    if not path:
        return None
    try:
        vol = conn.storageVolLookupByPath(path)
    except libvirt.libvirtError:
        return None  # a file outside every pool: not ours to copy or delete
    return vol.storagePoolLookupByVolume().name(), vol.name()


def _disks(conn: libvirt.virConnect, doc: DomainXML) -> list[tuple[DiskXML, str, str]]:
    found = []
    for disk in doc.disks:
        if disk.device not in (None, "disk"):
            continue  # CD-ROMs (the install ISO) are shared, never copied or deleted
        pv = _volume_of(conn, disk)
        if pv is not None:
            found.append((disk, *pv))
    return found


def disk_volumes(host: HostRef, name: str) -> list[DiskVolume]:
    """The VM's disks that are pool volumes, with the other VMs that use each."""

    def read(conn: libvirt.virConnect) -> list[tuple[str, str, str, str]]:
        doc = DomainXML.parse(lookup(conn, host, name).XMLDesc(_XML_FLAGS))
        return [(d.target_dev or "", p, v, d.driver_type or "") for d, p, v in _disks(conn, doc)]

    rows = pool().call(host.uri, read, f"Cannot read the disks of VM '{name}'")
    out = []
    for target, pool_name, vol, fmt in rows:
        try:
            users = storage.get_volume(host, pool_name, vol).users
        except NotFound:
            users = ()
        others = tuple(sorted({u.name for u in users if u.name != name}))
        out.append(DiskVolume(target, pool_name, vol, fmt, others))
    return out


def _copy_name(new_name: str, index: int, old: str) -> str:
    ext = old.rsplit(".", 1)[1] if "." in old else "img"
    return f"{new_name}.{ext}" if index == 0 else f"{new_name}-{index}.{ext}"


def _read_source(
    host: HostRef, name: str
) -> tuple[DomainXML, bool, list[tuple[DiskXML, str, str]]]:
    def read(conn: libvirt.virConnect) -> tuple[DomainXML, bool, list[tuple[DiskXML, str, str]]]:
        dom = lookup(conn, host, name)
        doc = DomainXML.parse(dom.XMLDesc(_XML_FLAGS))
        return doc, bool(dom.isActive()), _disks(conn, doc)

    return pool().call(host.uri, read, f"Cannot read VM '{name}'")


def _suspend(host: HostRef, name: str, pause: bool) -> bool:
    def run(conn: libvirt.virConnect) -> bool:
        dom = lookup(conn, host, name)
        if dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
            return False  # already paused: leave it as the person left it
        if pause:
            dom.suspend()
        return True

    return pool().call(host.uri, run, f"Cannot pause VM '{name}'")


def _resume(host: HostRef, name: str) -> None:
    pool().call(host.uri, lambda c: lookup(c, host, name).resume(), f"Cannot resume VM '{name}'")


def clone_vm(
    host: HostRef, name: str, new_name: str, pause_running: bool, progress: Progress
) -> DomainRef:
    """Copy the VM's disk volumes (virStorageVolCreateXMLFrom) and define the copy
    (VIR_DOMAIN_DEFINE_VALIDATE); InvalidState for a running VM unless
    `pause_running`, which pauses it for the copy."""
    problem = name_problem(new_name)
    if problem or "/" in new_name:
        raise InvalidInput(f"The name {new_name!r} cannot be used: {problem or '/'}.")
    doc, active, disks = _read_source(host, name)
    if active and not pause_running:
        raise InvalidState(
            f"VM '{name}' is running: a copy of disks in use is only crash-consistent. "
            "Shut it down, or accept that it is paused during the copy."
        )
    undo = Undo()
    try:
        paused = _suspend(host, name, True) if active else False
        try:
            _copy_disks(host, disks, new_name, undo, progress, in_use=active)
        finally:
            if paused:
                _resume(host, name)
        progress(0.95, f"Defining VM {new_name}")
        ref = _define_copy(host, doc, new_name)
    except VirtError as err:
        left = undo.run()
        extra = f" Not removed: {', '.join(left)}." if left else " The copies were removed."
        raise type(err)(f"{err}{extra}") from None
    progress(1.0, "Done")
    return ref


def _copy_disks(
    host: HostRef,
    disks: list[tuple[DiskXML, str, str]],
    new_name: str,
    undo: Undo,
    progress: Progress,
    in_use: bool = False,
) -> None:
    share = 0.9 / max(1, len(disks))
    for i, (disk, pool_name, vol) in enumerate(disks):
        copy = _copy_name(new_name, i, vol)
        note = f"Copying {pool_name}/{vol} to {copy}"
        report = _reporter(progress, i * share, share, note)
        if in_use:
            _stream_copy(host, pool_name, vol, copy, report)
        else:
            storage.clone_volume(host, pool_name, vol, copy, pool_name, report, lambda: False)
        undo.add(f"volume {pool_name}/{copy}", _deleter(host, pool_name, copy))
        disk.type, disk.source_file, disk.source_dev = "volume", None, None
        disk.source_pool, disk.source_volume = pool_name, copy


def _stream_copy(
    host: HostRef, pool_name: str, name: str, copy: str, report: Callable[[float], None]
) -> None:
    """The volume's file, byte for byte, into a new volume of the same format
    (virStorageVolDownload into virStorageVolUpload). For the disks of a paused VM:
    qemu-img (CreateXMLFrom) cannot open an image QEMU holds the write lock of."""

    def run(conn: libvirt.virConnect) -> None:
        p = conn.storagePoolLookupByName(pool_name)
        src = p.storageVolLookupByName(name)
        doc = VolumeXML.parse(src.XMLDesc(0))
        new = VolumeXML.parse(storage.VOLUME_SKELETON)
        new.name, new.format = copy, doc.format or "raw"
        new.set_sizes(src.info()[1], 0)
        dest = p.createXML(new.tostring(), 0)
        size = max(1, int(src.info()[2]))
        down, up = conn.newStream(0), conn.newStream(0)
        src.download(down, 0, 0, 0)
        dest.upload(up, 0, 0, 0)
        done = 0
        while True:
            chunk = down.recv(1 << 20)
            if chunk == -2:
                continue  # cannot happen on a blocking stream; be safe
            if not chunk:
                break
            _send(up, chunk)
            done += len(chunk)
            report(min(0.99, done / size))
        down.finish()
        up.finish()

    pool().call(host.uri, run, f"Cannot copy volume '{name}'")


def _send(stream: libvirt.virStream, data: bytes) -> None:
    view = memoryview(data)
    while view:
        sent = stream.send(bytes(view))
        view = view[sent:]


def _reporter(progress: Progress, start: float, share: float, note: str) -> Callable[[float], None]:
    return lambda fraction: progress(start + fraction * share, note)


def _deleter(host: HostRef, pool_name: str, name: str) -> Callable[[], object]:
    return lambda: storage.delete_volume(host, pool_name, name, even_in_use=True)


def _define_copy(host: HostRef, doc: DomainXML, new_name: str) -> DomainRef:
    doc.name, doc.uuid, doc.nvram = new_name, None, None
    for nic in doc.interfaces:
        mac = nic.node.find("mac")
        if mac is not None:
            remove(mac)  # libvirt gives each NIC a new MAC
    text = doc.tostring()

    def run(conn: libvirt.virConnect) -> DomainRef:
        dom = conn.defineXMLFlags(text, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        return DomainRef(host.slug, dom.name(), dom.UUIDString())

    return pool().call(host.uri, run, f"Cannot define VM '{new_name}'")


@dataclass(frozen=True)
class Deleted:
    ref: DomainRef
    volumes: tuple[str, ...]  # "pool/volume" removed

    @property
    def message(self) -> str:
        return "volumes deleted: " + (", ".join(self.volumes) or "none")


def delete_with_storage(host: HostRef, name: str, volumes: set[str]) -> Deleted:
    """Undefine the VM (with NVRAM, snapshot metadata, managed save) and delete the
    ticked volumes among its disks; InvalidState while it runs, InvalidInput for a
    volume that is not one of its disks."""
    mine = {d.key: d for d in disk_volumes(host, name)}
    stray = volumes - set(mine)
    if stray:
        raise InvalidInput(f"Not disks of VM '{name}': {', '.join(sorted(stray))}.")

    def undefine(conn: libvirt.virConnect) -> DomainRef:
        dom = lookup(conn, host, name)
        if dom.isActive():
            raise InvalidState(f"VM '{name}' is running: force it off first.")
        ref = DomainRef(host.slug, dom.name(), dom.UUIDString())
        dom.undefineFlags(_UNDEFINE)
        return ref

    ref = pool().call(host.uri, undefine, f"Cannot delete VM '{name}'")
    done, failed = [], []
    for key in sorted(volumes):
        d = mine[key]
        try:
            storage.delete_volume(host, d.pool, d.volume, even_in_use=True)
            done.append(key)
        except VirtError as err:
            failed.append(f"{key} ({err})")
    if failed:
        raise OperationFailed(
            f"VM '{name}' was deleted, and volumes {', '.join(done) or 'none'}; "
            f"not deleted: {', '.join(failed)}."
        )
    return Deleted(ref, tuple(done))
