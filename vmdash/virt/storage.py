"""Storage pools and volumes: listing, lifecycle, creation, resize, clone, streams.

Every function takes a HostRef and returns frozen dataclasses; libvirt errors
come out as VirtError kinds. A pool's figures are read after a refresh
(virStoragePoolRefresh), so the bar on the page is what is on disk now. The
volume list reads names only (virStoragePoolListAllVolumes) and the details
of the rows shown, so that a pool of thousands of files lists fast.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import libvirt
from django.utils.translation import pgettext
from lxml import etree

from vmdash.virt.connection import pool
from vmdash.virt.errors import (
    HostUnavailable,
    InvalidInput,
    InvalidState,
    NotFound,
    OperationFailed,
    VirtError,
    still_there,
    translate,
)
from vmdash.virt.names import check_name, name_problem
from vmdash.virt.refs import HostRef, PoolRef, VolumeRef
from vmdash.virt.xml import attr, parse
from vmdash.virt.xml import text as xml_text
from vmdash.virt.xml.domain import DomainXML
from vmdash.virt.xml.pool import PoolType, PoolXML
from vmdash.virt.xml.volume import VolumeFormat, VolumeXML

T = TypeVar("T")


def _call(host: HostRef, fn: Callable[[libvirt.virConnect], T], doing: str = "") -> T:
    """pool().call, except that a system error on a live connection is the host's
    answer (mkdir failed, no such device), not a lost connection: no reopen, no retry
    of a half-done step, OperationFailed with libvirt's sentence."""

    def guarded(conn: libvirt.virConnect) -> T:
        try:
            return fn(conn)
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_SYSTEM_ERROR and _alive(conn):
                text = (err.get_error_message() or str(err)).strip()
                raise OperationFailed(
                    f"{doing}: {text}" if doing else text, code=err.get_error_code()
                ) from None
            raise

    return pool().call(host.uri, guarded, doing)


def _alive(conn: libvirt.virConnect) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False


class PoolState(StrEnum):
    INACTIVE = "inactive"
    BUILDING = "building"
    RUNNING = "running"
    DEGRADED = "degraded"
    INACCESSIBLE = "inaccessible"

    @property
    def label(self) -> str:
        # Built when shown, in the page's language; a context of its own since a
        # pool is masculine in Russian where a network is feminine.
        return {
            PoolState.INACTIVE: pgettext("storage pool", "inactive"),
            PoolState.BUILDING: pgettext("storage pool", "building"),
            PoolState.RUNNING: pgettext("storage pool", "running"),
            PoolState.DEGRADED: pgettext("storage pool", "degraded"),
            PoolState.INACCESSIBLE: pgettext("storage pool", "inaccessible"),
        }[self]


_POOL_STATES = {
    libvirt.VIR_STORAGE_POOL_INACTIVE: PoolState.INACTIVE,
    libvirt.VIR_STORAGE_POOL_BUILDING: PoolState.BUILDING,
    libvirt.VIR_STORAGE_POOL_RUNNING: PoolState.RUNNING,
    libvirt.VIR_STORAGE_POOL_DEGRADED: PoolState.DEGRADED,
    libvirt.VIR_STORAGE_POOL_INACCESSIBLE: PoolState.INACCESSIBLE,
}
# Pool types whose storage libvirt can remove with virStoragePoolDelete.
DELETABLE_TYPES = {PoolType.DIR, PoolType.FS, PoolType.NETFS, PoolType.LOGICAL}
# Pool types that need virStoragePoolBuild before their first start.
BUILD_TYPES = {PoolType.DIR, PoolType.FS, PoolType.NETFS}
MAX_VOLUME_BYTES = 2**60  # 1 EiB: no pool holds it, refused before libvirt


@dataclass(frozen=True)
class PoolSummary:
    ref: PoolRef
    type: str
    state: PoolState
    autostart: bool
    persistent: bool
    capacity: int
    allocation: int
    available: int
    target_path: str
    source: str
    volume_count: int | None  # None: inactive, libvirt does not know

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def uuid(self) -> str:
        return self.ref.uuid

    @property
    def active(self) -> bool:
        return self.state in (PoolState.RUNNING, PoolState.DEGRADED)

    @property
    def used_percent(self) -> int:
        return round(100 * self.allocation / self.capacity) if self.capacity else 0

    @property
    def can_delete_storage(self) -> bool:
        return self.type in DELETABLE_TYPES


def _pool_state(p: libvirt.virStoragePool) -> tuple[PoolState, int, int, int]:
    state, capacity, allocation, available = p.info()
    return _POOL_STATES.get(state, PoolState.INACCESSIBLE), capacity, allocation, available


def _summarize(host: HostRef, p: libvirt.virStoragePool, refresh: bool = True) -> PoolSummary:
    if refresh and p.isActive():
        try:
            p.refresh(0)
        except libvirt.libvirtError:
            pass  # busy (a volume being built): the figures of the last refresh stand
    state, capacity, allocation, available = _pool_state(p)
    doc = PoolXML(parse(p.XMLDesc(0)), "")
    active = state in (PoolState.RUNNING, PoolState.DEGRADED)
    return PoolSummary(
        ref=PoolRef(host.slug, p.name(), p.UUIDString()),
        type=doc.type or "",
        state=state,
        autostart=bool(p.autostart()),
        persistent=bool(p.isPersistent()),
        capacity=capacity,
        allocation=allocation,
        available=available,
        target_path=doc.target_path or "",
        source=doc.source_text,
        volume_count=p.numOfVolumes() if active else None,
    )


def list_pools(host: HostRef) -> list[PoolSummary]:
    """Every pool of `host`, refreshed (virConnectListAllStoragePools); VirtError."""

    def read(conn: libvirt.virConnect) -> list[PoolSummary]:
        found = still_there(
            conn.listAllStoragePools(0),
            lambda p: _summarize(host, p),
            libvirt.VIR_ERR_NO_STORAGE_POOL,
        )
        return sorted(found, key=lambda s: s.name.casefold())

    return _call(host, read, f"Cannot list the storage pools of host '{host.label}'")


def _lookup_pool(conn: libvirt.virConnect, host: HostRef, name: str) -> libvirt.virStoragePool:
    check_name("pool", name)
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise NotFound(f"There is no pool '{name}' on host '{host.label}'.") from None
        raise


def get_pool(host: HostRef, name: str, refresh: bool = True) -> PoolSummary:
    """One pool, refreshed unless not asked to (a refresh rescans every file); NotFound."""
    return _call(
        host,
        lambda conn: _summarize(host, _lookup_pool(conn, host, name), refresh),
        f"Cannot read pool '{name}'",
    )


def pool_xml(host: HostRef, name: str) -> str:
    """The pool's XML as libvirt keeps it (virStoragePoolGetXMLDesc, inactive config)."""
    return _call(
        host,
        lambda conn: str(_lookup_pool(conn, host, name).XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE)),
        f"Cannot read pool '{name}'",
    )


class PoolOp(StrEnum):
    START = "start"
    STOP = "stop"
    REFRESH = "refresh"
    AUTOSTART_ON = "autostart-on"
    AUTOSTART_OFF = "autostart-off"
    DELETE = "delete"


def _run_pool_op(p: libvirt.virStoragePool, op: PoolOp, with_storage: bool) -> None:
    if op == PoolOp.START:
        p.create(0)
    elif op == PoolOp.STOP:
        p.destroy()
    elif op == PoolOp.REFRESH:
        p.refresh(0)
    elif op in (PoolOp.AUTOSTART_ON, PoolOp.AUTOSTART_OFF):
        p.setAutostart(1 if op == PoolOp.AUTOSTART_ON else 0)
    elif op == PoolOp.DELETE:
        _delete_pool(p, with_storage)


def _delete_pool(p: libvirt.virStoragePool, with_storage: bool) -> None:
    """Stop, optionally remove every volume and the storage itself, undefine."""
    doc = PoolXML.parse(p.XMLDesc(0))
    if with_storage and doc.type not in DELETABLE_TYPES:
        raise InvalidInput(f"libvirt cannot delete the storage of a {doc.type} pool.")
    if with_storage:
        if not p.isActive():
            p.create(0)
        for vol in p.listAllVolumes(0):
            vol.delete(0)
    if p.isActive():
        p.destroy()
    if with_storage:
        p.delete(libvirt.VIR_STORAGE_POOL_DELETE_NORMAL)
    if p.isPersistent():
        p.undefine()


def run_pool_op(host: HostRef, name: str, op: PoolOp, with_storage: bool = False) -> PoolRef:
    """start (virStoragePoolCreate), stop (Destroy), refresh, autostart, delete
    (Destroy + optional volume deletes and virStoragePoolDelete + Undefine); VirtError."""

    def run(conn: libvirt.virConnect) -> PoolRef:
        p = _lookup_pool(conn, host, name)
        ref = PoolRef(host.slug, p.name(), p.UUIDString())
        _run_pool_op(p, op, with_storage)
        return ref

    return _call(host, run, f"Cannot {op.value.replace('-', ' ')} pool '{name}'")


# Creating pools


@dataclass(frozen=True)
class PoolSpec:
    """What the create form asks; only the fields of `type` are used."""

    name: str
    type: PoolType
    target_path: str = ""
    source_host: str = ""
    source_dir: str = ""
    source_device: str = ""
    source_name: str = ""
    source_format: str = ""
    autostart: bool = True
    build: bool = True


POOL_SKELETON = """<pool type='dir'>
  <name>x</name>
  <target>
    <path>/</path>
  </target>
</pool>
"""


def pool_doc(spec: PoolSpec) -> PoolXML:
    """The pool XML for `spec`, through the field table; InvalidInput for a bad name."""
    problem = name_problem(spec.name)
    if problem or "/" in spec.name or spec.name in (".", ".."):
        raise InvalidInput(f"The pool name {spec.name!r} cannot be used: {problem or 'a path'}.")
    doc = PoolXML.parse(POOL_SKELETON)
    doc.type, doc.name = spec.type.value, spec.name
    t = spec.type
    if t == PoolType.NETFS:
        doc.source_host, doc.source_dir = spec.source_host, spec.source_dir
        doc.source_format = spec.source_format or "nfs"
    if t in (PoolType.FS, PoolType.DISK, PoolType.LOGICAL) and spec.source_device:
        doc.source_device = spec.source_device
    if t in (PoolType.FS, PoolType.DISK) and spec.source_format:
        doc.source_format = spec.source_format
    if t == PoolType.LOGICAL:
        doc.source_name = spec.source_name or spec.name
    if t == PoolType.ISCSI:
        doc.source_host, doc.source_device = spec.source_host, spec.source_device
    if t == PoolType.LOGICAL and not spec.target_path:
        doc.target_path = f"/dev/{doc.source_name}"
    elif t == PoolType.ISCSI and not spec.target_path:
        doc.target_path = "/dev/disk/by-path"
    else:
        doc.target_path = spec.target_path
    return doc


def _define_pool(conn: libvirt.virConnect, text: str) -> libvirt.virStoragePool:
    try:
        return conn.storagePoolDefineXML(text, libvirt.VIR_STORAGE_POOL_DEFINE_VALIDATE)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
            return conn.storagePoolDefineXML(text, 0)  # old libvirt: the RNG test covers it
        raise


def _undo(p: libvirt.virStoragePool, built: bool) -> None:
    """Take back a half-made pool: stop it, remove what build made, undefine."""
    for step in (
        lambda: p.destroy() if p.isActive() else None,
        lambda: p.delete(0) if built else None,
        p.undefine,
    ):
        try:
            step()
        except libvirt.libvirtError:
            pass


def _create_pool_steps(conn: libvirt.virConnect, spec: PoolSpec, text: str) -> PoolRef:
    p = _define_pool(conn, text)
    built = False
    try:
        if spec.build and spec.type in BUILD_TYPES:
            p.build(libvirt.VIR_STORAGE_POOL_BUILD_NEW if spec.type != PoolType.DIR else 0)
            built = True
        p.create(0)
        p.setAutostart(1 if spec.autostart else 0)
    except libvirt.libvirtError:
        _undo(p, built)
        raise
    return PoolRef("", p.name(), p.UUIDString())


def create_pool(host: HostRef, spec: PoolSpec, timeout: float) -> tuple[PoolRef, str]:
    """Define (VIR_STORAGE_POOL_DEFINE_VALIDATE), build, start, autostart; the ref and XML.

    A step that fails undefines what was defined. A step that does not finish
    within `timeout` (an NFS server that does not answer) is reported as
    HostUnavailable; the steps go on in the background and, when they end,
    the pool is taken back so that nothing half-made stays defined.
    """
    text = pool_doc(spec).tostring()
    doing = f"Cannot create pool '{spec.name}'"
    outcome: dict[str, PoolRef | VirtError] = {}
    late = threading.Event()

    def work() -> None:
        try:
            outcome["ref"] = _call(host, lambda c: _create_pool_steps(c, spec, text), doing)
        except VirtError as err:
            outcome["error"] = err
        if late.is_set() and "ref" in outcome:
            _take_back(host, spec.name)

    worker = threading.Thread(target=work, name=f"create-pool {spec.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        late.set()
        raise HostUnavailable(
            f"{doing}: the storage did not answer within {timeout:g} s; "
            "the pool is removed again when the host gives up."
        )
    failed, ref = outcome.get("error"), outcome.get("ref")
    if isinstance(failed, VirtError):
        raise failed
    assert isinstance(ref, PoolRef)
    return PoolRef(host.slug, ref.name, ref.uuid), text


def _take_back(host: HostRef, name: str) -> None:
    def undo(conn: libvirt.virConnect) -> None:
        _undo(conn.storagePoolLookupByName(name), built=True)

    try:
        _call(host, undo)
    except VirtError:
        pass


@dataclass(frozen=True)
class Source:
    """One thing `findStoragePoolSources` found: an NFS export, an iSCSI target, a VG."""

    host: str
    dir: str
    device: str
    name: str

    @property
    def label(self) -> str:
        return ":".join(x for x in (self.host, self.dir or self.device or self.name) if x)


def find_sources(host: HostRef, type_: PoolType, source_host: str, timeout: float) -> list[Source]:
    """What the host finds for a pool type (virConnectFindStoragePoolSources), waited for
    at most `timeout` seconds (showmount to a silent NFS server blocks); VirtError."""
    spec = None
    if source_host:
        node = etree.Element("source")
        etree.SubElement(node, "host", name=source_host)
        spec = etree.tostring(node, encoding="unicode")
    result: dict[str, list[Source] | VirtError] = {}

    def ask() -> None:
        def read(conn: libvirt.virConnect) -> list[Source]:
            return _sources(conn.findStoragePoolSources(type_.value, spec, 0))

        try:
            result["ok"] = _call(host, read, f"Cannot look for {type_.value} sources")
        except VirtError as err:
            result["error"] = err

    worker = threading.Thread(target=ask, name="find-pool-sources", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise HostUnavailable(f"{source_host or host.label} did not answer within {timeout:g} s.")
    found = result.get("ok", result.get("error"))
    if isinstance(found, VirtError):
        raise found
    return found or []


def _sources(text: str) -> list[Source]:
    return [
        Source(
            host=attr(src, "host", "name"),
            dir=attr(src, "dir", "path"),
            device=attr(src, "device", "path"),
            name=xml_text(src, "name"),
        )
        for src in parse(text).iter("source")
    ]


# Volumes


@dataclass(frozen=True)
class VolumeUser:
    """A VM whose XML names a volume as a disk."""

    name: str
    uuid: str
    active: bool
    target: str  # the disk's target dev, e.g. vda (blockResize wants it)


@dataclass(frozen=True)
class VolumeRow:
    ref: VolumeRef
    path: str
    type: str = ""
    format: str = ""
    capacity: int = 0
    allocation: int = 0
    backing: str = ""
    users: tuple[VolumeUser, ...] = ()

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def in_use(self) -> bool:
        return bool(self.users)

    @property
    def running_users(self) -> tuple[VolumeUser, ...]:
        return tuple(u for u in self.users if u.active)


@dataclass(frozen=True)
class VolumePage:
    rows: list[VolumeRow]
    total: int  # volumes matching the search
    all: int  # volumes in the pool


_USERS_TTL = 5.0
_users_lock = threading.Lock()
_users_cache: dict[str, tuple[float, dict[str, tuple[VolumeUser, ...]]]] = {}


def forget_users(host: HostRef) -> None:
    """Drop the cached disk map of `host` (after an event or an edit of ours)."""
    with _users_lock:
        _users_cache.pop(host.uri, None)


def _read_users(conn: libvirt.virConnect) -> dict[str, tuple[VolumeUser, ...]]:
    """path or "pool/volume" -> the VMs whose disks name it (one XMLDesc per VM)."""
    found: dict[str, list[VolumeUser]] = {}
    for dom in conn.listAllDomains(0):
        try:
            doc = DomainXML.parse(dom.XMLDesc(0))
            active = bool(dom.isActive())
        except libvirt.libvirtError:
            continue  # went away while we read
        for disk in doc.disks:
            user = VolumeUser(dom.name(), dom.UUIDString(), active, disk.target_dev or "")
            keys = [disk.source_file, disk.source_dev]
            if disk.source_pool and disk.source_volume:
                keys.append(f"{disk.source_pool}/{disk.source_volume}")
            for key in filter(None, keys):
                found.setdefault(key, []).append(user)
    return {k: tuple(v) for k, v in found.items()}


def _users(conn: libvirt.virConnect, uri: str) -> dict[str, tuple[VolumeUser, ...]]:
    now = time.monotonic()
    with _users_lock:
        cached = _users_cache.get(uri)
        if cached and now - cached[0] < _USERS_TTL:
            return cached[1]
    users = _read_users(conn)
    with _users_lock:
        _users_cache[uri] = (now, users)
    return users


def _row(
    host: HostRef,
    pool_name: str,
    vol: libvirt.virStorageVol,
    users: dict[str, tuple[VolumeUser, ...]],
) -> VolumeRow:
    """One volume from its XML alone (virStorageVolGetXMLDesc refreshes its sizes):
    one call per row, which is what makes a page of a big pool cheap."""
    doc = VolumeXML(parse(vol.XMLDesc(0)), "")  # read only: no Document bookkeeping
    path = doc.path or vol.path()
    return VolumeRow(
        ref=VolumeRef(host.slug, pool_name, vol.name(), vol.key()),
        path=path,
        type=doc.type or "",
        format=doc.format or "",
        capacity=doc.capacity or 0,
        allocation=doc.allocation or 0,
        backing=doc.backing_path or "",
        users=users.get(path, ()) + users.get(f"{pool_name}/{vol.name()}", ()),
    )


def list_volumes(
    host: HostRef, pool_name: str, q: str = "", offset: int = 0, limit: int = 100
) -> VolumePage:
    """The volumes of a pool whose names hold `q`, sorted by name, rows offset..offset+limit
    with their details (virStoragePoolListAllVolumes, then info and XMLDesc per row shown)."""

    def read(conn: libvirt.virConnect) -> VolumePage:
        p = _lookup_pool(conn, host, pool_name)
        if not p.isActive():
            raise InvalidState(f"Pool '{pool_name}' is not active: start it to see its volumes.")
        named = [(v.name(), v) for v in p.listAllVolumes(0)]
        named.sort(key=lambda nv: nv[0].casefold())
        needle = q.casefold()
        hits = [v for n, v in named if needle in n.casefold()] if needle else [v for _n, v in named]
        users = _users(conn, host.uri)
        rows = []
        for vol in hits[offset : offset + limit]:
            try:
                rows.append(_row(host, p.name(), vol, users))
            except libvirt.libvirtError as err:
                if err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise  # else: deleted while we listed
        return VolumePage(rows, len(hits), len(named))

    return _call(host, read, f"Cannot list the volumes of pool '{pool_name}'")


def _lookup_volume(
    conn: libvirt.virConnect, host: HostRef, pool_name: str, name: str
) -> tuple[libvirt.virStoragePool, libvirt.virStorageVol]:
    p = _lookup_pool(conn, host, pool_name)
    check_name("volume", name)
    try:
        return p, p.storageVolLookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            raise NotFound(f"There is no volume '{name}' in pool '{pool_name}'.") from None
        raise


def get_volume(host: HostRef, pool_name: str, name: str) -> VolumeRow:
    """One volume with the VMs that use it; NotFound."""

    def read(conn: libvirt.virConnect) -> VolumeRow:
        _p, vol = _lookup_volume(conn, host, pool_name, name)
        return _row(host, pool_name, vol, _users(conn, host.uri))

    return _call(host, read, f"Cannot read volume '{name}'")


def volume_name_problem(name: str) -> str | None:
    """Why `name` cannot name a new volume (a file in the pool's directory), or None."""
    problem = name_problem(name)
    if problem:
        return problem
    if "/" in name:
        return "a volume name cannot contain '/'"
    if name in (".", "..") or name.startswith("."):
        return "a volume name cannot start with '.'"
    return None


def check_size(size: int, what: str = "size") -> int:
    if size <= 0:
        raise InvalidInput(f"The {what} must be more than 0 bytes.")
    if size >= MAX_VOLUME_BYTES:
        raise InvalidInput(f"The {what} must be less than 1 EiB.")
    return size


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    format: VolumeFormat
    capacity: int
    preallocate: bool = False
    backing: str = ""  # a volume of the same pool, for a qcow2 overlay


VOLUME_SKELETON = """<volume>
  <name>x</name>
  <capacity unit='bytes'>0</capacity>
  <target>
    <format type='raw'/>
  </target>
</volume>
"""


def volume_doc(spec: VolumeSpec, backing_path: str = "", backing_format: str = "") -> VolumeXML:
    """The volume XML for `spec` through the field table; InvalidInput."""
    problem = volume_name_problem(spec.name)
    if problem:
        raise InvalidInput(f"The volume name {spec.name!r} cannot be used: {problem}.")
    check_size(spec.capacity)
    if spec.backing and spec.format != VolumeFormat.QCOW2:
        raise InvalidInput("Only a qcow2 volume can have a backing volume.")
    doc = VolumeXML.parse(VOLUME_SKELETON)
    doc.name, doc.format = spec.name, spec.format.value
    raw_full = spec.preallocate and spec.format != VolumeFormat.QCOW2
    doc.set_sizes(spec.capacity, spec.capacity if raw_full else 0)
    if backing_path:
        doc.backing_path, doc.backing_format = backing_path, backing_format or "raw"
    return doc


def create_volume(host: HostRef, pool_name: str, spec: VolumeSpec) -> tuple[VolumeRef, str]:
    """virStorageVolCreateXML (metadata preallocation for qcow2); the ref and the XML."""

    def run(conn: libvirt.virConnect) -> tuple[VolumeRef, str]:
        p = _lookup_pool(conn, host, pool_name)
        backing_path = backing_format = ""
        if spec.backing:
            _p, base = _lookup_volume(conn, host, pool_name, spec.backing)
            base_doc = VolumeXML.parse(base.XMLDesc(0))
            backing_path, backing_format = base.path(), base_doc.format or "raw"
        text = volume_doc(spec, backing_path, backing_format).tostring()
        flags = 0
        if spec.preallocate and spec.format == VolumeFormat.QCOW2:
            flags = libvirt.VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA
        vol = p.createXML(text, flags)
        return VolumeRef(host.slug, pool_name, vol.name(), vol.key()), text

    return _call(host, run, f"Cannot create volume '{spec.name}'")


def resize_volume(host: HostRef, pool_name: str, name: str, capacity: int) -> VolumeRef:
    """Grow a volume: virDomainBlockResize through a running VM that uses it, else
    virStorageVolResize. Shrinking is refused (InvalidInput): it cuts the data off."""
    check_size(capacity, "new size")

    def run(conn: libvirt.virConnect) -> VolumeRef:
        _p, vol = _lookup_volume(conn, host, pool_name, name)
        row = _row(host, pool_name, vol, _read_users(conn))
        if capacity < row.capacity:
            raise InvalidInput(
                f"Volume '{name}' is {row.capacity} bytes: vmdash does not shrink volumes, "
                "it would cut off the data at the end (and the file systems in it)."
            )
        if capacity == row.capacity:
            return row.ref
        running = row.running_users
        if running:
            dom = conn.lookupByUUIDString(running[0].uuid)
            dom.blockResize(running[0].target, capacity, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        else:
            vol.resize(capacity, 0)
        return row.ref

    return _call(host, run, f"Cannot resize volume '{name}'")


def delete_volume(host: HostRef, pool_name: str, name: str, even_in_use: bool = False) -> VolumeRef:
    """virStorageVolDelete; InvalidState naming the VMs that use it unless `even_in_use`."""

    def run(conn: libvirt.virConnect) -> VolumeRef:
        _p, vol = _lookup_volume(conn, host, pool_name, name)
        row = _row(host, pool_name, vol, _read_users(conn))
        if row.users and not even_in_use:
            names = ", ".join(sorted({u.name for u in row.users}))
            raise InvalidState(f"Volume '{name}' is a disk of {names}: confirm again to delete it.")
        vol.delete(0)
        return row.ref

    forget_users(host)
    return _call(host, run, f"Cannot delete volume '{name}'")


def wipe_volume(host: HostRef, pool_name: str, name: str) -> VolumeRef:
    """virStorageVolWipe (zeroes): the data is gone, the volume stays."""

    def run(conn: libvirt.virConnect) -> VolumeRef:
        _p, vol = _lookup_volume(conn, host, pool_name, name)
        vol.wipe(0)
        return VolumeRef(host.slug, pool_name, vol.name(), vol.key())

    return _call(host, run, f"Cannot wipe volume '{name}'")


def volume_names(host: HostRef, pool_name: str) -> list[str]:
    """The names of a pool's volumes (for a backing-volume choice)."""

    def read(conn: libvirt.virConnect) -> list[str]:
        p = _lookup_pool(conn, host, pool_name)
        return (
            sorted((v.name() for v in p.listAllVolumes(0)), key=str.casefold)
            if p.isActive()
            else []
        )

    return _call(host, read, f"Cannot list the volumes of pool '{pool_name}'")


def pool_names(host: HostRef) -> list[str]:
    """The names of the host's active pools (a clone's target)."""

    def read(conn: libvirt.virConnect) -> list[str]:
        flags = libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE
        return sorted((p.name() for p in conn.listAllStoragePools(flags)), key=str.casefold)

    return _call(host, read, f"Cannot list the pools of host '{host.label}'")


# Clone: virStorageVolCreateXMLFrom, watched from a second call


def _clone_doc(src: libvirt.virStorageVol, new_name: str) -> str:
    problem = volume_name_problem(new_name)
    if problem:
        raise InvalidInput(f"The volume name {new_name!r} cannot be used: {problem}.")
    src_doc = VolumeXML.parse(src.XMLDesc(0))
    doc = VolumeXML.parse(VOLUME_SKELETON)
    doc.name, doc.format = new_name, src_doc.format or "raw"
    doc.set_sizes(src.info()[1], 0)
    return doc.tostring()


def clone_volume(
    host: HostRef,
    pool_name: str,
    name: str,
    new_name: str,
    target_pool: str,
    progress: Callable[[float], None],
    cancelled: Callable[[], bool],
    poll: float = 0.5,
) -> VolumeRef:
    """Copy a volume into `target_pool` (virStorageVolCreateXMLFrom), reporting the new
    volume's allocation against the source's as a fraction. libvirt cannot stop a copy:
    a cancelled clone is deleted as soon as the copy ends (InvalidState "cancelled")."""
    doing = f"Cannot clone volume '{name}'"

    def prepare(
        conn: libvirt.virConnect,
    ) -> tuple[libvirt.virStoragePool, libvirt.virStorageVol, str, int]:
        _p, src = _lookup_volume(conn, host, pool_name, name)
        dest = _lookup_pool(conn, host, target_pool)
        return dest, src, _clone_doc(src, new_name), max(1, src.info()[2])

    dest, src, text, total = _call(host, prepare, doing)
    done: dict[str, VolumeRef | VirtError] = {}

    def copy() -> None:
        def run(_conn: libvirt.virConnect) -> VolumeRef:
            vol = dest.createXMLFrom(text, src, 0)
            return VolumeRef(host.slug, target_pool, vol.name(), vol.key())

        try:
            done["ref"] = _call(host, run, doing)
        except VirtError as err:
            done["error"] = err

    worker = threading.Thread(target=copy, name=f"clone {name}", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(poll)
        progress(min(0.99, _allocation(dest, new_name) / total))
    failed, ref = done.get("error"), done.get("ref")
    if isinstance(failed, VirtError):
        raise failed
    assert isinstance(ref, VolumeRef)
    if cancelled():
        delete_volume(host, target_pool, new_name, even_in_use=True)
        raise InvalidState(f"The clone of '{name}' was cancelled and removed.")
    progress(1.0)
    return ref


def _allocation(dest: libvirt.virStoragePool, name: str) -> int:
    try:
        return int(dest.storageVolLookupByName(name).info()[2])
    except libvirt.libvirtError:
        return 0  # not there yet


# Streams: upload and download through the host's own connection


_busy_lock = threading.Lock()
_busy: set[tuple[str, str, str]] = set()


def _claim(key: tuple[str, str, str], name: str) -> None:
    with _busy_lock:
        if key in _busy:
            raise InvalidState(f"Volume '{name}' is being uploaded already; wait for it to end.")
        _busy.add(key)


def _release(key: tuple[str, str, str]) -> None:
    with _busy_lock:
        _busy.discard(key)


def detect_format(head: bytes) -> VolumeFormat:
    """What a file's first bytes say it is (qcow2 magic, ISO 9660 volume descriptor)."""
    if head[:4] == b"QFI\xfb":
        return VolumeFormat.QCOW2
    if head[0x8001:0x8006] == b"CD001":
        return VolumeFormat.ISO
    return VolumeFormat.RAW


class Leftover(StrEnum):
    """What a failed upload left of the volume it created."""

    NONE = "none"  # it wrote into an existing volume, or created none
    REMOVED = "removed"
    LEFT = "left"  # the host did not let vmdash delete it


@dataclass
class Upload:
    """One upload into a volume (virStorageVolUpload + virStreamSend).

    `open` checks the pool's free space before anything is written, creates a
    NEW volume at the file's size, and claims the volume so that a second
    upload to it is refused; `abort` removes a volume it created.
    """

    host: HostRef
    pool_name: str
    name: str
    size: int
    new: bool
    ref: VolumeRef | None = None
    sent: int = 0
    left: Leftover = Leftover.NONE
    _stream: libvirt.virStream | None = field(default=None, repr=False)
    _vol: libvirt.virStorageVol | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.host.uri, self.pool_name, self.name)

    @property
    def doing(self) -> str:
        return f"Cannot upload into volume '{self.name}'"

    def open(self) -> VolumeRef:
        check_size(self.size, "file size")
        _claim(self.key, self.name)
        try:
            self.ref = _call(self.host, self._open, self.doing)
        except VirtError:
            _release(self.key)
            raise
        return self.ref

    def _open(self, conn: libvirt.virConnect) -> VolumeRef:
        p = _lookup_pool(conn, self.host, self.pool_name)
        if not p.isActive():
            raise InvalidState(f"Pool '{self.pool_name}' is not active.")
        p.refresh(0)
        if self.new:
            free = p.info()[3]
            if self.size > free:
                raise InvalidInput(
                    f"The file ({self.size} bytes) is bigger than the free space of pool "
                    f"'{self.pool_name}' ({free} bytes)."
                )
            spec = VolumeSpec(self.name, VolumeFormat.RAW, self.size)
            self._vol = p.createXML(volume_doc(spec).tostring(), 0)
        else:
            _p, self._vol = _lookup_volume(conn, self.host, self.pool_name, self.name)
            capacity = self._vol.info()[1]
            if self.size > capacity:
                raise InvalidInput(
                    f"The file ({self.size} bytes) is bigger than volume '{self.name}' "
                    f"({capacity} bytes): grow the volume first."
                )
        self._stream = conn.newStream(0)
        try:
            self._vol.upload(self._stream, 0, self.size, 0)
        except libvirt.libvirtError:
            self._drop_new()
            raise
        return VolumeRef(self.host.slug, self.pool_name, self._vol.name(), self._vol.key())

    def send(self, data: bytes) -> int:
        """Write one chunk (virStreamSend, until all of it is taken); the bytes so far."""
        assert self._stream is not None
        if self.sent + len(data) > self.size:
            raise InvalidInput("The upload sent more bytes than it announced.")
        rest = memoryview(data)
        try:
            while rest:
                n = self._stream.send(rest.tobytes() if len(rest) < len(data) else data)
                if n < 0:
                    raise OperationFailed(f"{self.doing}: the stream refused the data.")
                rest = rest[n:]
        except libvirt.libvirtError as err:
            raise translate(err, self.doing) from None
        self.sent += len(data)
        return self.sent

    def finish(self) -> VolumeRef:
        """virStreamFinish, then a pool refresh so that libvirt reads the new format."""
        assert self._stream is not None and self.ref is not None
        try:
            if self.sent != self.size:
                raise InvalidInput(f"The upload ended after {self.sent} of {self.size} bytes.")
            self._stream.finish()
            forget_users(self.host)
            return self.ref
        except libvirt.libvirtError as err:
            self.abort()
            raise translate(err, self.doing) from None
        finally:
            _release(self.key)

    def abort(self) -> Leftover:
        """virStreamAbort; a volume this upload created is deleted. What became of it."""
        try:
            if self._stream is not None:
                self._stream.abort()
        except libvirt.libvirtError:
            pass
        try:
            if self.left == Leftover.NONE:
                self.left = self._drop_new()
            return self.left
        finally:
            _release(self.key)

    def _drop_new(self) -> Leftover:
        """Delete the volume this upload created: on the stream's connection, else on a
        fresh one (the host went away mid-upload and came back, or the connection broke)."""
        if not self.new or self._vol is None:
            return Leftover.NONE
        vol, self._vol = self._vol, None
        try:
            vol.delete(0)
            return Leftover.REMOVED
        except libvirt.libvirtError:
            pass

        def again(conn: libvirt.virConnect) -> None:
            _lookup_volume(conn, self.host, self.pool_name, self.name)[1].delete(0)

        try:
            _call(self.host, again, f"Cannot remove the half-written volume '{self.name}'")
        except NotFound:
            pass  # gone already
        except VirtError:
            return Leftover.LEFT
        return Leftover.REMOVED


_ZEROS = bytes(1 << 20)


@dataclass
class Download:
    """One download of a volume (virStorageVolDownload + virStreamRecvFlags).

    The stream is sparse (VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM): the host
    skips the holes of the file instead of reading and sending them as zeros,
    so a mostly empty 100 GB image costs the host and the network only its
    data. The HTTP response has no holes: they are written out here as zeros.
    """

    host: HostRef
    pool_name: str
    name: str
    size: int = 0
    sparse: bool = True
    hole: int = 0  # bytes of the current hole still to yield as zeros
    skipped: int = 0  # bytes the host sent as holes, not as data
    _stream: libvirt.virStream | None = field(default=None, repr=False)

    def open(self) -> int:
        """Start the stream; the volume's size in bytes (its capacity for raw files)."""

        def run(conn: libvirt.virConnect) -> int:
            _p, vol = _lookup_volume(conn, self.host, self.pool_name, self.name)
            self._stream = conn.newStream(0)
            try:
                flags = libvirt.VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM if self.sparse else 0
                vol.download(self._stream, 0, 0, flags)
            except libvirt.libvirtError as err:
                if not self.sparse or err.get_error_code() not in _NO_SPARSE:
                    raise
                self.sparse = False  # a backend without sparse streams: every byte
                self._stream = conn.newStream(0)
                vol.download(self._stream, 0, 0, 0)
            return int(vol.info()[1])

        self.size = _call(self.host, run, f"Cannot download volume '{self.name}'")
        return self.size

    def read(self, n: int = 1 << 20) -> bytes:
        """The next chunk, b"" at the end (then the stream is finished); VirtError."""
        assert self._stream is not None
        if self.hole:
            part = min(self.hole, n, len(_ZEROS))
            self.hole -= part
            return _ZEROS[:part]
        try:
            flags = libvirt.VIR_STREAM_RECV_STOP_AT_HOLE if self.sparse else 0
            data = self._stream.recvFlags(n, flags)
            if data == -3:  # a hole: its length, then zeros
                self.hole = int(self._stream.recvHole(0))
                self.skipped += self.hole
                return self.read(n)
            if isinstance(data, int) or not data:
                self._stream.finish()
                return b""
            return bytes(data)
        except libvirt.libvirtError as err:
            self.close()
            raise translate(err, f"Cannot download volume '{self.name}'") from None

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.abort()
            except libvirt.libvirtError:
                pass
            self._stream = None


_NO_SPARSE = {
    libvirt.VIR_ERR_INVALID_ARG,
    libvirt.VIR_ERR_NO_SUPPORT,
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
}


def read_pool(host: HostRef, uuid: str) -> PoolSummary | None:
    """A pool by UUID (virStoragePoolLookupByUUIDString), refreshed; None once it is gone."""

    def read(conn: libvirt.virConnect) -> PoolSummary | None:
        try:
            p = conn.storagePoolLookupByUUIDString(uuid)
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
                return None
            raise
        return _summarize(host, p)

    return _call(host, read, f"Cannot read pool {uuid}")
