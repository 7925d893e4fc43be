"""VMs (libvirt domains): listing, reading, lifecycle.

Every function takes a HostRef and returns frozen dataclasses; errors come
out as VirtError kinds. The list uses bulk calls only (virConnectGetAllDomainStats
and a few virConnectListAllDomains with filter flags): no per-VM XMLDesc.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

import libvirt
from django.utils.translation import gettext_noop as _t

from vmdash.virt import tagcache
from vmdash.virt.connection import pool
from vmdash.virt.enums import DomainState, state_reason
from vmdash.virt.errors import InvalidInput, InvalidState, NotFound, still_there, translate
from vmdash.virt.names import check_name
from vmdash.virt.refs import DomainRef, HostRef
from vmdash.virt.xml.domain import CharXML, DiskXML, DomainXML, GraphicsXML, InterfaceXML
from vmdash.virt.xml.tags import MAX_TAGS, tag_problem, tags_xml
from vmdash.virt.xml.tags import NS as TAGS_NS
from vmdash.virt.xml.tags import PREFIX as TAGS_PREFIX


class Op(StrEnum):
    """Lifecycle operations, named as they appear in URLs."""

    START = "start"
    SHUTDOWN = "shutdown"
    REBOOT = "reboot"
    FORCE_OFF = "force-off"
    PAUSE = "pause"
    RESUME = "resume"
    SAVE = "save"
    DISCARD_SAVE = "discard-save"
    AUTOSTART_ON = "autostart-on"
    AUTOSTART_OFF = "autostart-off"
    DELETE = "delete"


@dataclass(frozen=True)
class OpInfo:
    label: str
    verb: str  # "Cannot <verb> VM 'x'"
    confirm: bool = False
    danger: bool = False


OPS: dict[Op, OpInfo] = {
    Op.START: OpInfo("Start", "start"),
    Op.SHUTDOWN: OpInfo("Shut down", "shut down"),
    Op.REBOOT: OpInfo("Reboot", "reboot"),
    Op.FORCE_OFF: OpInfo("Force off", "force off", confirm=True, danger=True),
    Op.PAUSE: OpInfo("Pause", "pause"),
    Op.RESUME: OpInfo("Resume", "resume"),
    Op.SAVE: OpInfo("Save (hibernate)", "save"),
    Op.DISCARD_SAVE: OpInfo("Discard saved state", "discard the saved state of", confirm=True),
    Op.AUTOSTART_ON: OpInfo("Autostart on", "turn on autostart for"),
    Op.AUTOSTART_OFF: OpInfo("Autostart off", "turn off autostart for"),
    Op.DELETE: OpInfo("Delete", "delete", confirm=True, danger=True),
}

_RUNNING = {DomainState.RUNNING, DomainState.BLOCKED}
_STOPPED = {DomainState.SHUTOFF, DomainState.CRASHED, DomainState.NOSTATE}


def available_ops(
    state: DomainState, *, persistent: bool, managed_save: bool, autostart: bool
) -> tuple[Op, ...]:
    """The operations that make sense now, in the order the page shows them."""
    ops: list[Op] = []
    if state in _STOPPED:
        ops.append(Op.START)
    if state in _RUNNING:
        ops += [Op.SHUTDOWN, Op.REBOOT, Op.PAUSE]
    if state == DomainState.PAUSED:
        ops.append(Op.RESUME)
    if state == DomainState.PMSUSPENDED:
        ops.append(Op.START)  # virDomainPMWakeup is not offered; start wakes it
    if persistent and (state in _RUNNING or state == DomainState.PAUSED):
        ops.append(Op.SAVE)
    if state not in _STOPPED:
        ops.append(Op.FORCE_OFF)
    if managed_save and state in _STOPPED:
        ops.append(Op.DISCARD_SAVE)
    if persistent:
        ops.append(Op.AUTOSTART_OFF if autostart else Op.AUTOSTART_ON)
    if persistent and state in _STOPPED:
        ops.append(Op.DELETE)
    return tuple(o for o in ops if not (o == Op.START and state == DomainState.PMSUSPENDED))


@dataclass(frozen=True)
class DomainSummary:
    """One row of the VM list."""

    host: str
    name: str
    uuid: str
    state: DomainState
    reason: str
    vcpus: int
    memory_kib: int
    max_memory_kib: int
    persistent: bool
    autostart: bool
    managed_save: bool
    title: str = ""
    description: str = ""
    tags: frozenset[str] | None = None  # vmdash's, from <metadata> (vmdash/virt/tagcache.py)

    @cached_property
    def ref(self) -> DomainRef:
        return DomainRef(self.host, self.name, self.uuid, self.tags)

    @cached_property
    def ops(self) -> tuple[Op, ...]:
        return available_ops(
            self.state,
            persistent=self.persistent,
            managed_save=self.managed_save,
            autostart=self.autostart,
        )


@dataclass(frozen=True)
class Disk:
    device: str  # disk, cdrom, floppy, lun
    target: str
    bus: str
    source: str
    source_type: str  # file, block, volume, network
    format: str
    capacity: int | None = None  # bytes
    allocation: int | None = None
    readonly: bool = False
    boot_order: int | None = None
    cache: str = ""  # "" = the hypervisor's default
    io: str = ""
    discard: str = ""


@dataclass(frozen=True)
class Nic:
    mac: str
    type: str
    source: str
    model: str
    target: str
    addresses: tuple[str, ...] = ()
    link_up: bool = True
    virtualport: str = ""  # openvswitch: the bridge is an OVS one
    mode: str = ""  # direct (macvtap): bridge, vepa, private, passthrough

    @property
    def kind(self) -> str:
        """network, bridge, ovs or direct (or libvirt's own word for the rest)."""
        return "ovs" if self.type == "bridge" and self.virtualport == "openvswitch" else self.type


@dataclass(frozen=True)
class Graphics:
    type: str
    port: int | None
    listen: str
    autoport: bool
    has_password: bool


@dataclass(frozen=True)
class Serial:
    kind: str  # serial or console
    type: str  # pty, file, tcp, ...
    target: str
    path: str


@dataclass(frozen=True)
class DomainDetail:
    summary: DomainSummary
    os_type: str
    arch: str
    machine: str
    firmware: str
    boot_order: tuple[str, ...]
    emulator: str
    domain_type: str
    disks: tuple[Disk, ...] = field(default_factory=tuple)
    nics: tuple[Nic, ...] = field(default_factory=tuple)
    graphics: tuple[Graphics, ...] = field(default_factory=tuple)
    serials: tuple[Serial, ...] = field(default_factory=tuple)
    xml: str = ""

    @property
    def ref(self) -> DomainRef:
        return self.summary.ref


_LIST_STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_BALLOON
)


# A VM in the middle of a long job (a save, a destroy waiting for its QEMU to
# go, a disk copy) would hold the whole list until it ends: without waiting,
# libvirt leaves out the stats that need that VM's job, and dom.info() fills in.
_NOWAIT = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT


def _uuids(conn: libvirt.virConnect, flags: int) -> set[str]:
    return {d.UUIDString() for d in conn.listAllDomains(flags)}


def list_domains(host: HostRef) -> list[DomainSummary]:
    """All VMs of a host, without title/description (see `with_metadata`).

    virConnectGetAllDomainStats(state, vcpu, balloon) plus three filtered
    virConnectListAllDomains; raises HostUnavailable.
    """

    def read(conn: libvirt.virConnect) -> list[DomainSummary]:
        stats = conn.getAllDomainStats(_LIST_STATS, _NOWAIT)
        autostart = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)
        transient = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT)
        saved = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE)
        handles: dict[str, libvirt.virDomain] = {}

        def row(item: tuple[libvirt.virDomain, dict[str, Any]]) -> DomainSummary:
            dom, st = item
            uuid = dom.UUIDString()
            state = DomainState.from_virt(st.get("state.state", 0))
            if "vcpu.current" in st and "balloon.current" in st:
                vcpus, mem, maxmem = (
                    st["vcpu.current"],
                    st["balloon.current"],
                    st.get("balloon.maximum", st["balloon.current"]),
                )
            else:  # drivers without these stat groups (the test driver): one cheap call
                info = dom.info()
                vcpus, mem, maxmem = info[3], info[2], info[1]
            summary = DomainSummary(
                host=host.slug,
                name=dom.name(),
                uuid=uuid,
                state=state,
                reason=state_reason(state, st.get("state.reason", 0)),
                vcpus=int(vcpus),
                memory_kib=int(mem),
                max_memory_kib=int(maxmem),
                persistent=uuid not in transient,
                autostart=uuid in autostart,
                managed_save=uuid in saved,
                tags=tagcache.tags_of(conn, host.slug, dom),
            )
            handles[uuid] = dom
            return summary

        # A VM undefined between the bulk call and its row's own calls (by a
        # person, virsh, a test) is left out; it never fails the whole list.
        rows = still_there(stats, row, libvirt.VIR_ERR_NO_DOMAIN)
        _remember_handles(conn, handles)
        return rows

    return pool().call(host.uri, read, f"Cannot list the VMs of host '{host.label}'")


def _metadata(dom: libvirt.virDomain, kind: int) -> str:
    try:
        return str(dom.metadata(kind, None, 0))
    except libvirt.libvirtError as err:
        if err.get_error_code() in (
            libvirt.VIR_ERR_NO_DOMAIN_METADATA,
            libvirt.VIR_ERR_NO_DOMAIN,
        ):
            return ""
        raise


def with_metadata(host: HostRef, rows: Iterable[DomainSummary]) -> list[DomainSummary]:
    """The same rows with title and description (virDomainGetMetadata, two per VM).

    Meant for the rows a page actually shows, not for a whole host. Uses the
    handles of the last listing on this connection: no lookup per VM.
    (Spreading the calls over threads was measured slower here.)
    """
    rows = list(rows)

    def fill(conn: libvirt.virConnect, row: DomainSummary) -> DomainSummary:
        dom = _handles_for(conn).get(row.uuid)
        try:
            if dom is None:
                dom = conn.lookupByUUIDString(row.uuid)
            return replace(
                row,
                title=_metadata(dom, libvirt.VIR_DOMAIN_METADATA_TITLE),
                description=_metadata(dom, libvirt.VIR_DOMAIN_METADATA_DESCRIPTION),
            )
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return row  # gone since the listing
            raise

    def read(conn: libvirt.virConnect) -> list[DomainSummary]:
        return [fill(conn, row) for row in rows]

    if not rows:
        return []
    return pool().call(host.uri, read, f"Cannot read VM titles on host '{host.label}'")


# The virDomain handles of the last listing per connection, so that reading
# the titles of the rows on a page needs no lookup per VM. Handles, not state.
_handles: weakref.WeakKeyDictionary[libvirt.virConnect, dict[str, libvirt.virDomain]] = (
    weakref.WeakKeyDictionary()
)
_handles_lock = threading.Lock()


def _handles_for(conn: libvirt.virConnect) -> dict[str, libvirt.virDomain]:
    with _handles_lock:
        return _handles.get(conn, {})


def _remember_handles(conn: libvirt.virConnect, handles: dict[str, libvirt.virDomain]) -> None:
    with _handles_lock:
        _handles[conn] = handles


def lookup(conn: libvirt.virConnect, host: HostRef, name: str) -> libvirt.virDomain:
    """virDomainLookupByName; NotFound that names the VM and the host.

    A name no VM can have (NUL, control characters, too long) is NotFound
    before libvirt is asked: the binding would raise ValueError on a NUL.
    """
    check_name("VM", name)
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            raise NotFound(f"There is no VM '{name}' on host '{host.label}'.") from None
        raise


def _facts(host: HostRef, dom: libvirt.virDomain) -> DomainSummary:
    """One VM's row without title and description (virDomainGetState, GetInfo, ...)."""
    state_code, reason_code = dom.state()
    state = DomainState.from_virt(state_code)
    info = dom.info()
    persistent = bool(dom.isPersistent())
    return DomainSummary(
        host=host.slug,
        name=dom.name(),
        uuid=dom.UUIDString(),
        state=state,
        reason=state_reason(state, reason_code),
        vcpus=int(info[3]),
        memory_kib=int(info[2]),
        max_memory_kib=int(info[1]),
        persistent=persistent,
        autostart=bool(dom.autostart()) if persistent else False,
        managed_save=bool(dom.hasManagedSaveImage(0)) if persistent else False,
        tags=tagcache.tags_of(dom.connect(), host.slug, dom),
    )


def summarize(host: HostRef, dom: libvirt.virDomain) -> DomainSummary:
    """One VM's row from its handle, with title and description (virDomainGetMetadata)."""
    return replace(
        _facts(host, dom),
        title=_metadata(dom, libvirt.VIR_DOMAIN_METADATA_TITLE),
        description=_metadata(dom, libvirt.VIR_DOMAIN_METADATA_DESCRIPTION),
    )


def get_summary(host: HostRef, name: str) -> DomainSummary:
    """One VM's row (virDomainGetState, GetInfo, GetAutostart, ...); NotFound."""
    return pool().call(
        host.uri,
        lambda conn: summarize(host, lookup(conn, host, name)),
        f"Cannot read VM '{name}'",
    )


def _source_label(disk: DiskXML) -> str:
    """Where a disk's data lives, as the page shows it."""
    if disk.type == "volume":
        return f"{disk.source_pool or ''}/{disk.source_volume or ''}"
    if disk.type == "network":
        return f"{disk.source_protocol or ''}://{disk.source_host or ''}/{disk.source_name or ''}"
    return disk.source_file or disk.source_dev or disk.source_dir or ""


def _disk(disk: DiskXML) -> Disk:
    return Disk(
        device=disk.device or "disk",
        target=disk.target_dev or "",
        bus=disk.target_bus or "",
        source=_source_label(disk),
        source_type=disk.type or "file",
        format=disk.driver_type or "",
        readonly=disk.readonly,
        boot_order=disk.boot_order,
        cache=disk.driver_cache or "",
        io=disk.driver_io or "",
        discard=disk.driver_discard or "",
    )


def _nic(nic: InterfaceXML) -> Nic:
    return Nic(
        mac=(nic.mac or "").lower(),
        type=nic.type or "",
        source=nic.source_network or nic.source_bridge or nic.source_dev or "",
        model=nic.model or "",
        target=nic.target or "",
        link_up=nic.link_state != "down",
        virtualport=nic.virtualport or "",
        mode=nic.source_mode or "",
    )


def _graphics(g: GraphicsXML) -> Graphics:
    # Read from the SECURE XML: only there does libvirt show that a password is set.
    return Graphics(
        type=g.type or "",
        port=g.port,
        listen=g.address,
        autoport=g.autoport is True,
        has_password=g.has_password,
    )


def _serial(c: CharXML) -> Serial:
    kind = c.target_type or c.tag
    port = "" if c.target_port is None else str(c.target_port)
    return Serial(
        kind=c.tag,
        type=c.type or "",
        target=f"{kind} {port}".strip(),
        path=c.source_path or c.tty or "",
    )


def _addresses(dom: libvirt.virDomain) -> dict[str, list[str]]:
    """IP addresses by MAC, from DHCP leases, else the host's ARP table."""
    found: dict[str, list[str]] = {}
    for source in (
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP,
    ):
        try:
            ifaces = dom.interfaceAddresses(source, 0) or {}
        except libvirt.libvirtError:
            continue
        for iface in ifaces.values():
            mac = (iface.get("hwaddr") or "").lower()
            for addr in iface.get("addrs") or []:
                found.setdefault(mac, []).append(f"{addr['addr']}/{addr['prefix']}")
        if found:
            break
    return found


def _firmware(doc: DomainXML) -> str:
    if doc.firmware == "efi":
        return "UEFI"
    if doc.loader_type == "pflash" or "OVMF" in (doc.loader or ""):
        return "UEFI"
    if doc.kernel is not None:
        return _t("direct kernel boot")  # translated when shown
    return "BIOS"


def _sized(dom: libvirt.virDomain, disk: Disk) -> Disk:
    """The disk with its capacity and allocation (virDomainGetBlockInfo) when known."""
    if not disk.source or disk.source_type not in ("file", "block", "volume"):
        return disk
    try:
        capacity, allocation, _physical = dom.blockInfo(disk.target, 0)
    except libvirt.libvirtError:
        return disk  # no medium, inaccessible file: size unknown
    return replace(disk, capacity=int(capacity), allocation=int(allocation))


def _boot_order(doc: DomainXML, disks: Iterable[Disk]) -> tuple[str, ...]:
    """<os><boot dev=...>, else the disks' per-device boot order."""
    devs = [b.dev or "" for b in doc.boot]
    if devs:
        return tuple(devs)
    ordered = sorted((d.boot_order, d.target) for d in disks if d.boot_order is not None)
    return tuple(target for _order, target in ordered)


def _detail(host: HostRef, dom: libvirt.virDomain) -> DomainDetail:
    summary = summarize(host, dom)
    doc = DomainXML.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE))
    disks = tuple(_sized(dom, _disk(d)) for d in doc.disks)
    nics = tuple(_nic(n) for n in doc.interfaces)
    if summary.state.is_active and nics:
        addrs = _addresses(dom)
        nics = tuple(replace(n, addresses=tuple(addrs.get(n.mac, ()))) for n in nics)
    return DomainDetail(
        summary=summary,
        os_type=doc.os_type or "",
        arch=doc.arch or "",
        machine=doc.machine or "",
        firmware=_firmware(doc),
        boot_order=_boot_order(doc, disks),
        emulator=doc.emulator or "",
        domain_type=doc.type or "",
        disks=disks,
        nics=nics,
        graphics=tuple(_graphics(g) for g in doc.graphics),
        serials=tuple(_serial(c) for c in doc.chars),
        # A second read, without the secure flag, for the XML tab: libvirt
        # knows which parts are secret (passwords), so it leaves them out.
        xml=dom.XMLDesc(0),
    )


def get_detail(host: HostRef, name: str) -> DomainDetail:
    """Everything the VM page shows: virDomainGetXMLDesc (secure, then plain) and
    the state calls; NotFound. Passwords are reduced to `has_password`."""
    check_name("VM", name)
    return pool().call(
        host.uri, lambda conn: _detail(host, lookup(conn, host, name)), f"Cannot read VM '{name}'"
    )


def define(host: HostRef, doc_or_text: DomainXML | str) -> tuple[DomainRef, str]:
    """Define (create or replace) a VM from XML, checked against libvirt's schema.

    virDomainDefineXMLFlags(VIR_DOMAIN_DEFINE_VALIDATE); returns the VM's ref
    and the diff of the edit ("" for plain text). InvalidInput for XML
    libvirt refuses.
    """
    doc = doc_or_text if isinstance(doc_or_text, DomainXML) else DomainXML.parse(doc_or_text)
    diff = doc.diff() if isinstance(doc_or_text, DomainXML) else ""
    text = doc.tostring()

    doing = f"Cannot define VM '{doc.name or ''}'"

    def act(conn: libvirt.virConnect) -> DomainRef:
        dom = _define_validated(conn, text, doing)
        return DomainRef(host.slug, dom.name(), dom.UUIDString())

    return pool().call(host.uri, act, doing), diff


def _define_validated(conn: libvirt.virConnect, text: str, doing: str) -> libvirt.virDomain:
    """virDomainDefineXMLFlags(VALIDATE); XML outside libvirt's schema is InvalidInput."""
    try:
        return conn.defineXMLFlags(text, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    except libvirt.libvirtError as err:
        raise translate(err, doing) from None


# Inactive: the definition, not the running state. Secure: without it libvirt
# leaves out the graphics password, and defining the XML back would drop it.
_EDIT_FLAGS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


def edit(
    host: HostRef,
    name: str,
    change: Callable[[DomainXML], None],
    *,
    doing: str = "",
    persistent_only: bool = False,
) -> str:
    """Apply `change` to the VM's inactive XML and define it (validated).

    virDomainGetXMLDesc(INACTIVE|SECURE) then virDomainDefineXMLFlags(VALIDATE),
    on one connection. Returns the diff, passwords hidden; "" means nothing
    changed and nothing was defined. `change` may raise InvalidInput to refuse.
    `persistent_only`: a transient VM is refused (defining it would make it
    persistent). NotFound, InvalidInput, InvalidState.
    """
    check_name("VM", name)
    doing = doing or f"Cannot change VM '{name}'"

    def act(conn: libvirt.virConnect) -> str:
        dom = lookup(conn, host, name)
        if persistent_only and not dom.isPersistent():
            raise InvalidState(f"{doing}: it is transient; only its live state exists.")
        doc = DomainXML.parse(dom.XMLDesc(_EDIT_FLAGS))
        change(doc)
        if not doc.changed:
            return ""
        _define_validated(conn, doc.tostring(), doing)
        return doc.diff()

    return pool().call(host.uri, act, doing)


_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)

_CALLS: dict[Op, Callable[[libvirt.virDomain], object]] = {
    Op.START: lambda d: d.create(),
    Op.SHUTDOWN: lambda d: d.shutdown(),
    Op.REBOOT: lambda d: d.reboot(0),
    Op.FORCE_OFF: lambda d: d.destroy(),
    Op.PAUSE: lambda d: d.suspend(),
    Op.RESUME: lambda d: d.resume(),
    Op.SAVE: lambda d: d.managedSave(0),
    Op.DISCARD_SAVE: lambda d: d.managedSaveRemove(0),
    Op.AUTOSTART_ON: lambda d: d.setAutostart(1),
    Op.AUTOSTART_OFF: lambda d: d.setAutostart(0),
    Op.DELETE: lambda d: d.undefineFlags(_UNDEFINE_FLAGS),
}


def _refuse(name: str, op: Op, before: DomainSummary) -> None:
    """InvalidState naming the state when `op` makes no sense now."""
    if op in before.ops:
        return
    raise InvalidState(
        f"Cannot {OPS[op].verb} VM '{name}': it is {before.state.label}"
        + (" and has no saved state" if op == Op.DISCARD_SAVE else "")
        + ("" if before.persistent or op not in _PERSISTENT_ONLY else " and transient")
        + "."
    )


def run_op(host: HostRef, name: str, op: Op) -> DomainSummary:
    """Carry out a lifecycle operation (virDomainCreate, Shutdown, Destroy, ...).

    Checks the VM's current state first, so that an operation that makes no
    sense now fails with InvalidState and a sentence naming the state.
    Returns the VM's fresh row, read once after the call on the same handle
    (`.ref` for the audit trail); after DELETE, the row it had before.
    """
    verb = OPS[op].verb

    def act(conn: libvirt.virConnect) -> DomainSummary:
        dom = lookup(conn, host, name)
        before = _facts(host, dom)
        _refuse(name, op, before)
        try:
            _CALLS[op](dom)
        except libvirt.libvirtError as err:
            if op != Op.DELETE or err.get_error_code() not in (
                libvirt.VIR_ERR_INVALID_ARG,
                libvirt.VIR_ERR_NO_SUPPORT,
            ):
                raise translate(err, f"Cannot {verb} VM '{name}'") from None
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)  # older drivers
        return before if op == Op.DELETE else summarize(host, dom)

    return pool().call(host.uri, act, f"Cannot {verb} VM '{name}'")


_PERSISTENT_ONLY = {Op.AUTOSTART_ON, Op.AUTOSTART_OFF, Op.DELETE, Op.SAVE}


def state_counts(host: HostRef) -> dict[DomainState, int]:
    """How many VMs are in each state (one virConnectGetAllDomainStats)."""

    def read(conn: libvirt.virConnect) -> dict[DomainState, int]:
        counts: dict[DomainState, int] = {}
        for _dom, st in conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0):
            state = DomainState.from_virt(st.get("state.state", 0))
            counts[state] = counts.get(state, 0) + 1
        return counts

    return pool().call(host.uri, read, f"Cannot count the VMs of host '{host.label}'")


def get_tags(host: HostRef, name: str) -> frozenset[str]:
    """The VM's vmdash tags, read now (virDomainGetMetadata ELEMENT); NotFound."""

    def read(conn: libvirt.virConnect) -> frozenset[str]:
        dom = lookup(conn, host, name)
        tagcache.forget(conn, host.slug, dom.UUIDString())
        return tagcache.tags_of(conn, host.slug, dom)

    return pool().call(host.uri, read, f"Cannot read the tags of VM '{name}'")


def known_ref(host: str, name: str, uuid: str) -> DomainRef:
    """A VM's ref with the tags this process last read for it (None: not read).

    No libvirt call: the live stream's first look at an event, on its loop."""
    return DomainRef(host, name, uuid, tagcache.known_tags(host, uuid))


def tags_by_uuid(host: HostRef, uuid: str) -> frozenset[str] | None:
    """The tags of the VM with this UUID (remembered, else virDomainGetMetadata);
    None when there is no such VM. HostUnavailable."""

    def read(conn: libvirt.virConnect) -> frozenset[str] | None:
        try:
            return tagcache.tags_of(conn, host.slug, conn.lookupByUUIDString(uuid))
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    return pool().call(host.uri, read, f"Cannot read the tags of VM {uuid}")


def set_tags(host: HostRef, name: str, tags: Iterable[str]) -> tuple[DomainRef, str]:
    """Store the VM's tags in its <metadata> (virDomainSetMetadata ELEMENT, in its
    definition and, while it runs, live too); returns the ref with the new tags and
    "before → after" for the audit. Other metadata is left alone. NotFound,
    InvalidInput (a tag libvirt or we refuse), OperationFailed."""
    wanted = frozenset(tags)
    if len(wanted) > MAX_TAGS:
        raise InvalidInput(f"A VM carries at most {MAX_TAGS} tags.")
    for tag in wanted:
        problem = tag_problem(tag)
        if problem is not None:
            raise InvalidInput(f"'{tag}': {problem}.")

    def write(conn: libvirt.virConnect) -> tuple[DomainRef, str]:
        dom = lookup(conn, host, name)
        uuid = dom.UUIDString()
        before = tagcache.read_tags(dom)
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG if dom.isPersistent() else 0
        if dom.isActive():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        element = tags_xml(wanted) if wanted else None
        key = TAGS_PREFIX if wanted else None
        try:
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, element, key, TAGS_NS, flags)
        finally:
            tagcache.forget(conn, host.slug, uuid)
        change = f"tags: {_listed(before)} → {_listed(wanted)}"
        return DomainRef(host.slug, dom.name(), uuid, wanted), change

    return pool().call(host.uri, write, f"Cannot change the tags of VM '{name}'")


def _listed(tags: Iterable[str]) -> str:
    return ", ".join(sorted(tags)) or "(none)"
