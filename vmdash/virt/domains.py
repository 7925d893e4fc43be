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

import libvirt
from lxml import etree

from vmdash.virt import xml
from vmdash.virt.connection import pool
from vmdash.virt.enums import DomainState, state_reason
from vmdash.virt.errors import InvalidState, NotFound, translate
from vmdash.virt.refs import DomainRef, HostRef


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

    @cached_property
    def ref(self) -> DomainRef:
        return DomainRef(self.host, self.name, self.uuid)

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


@dataclass(frozen=True)
class Nic:
    mac: str
    type: str
    source: str
    model: str
    target: str
    addresses: tuple[str, ...] = ()
    link_up: bool = True


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


def _uuids(conn: libvirt.virConnect, flags: int) -> set[str]:
    return {d.UUIDString() for d in conn.listAllDomains(flags)}


def list_domains(host: HostRef) -> list[DomainSummary]:
    """All VMs of a host, without title/description (see `with_metadata`).

    virConnectGetAllDomainStats(state, vcpu, balloon) plus three filtered
    virConnectListAllDomains; raises HostUnavailable.
    """

    def read(conn: libvirt.virConnect) -> list[DomainSummary]:
        stats = conn.getAllDomainStats(_LIST_STATS, 0)
        autostart = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)
        transient = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT)
        saved = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE)
        rows = []
        handles = {}
        for dom, st in stats:
            uuid = dom.UUIDString()
            handles[uuid] = dom
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
            rows.append(
                DomainSummary(
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
                )
            )
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
    """virDomainLookupByName; NotFound that names the VM and the host."""
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            raise NotFound(f"There is no VM '{name}' on host '{host.label}'.") from None
        raise


def summarize(host: HostRef, dom: libvirt.virDomain) -> DomainSummary:
    """One VM's row from its handle (virDomainGetState, GetInfo, GetAutostart, ...)."""
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


def _disk(node: etree._Element) -> Disk:
    source_type = node.get("type", "file")
    src = node.find("source")
    source = ""
    if src is not None:
        if source_type == "volume":
            source = f"{src.get('pool', '')}/{src.get('volume', '')}"
        elif source_type == "network":
            source = (
                f"{src.get('protocol', '')}://{xml.attr(src, 'host', 'name')}/{src.get('name', '')}"
            )
        else:
            source = src.get("file") or src.get("dev") or src.get("dir") or ""
    order = xml.attr(node, "boot", "order")
    return Disk(
        device=node.get("device", "disk"),
        target=xml.attr(node, "target", "dev"),
        bus=xml.attr(node, "target", "bus"),
        source=source,
        source_type=source_type,
        format=xml.attr(node, "driver", "type"),
        readonly=node.find("readonly") is not None,
        boot_order=int(order) if order.isdigit() else None,
    )


def _nic(node: etree._Element) -> Nic:
    kind = node.get("type", "")
    src = node.find("source")
    source = ""
    if src is not None:
        source = src.get("network") or src.get("bridge") or src.get("dev") or ""
    return Nic(
        mac=xml.attr(node, "mac", "address").lower(),
        type=kind,
        source=source,
        model=xml.attr(node, "model", "type"),
        target=xml.attr(node, "target", "dev"),
        link_up=xml.attr(node, "link", "state", "up") != "down",
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


def _serial_target(node: etree._Element) -> str:
    kind = xml.attr(node, "target", "type") or node.tag
    return f"{kind} {xml.attr(node, 'target', 'port')}".strip()


def _firmware(os_node: etree._Element | None) -> str:
    if os_node is None:
        return ""
    if os_node.get("firmware") == "efi":
        return "UEFI"
    loader = os_node.find("loader")
    if loader is not None and (loader.get("type") == "pflash" or "OVMF" in (loader.text or "")):
        return "UEFI"
    if os_node.find("kernel") is not None:
        return "direct kernel boot"
    return "BIOS"


def get_detail(host: HostRef, name: str) -> DomainDetail:
    """Everything the VM page shows: one virDomainGetXMLDesc plus state calls."""

    def read(conn: libvirt.virConnect) -> DomainDetail:
        dom = lookup(conn, host, name)
        summary = summarize(host, dom)
        text = dom.XMLDesc(0)
        root = xml.parse(text)
        os_node = root.find("os")
        disks = [_disk(d) for d in root.iterfind("devices/disk")]
        sized = []
        for disk in disks:
            if disk.source and disk.source_type in ("file", "block", "volume"):
                try:
                    capacity, allocation, _physical = dom.blockInfo(disk.target, 0)
                    disk = replace(disk, capacity=int(capacity), allocation=int(allocation))
                except libvirt.libvirtError:
                    pass  # no medium, inaccessible file: size unknown
            sized.append(disk)
        nics = [_nic(n) for n in root.iterfind("devices/interface")]
        if summary.state.is_active and nics:
            addrs = _addresses(dom)
            nics = [replace(n, addresses=tuple(addrs.get(n.mac, ()))) for n in nics]
        boot = [b.get("dev", "") for b in root.iterfind("os/boot")]
        if not boot:
            ordered = sorted((d.boot_order, d.target) for d in sized if d.boot_order is not None)
            boot = [target for _order, target in ordered]
        graphics = tuple(
            Graphics(
                type=g.get("type", ""),
                port=int(g.get("port", "-1"))
                if g.get("port", "-1").lstrip("-").isdigit()
                else None,
                listen=g.get("listen") or xml.attr(g, "listen", "address"),
                autoport=g.get("autoport") == "yes",
                has_password=g.get("passwd") is not None,
            )
            for g in root.iterfind("devices/graphics")
        )
        serials = tuple(
            Serial(
                kind=s.tag,
                type=s.get("type", ""),
                target=_serial_target(s),
                path=xml.attr(s, "source", "path") or s.get("tty", ""),
            )
            for s in root.iterfind("devices/*")
            if s.tag in ("serial", "console")
        )
        return DomainDetail(
            summary=summary,
            os_type=xml.text(root, "os/type"),
            arch=xml.attr(root, "os/type", "arch"),
            machine=xml.attr(root, "os/type", "machine"),
            firmware=_firmware(os_node),
            boot_order=tuple(boot),
            emulator=xml.text(root, "devices/emulator"),
            domain_type=root.get("type", ""),
            disks=tuple(sized),
            nics=tuple(nics),
            graphics=graphics,
            serials=serials,
            xml=text,
        )

    return pool().call(host.uri, read, f"Cannot read VM '{name}'")


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


def run_op(host: HostRef, name: str, op: Op) -> DomainRef:
    """Carry out a lifecycle operation (virDomainCreate, Shutdown, Destroy, ...).

    Checks the VM's current state first, so that an operation that makes no
    sense now fails with InvalidState and a sentence naming the state.
    Returns the VM's ref (with UUID) for the audit trail.
    """
    info = OPS[op]

    def act(conn: libvirt.virConnect) -> DomainRef:
        dom = lookup(conn, host, name)
        ref = DomainRef(host.slug, dom.name(), dom.UUIDString())
        summary = summarize(host, dom)
        if op not in summary.ops:
            raise InvalidState(
                f"Cannot {info.verb} VM '{name}': it is {summary.state.label}"
                + (" and has no saved state" if op == Op.DISCARD_SAVE else "")
                + ("" if summary.persistent or op not in _PERSISTENT_ONLY else " and transient")
                + "."
            )
        try:
            _CALLS[op](dom)
        except libvirt.libvirtError as err:
            if op == Op.DELETE and err.get_error_code() in (
                libvirt.VIR_ERR_INVALID_ARG,
                libvirt.VIR_ERR_NO_SUPPORT,
            ):
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
                return ref
            raise translate(err, f"Cannot {info.verb} VM '{name}'") from None
        return ref

    return pool().call(host.uri, act, f"Cannot {info.verb} VM '{name}'")


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
