"""Virtual networks: listing, reading, lifecycle, creating, editing, DHCP hosts.

Every function takes a HostRef and returns frozen dataclasses; errors come
out as VirtError kinds. A listing reads each network's XML once and every
VM's XML once (which VMs have a NIC on which network), never per pair.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

import libvirt
from lxml import etree

from vmdash.virt import xml
from vmdash.virt.connection import pool
from vmdash.virt.errors import InvalidState, NotFound, still_there, translate
from vmdash.virt.names import check_name
from vmdash.virt.refs import HostRef, NetworkRef
from vmdash.virt.xml.domain import DomainXML
from vmdash.virt.xml.network import ForwardMode, IpXML, NetworkXML, new_network
from vmdash.virt.xml.network_changes import Change, Command, Section, plan

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Op(StrEnum):
    """Lifecycle operations, named as they appear in URLs."""

    START = "start"
    STOP = "stop"
    AUTOSTART_ON = "autostart-on"
    AUTOSTART_OFF = "autostart-off"
    DELETE = "delete"
    RESTART = "restart"  # stop and start: what waits for a restart applies


@dataclass(frozen=True)
class Attachment:
    """One NIC of a VM on a network."""

    vm: str
    vm_uuid: str
    mac: str
    running: bool
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class StaticHost:
    mac: str
    ip: str
    name: str


@dataclass(frozen=True)
class Portgroup:
    """A <portgroup> guests' NICs may name; VLAN tags on Open vSwitch."""

    name: str
    vlans: tuple[int, ...] = ()
    default: bool = False


@dataclass(frozen=True)
class Subnet:
    """One <ip> of a network: its gateway (with prefix), DHCP ranges and hosts."""

    gateway: str  # "10.0.0.1/24"
    v6: bool
    dhcp: tuple[tuple[str, str], ...] = ()
    hosts: tuple[StaticHost, ...] = ()
    index: int = 0  # its place among the network's <ip>: networkUpdate's parentIndex

    @property
    def interface(self) -> IPInterface:
        return ipaddress.ip_interface(self.gateway)


@dataclass(frozen=True)
class Lease:
    mac: str
    ip: str
    prefix: int
    hostname: str
    expires: datetime | None
    vm: str = ""


@dataclass(frozen=True)
class NetworkSummary:
    host: str
    name: str
    uuid: str
    active: bool
    persistent: bool
    autostart: bool
    mode: ForwardMode
    bridge: str = ""
    device: str = ""  # macvtap's host device
    virtualport: str = ""
    domain: str = ""
    subnets: tuple[Subnet, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    devices: tuple[str, ...] = ()  # macvtap: the host devices of <forward>
    portgroups: tuple[Portgroup, ...] = ()
    dns_hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (address, its names)

    @cached_property
    def ref(self) -> NetworkRef:
        return NetworkRef(self.host, self.name, self.uuid)

    @property
    def running_vms(self) -> tuple[str, ...]:
        return tuple(sorted({a.vm for a in self.attachments if a.running}))

    @property
    def ops(self) -> tuple[Op, ...]:
        ops = [Op.STOP if self.active else Op.START]
        if self.persistent:
            ops += [Op.AUTOSTART_OFF if self.autostart else Op.AUTOSTART_ON, Op.DELETE]
        return tuple(ops)


@dataclass(frozen=True)
class NetworkDetail:
    summary: NetworkSummary
    leases: tuple[Lease, ...] = ()
    xml: str = ""  # the inactive definition
    pending: tuple[Change, ...] = ()  # saved in the definition, not in the running network

    @property
    def ref(self) -> NetworkRef:
        return self.summary.ref


# Reading


def _subnets(doc: NetworkXML) -> tuple[Subnet, ...]:
    out = []
    for index, ip in enumerate(doc.ips):
        iface = ip.interface
        if iface is None:
            continue
        hosts = tuple(StaticHost((h.mac or "").lower(), h.ip or "", h.name or "") for h in ip.hosts)
        ranges = tuple((r.start or "", r.end or "") for r in ip.ranges)
        out.append(Subnet(str(iface), ip.is_ipv6, ranges, hosts, index))
    return tuple(out)


def _devices(doc: NetworkXML) -> tuple[str, ...]:
    """<forward dev=...> and its <interface dev=...>: the first one once."""
    devs = [doc.forward_dev or "", *(i.dev or "" for i in doc.forward_interfaces)]
    return tuple(dict.fromkeys(d for d in devs if d))


def _summary(host: HostRef, net: libvirt.virNetwork, facts: _Bulk) -> NetworkSummary:
    doc = NetworkXML.parse(net.XMLDesc(0))
    name, uuid = net.name(), net.UUIDString()
    return NetworkSummary(
        host=host.slug,
        name=name,
        uuid=uuid,
        active=uuid in facts.active,
        persistent=uuid in facts.persistent,
        autostart=uuid in facts.autostart,
        mode=doc.forward_mode,
        bridge=doc.bridge or "",
        device=doc.forward_dev or next((i.dev or "" for i in doc.forward_interfaces), ""),
        virtualport=doc.virtualport or "",
        domain=doc.domain or "",
        subnets=_subnets(doc),
        devices=_devices(doc),
        portgroups=tuple(Portgroup(p.name or "", p.vlans, bool(p.default)) for p in doc.portgroups),
        dns_hosts=tuple((h.ip or "", h.names) for h in doc.dns_hosts),
        attachments=tuple(
            Attachment(a.vm, a.vm_uuid, a.mac, a.running, facts.ips.get(a.mac, ()))
            for a in facts.nics.get(name, ())
        ),
    )


@dataclass
class _Bulk:
    """What a listing reads once for all networks: flags, NICs of all VMs, lease IPs."""

    active: set[str] = field(default_factory=set)
    persistent: set[str] = field(default_factory=set)
    autostart: set[str] = field(default_factory=set)
    nics: dict[str, list[Attachment]] = field(default_factory=dict)
    ips: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _uuids(conn: libvirt.virConnect, flags: int) -> set[str]:
    return {n.UUIDString() for n in conn.listAllNetworks(flags)}


def _vm_nics(conn: libvirt.virConnect) -> dict[str, list[Attachment]]:
    """NICs on virtual networks of every VM, by network name: one XMLDesc per VM."""
    running = {d.UUIDString() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}
    found: dict[str, list[Attachment]] = {}
    for dom in conn.listAllDomains(0):
        try:
            doc = DomainXML.parse(dom.XMLDesc(0))
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                continue  # gone since the listing
            raise
        uuid = dom.UUIDString()
        for nic in doc.interfaces:
            if nic.type == "network" and nic.source_network:
                found.setdefault(nic.source_network, []).append(
                    Attachment(doc.name or "", uuid, (nic.mac or "").lower(), uuid in running)
                )
    return found


def _leases(net: libvirt.virNetwork, vms: dict[str, str]) -> list[Lease]:
    """virNetworkGetDHCPLeases; [] for networks without DHCP or drivers without it."""
    try:
        raw = net.DHCPLeases(None, 0) or []
    except libvirt.libvirtError as err:
        if err.get_error_code() in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_OPERATION_INVALID):
            return []
        raise
    out = []
    for lease in raw:
        mac = (lease.get("mac") or "").lower()
        expiry = int(lease.get("expirytime") or 0)
        out.append(
            Lease(
                mac=mac,
                ip=lease.get("ipaddr") or "",
                prefix=int(lease.get("prefix") or 0),
                hostname=lease.get("hostname") or "",
                expires=datetime.fromtimestamp(expiry, UTC) if expiry else None,
                vm=vms.get(mac, ""),
            )
        )
    return out


_NET_GONE = libvirt.VIR_ERR_NO_NETWORK


def _bulk(conn: libvirt.virConnect, nets: Iterable[libvirt.virNetwork]) -> _Bulk:
    facts = _Bulk(
        active=_uuids(conn, libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE),
        persistent=_uuids(conn, libvirt.VIR_CONNECT_LIST_NETWORKS_PERSISTENT),
        autostart=_uuids(conn, libvirt.VIR_CONNECT_LIST_NETWORKS_AUTOSTART),
        nics=_vm_nics(conn),
    )
    ips: dict[str, list[str]] = {}
    active = [net for net in nets if net.UUIDString() in facts.active]
    for leases in still_there(active, lambda net: _leases(net, {}), _NET_GONE):
        for lease in leases:
            ips.setdefault(lease.mac, []).append(f"{lease.ip}/{lease.prefix}")
    facts.ips = {mac: tuple(v) for mac, v in ips.items()}
    return facts


def list_networks(host: HostRef) -> list[NetworkSummary]:
    """Every network of a host with the VMs on it, sorted by name.

    virConnectListAllNetworks (4, with filter flags), virNetworkGetXMLDesc and
    virNetworkGetDHCPLeases per network, virDomainGetXMLDesc once per VM.
    """

    def read(conn: libvirt.virConnect) -> list[NetworkSummary]:
        nets = conn.listAllNetworks(0)
        facts = _bulk(conn, nets)
        found = still_there(nets, lambda n: _summary(host, n, facts), _NET_GONE)
        return sorted(found, key=lambda s: s.name.casefold())

    return pool().call(host.uri, read, f"Cannot list the networks of host '{host.label}'")


def lookup(conn: libvirt.virConnect, host: HostRef, name: str) -> libvirt.virNetwork:
    """virNetworkLookupByName; NotFound that names the network and the host."""
    check_name("network", name)
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
            raise NotFound(f"There is no network '{name}' on host '{host.label}'.") from None
        raise


def _one(conn: libvirt.virConnect, host: HostRef, net: libvirt.virNetwork) -> NetworkSummary:
    return _summary(host, net, _bulk(conn, [net]))


def get_summary(host: HostRef, name: str) -> NetworkSummary:
    """One network's row with the VMs on it; NotFound."""
    return pool().call(
        host.uri,
        lambda conn: _one(conn, host, lookup(conn, host, name)),
        f"Cannot read network '{name}'",
    )


def get_detail(host: HostRef, name: str) -> NetworkDetail:
    """The row, the current DHCP leases (with their VMs) and the inactive XML; NotFound."""

    def read(conn: libvirt.virConnect) -> NetworkDetail:
        net = lookup(conn, host, name)
        summary = _one(conn, host, net)
        vms = {a.mac: a.vm for a in summary.attachments}
        leases = tuple(_leases(net, vms)) if summary.active else ()
        inactive = _inactive_xml(net)
        return NetworkDetail(summary, leases, inactive, _pending(net, summary, inactive))

    return pool().call(host.uri, read, f"Cannot read network '{name}'")


# Lifecycle


def _restart(net: libvirt.virNetwork) -> None:
    """Stop and start: the definition becomes the running network (guests lose it a moment)."""
    net.destroy()
    net.create()


_CALLS: dict[Op, Callable[[libvirt.virNetwork], object]] = {
    Op.START: lambda n: n.create(),
    Op.STOP: lambda n: n.destroy(),
    Op.AUTOSTART_ON: lambda n: n.setAutostart(1),
    Op.AUTOSTART_OFF: lambda n: n.setAutostart(0),
    Op.RESTART: _restart,
}
_VERBS = {
    Op.START: "start",
    Op.STOP: "stop",
    Op.AUTOSTART_ON: "turn on autostart for",
    Op.AUTOSTART_OFF: "turn off autostart for",
    Op.DELETE: "delete",
    Op.RESTART: "restart",
}


def _refuse(op: Op, before: NetworkSummary) -> None:
    verb = f"Cannot {_VERBS[op]} network '{before.name}'"
    if op == Op.RESTART and not (before.active and before.persistent):
        raise InvalidState(f"{verb}: only a running, persistent network can be restarted.")
    if op not in (*before.ops, Op.RESTART):
        state = "active" if before.active else "inactive"
        transient = "" if before.persistent else " and transient"
        raise InvalidState(f"{verb}: it is {state}{transient}.")
    if op == Op.DELETE and before.running_vms:
        raise InvalidState(
            f"{verb}: running VMs use it: {', '.join(before.running_vms)}. "
            "Shut them down or move their NICs first."
        )


def run_op(host: HostRef, name: str, op: Op) -> NetworkSummary:
    """virNetworkCreate, Destroy, SetAutostart, or (Destroy and) Undefine for DELETE.

    Refused with InvalidState (naming the state, or the running VMs that use
    the network for DELETE). Returns the fresh row; after DELETE, the one before.
    """
    doing = f"Cannot {_VERBS[op]} network '{name}'"

    def act(conn: libvirt.virConnect) -> NetworkSummary:
        net = lookup(conn, host, name)
        before = _one(conn, host, net)
        _refuse(op, before)
        if op == Op.DELETE:
            if before.active:
                net.destroy()
            net.undefine()
            return before
        _CALLS[op](net)
        return _one(conn, host, net)

    return pool().call(host.uri, act, doing)


# Creating


@dataclass(frozen=True)
class IpSpec:
    gateway: IPInterface  # the host's address on the network, with the prefix
    dhcp_start: str = ""
    dhcp_end: str = ""


@dataclass(frozen=True)
class NetworkSpec:
    """What the create form asks for, already checked (networks/forms.py)."""

    name: str
    mode: str  # nat, route, open, isolated, bridge, macvtap, openvswitch
    bridge: str = ""  # host bridge (bridge, openvswitch) or the one libvirt makes
    device: str = ""  # macvtap: the host's device
    macvtap_mode: ForwardMode = ForwardMode.BRIDGE
    ipv4: IpSpec | None = None
    ipv6: IpSpec | None = None
    domain: str = ""
    start: bool = True
    autostart: bool = False


def _add_ip(doc: NetworkXML, spec: IpSpec) -> IpXML:
    attrs = {"address": str(spec.gateway.ip), "prefix": str(spec.gateway.network.prefixlen)}
    if spec.gateway.version == 6:
        attrs = {"family": "ipv6", **attrs}
    ip = doc.ips.add(**attrs)
    if spec.dhcp_start and spec.dhcp_end:
        ip.ranges.add(start=spec.dhcp_start, end=spec.dhcp_end)
    return ip


def build_xml(spec: NetworkSpec) -> NetworkXML:
    """The definition of a new network (pure: golden-tested, schema-checked)."""
    doc = new_network(spec.name)
    if spec.mode in ("bridge", "openvswitch"):
        doc.forward_mode = ForwardMode.BRIDGE
        doc.bridge = spec.bridge
        if spec.mode == "openvswitch":
            doc.virtualport = "openvswitch"
        return doc
    if spec.mode == "macvtap":
        doc.forward_mode = spec.macvtap_mode
        doc.forward_dev = spec.device
        doc.forward_interfaces.add(dev=spec.device)
        return doc
    doc.forward_mode = ForwardMode(spec.mode)
    if spec.bridge:
        doc.bridge = spec.bridge
    if spec.domain:
        doc.domain = spec.domain
    for ip in (spec.ipv4, spec.ipv6):
        if ip is not None:
            _add_ip(doc, ip)
    return doc


def _define(conn: libvirt.virConnect, text: str, doing: str) -> libvirt.virNetwork:
    """virNetworkDefineXMLFlags(VALIDATE): XML outside libvirt's schema is InvalidInput."""
    try:
        return conn.networkDefineXMLFlags(text, libvirt.VIR_NETWORK_DEFINE_VALIDATE)
    except libvirt.libvirtError as err:
        raise translate(err, doing) from None


def create(host: HostRef, spec: NetworkSpec) -> NetworkRef:
    """Define (validated), then start and set autostart as asked.

    A failed start or autostart undefines what was defined, and the error
    says libvirt's reason. InvalidInput, OperationFailed, InvalidState.
    """
    text = build_xml(spec).tostring()
    doing = f"Cannot create network '{spec.name}'"

    def act(conn: libvirt.virConnect) -> NetworkRef:
        net = _define(conn, text, doing)
        try:
            if spec.start:
                net.create()
            if spec.autostart:
                net.setAutostart(1)
        except libvirt.libvirtError as err:
            _undo(net)
            why = f"Cannot start network '{spec.name}' (it was removed again)"
            raise translate(err, why) from None
        return NetworkRef(host.slug, net.name(), net.UUIDString())

    return pool().call(host.uri, act, doing)


def _undo(net: libvirt.virNetwork) -> None:
    """Take back a half-made network: stop it if it runs, undefine it."""
    for call in (net.destroy, net.undefine):
        try:
            call()
        except libvirt.libvirtError:
            continue  # not running; or already gone


# Editing


def _inactive_xml(net: libvirt.virNetwork) -> str:
    """virNetworkGetXMLDesc(INACTIVE): the definition, not the running state.

    Transient networks have only the live one; drivers that lack the flag
    (the test driver) give the one they have.
    """
    if not net.isPersistent():
        return str(net.XMLDesc(0))
    try:
        return str(net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
    except libvirt.libvirtError as err:
        if err.get_error_code() not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
            raise
        return str(net.XMLDesc(0))


@dataclass(frozen=True)
class EditResult:
    """An edit as it was (or would be) done.

    applied: changes made to the running network and its definition at once
    (virNetworkUpdate); pending: saved in the definition, waiting for a
    restart (all of them when the network is not running: they apply at its
    next start).
    """

    diff: str
    active: bool
    applied: tuple[Change, ...] = ()
    pending: tuple[Change, ...] = ()


def _sorted(active: bool, changes: list[Change]) -> tuple[tuple[Change, ...], tuple[Change, ...]]:
    live = tuple(c for c in changes if c.live) if active else ()
    return live, tuple(c for c in changes if c not in live)


def _edited(
    net: libvirt.virNetwork, change: Callable[[NetworkXML], None]
) -> tuple[NetworkXML, NetworkXML]:
    before = NetworkXML.parse(_inactive_xml(net))
    after = NetworkXML.parse(before.tostring())
    change(after)
    return before, after


def preview(host: HostRef, name: str, change: Callable[[NetworkXML], None]) -> EditResult:
    """What `change` would do to the inactive XML, sorted into live and restart
    changes; nothing is defined or updated."""

    def act(conn: libvirt.virConnect) -> EditResult:
        net = lookup(conn, host, name)
        before, after = _edited(net, change)
        live, pending = _sorted(bool(net.isActive()), plan(before.node, after.node))
        return EditResult(after.diff(), bool(net.isActive()), live, pending)

    return pool().call(host.uri, act, f"Cannot change network '{name}'")


_SECTION_CODES = {
    Section.IP_DHCP_HOST: libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
    Section.IP_DHCP_RANGE: libvirt.VIR_NETWORK_SECTION_IP_DHCP_RANGE,
    Section.DNS_HOST: libvirt.VIR_NETWORK_SECTION_DNS_HOST,
    Section.DNS_TXT: libvirt.VIR_NETWORK_SECTION_DNS_TXT,
    Section.DNS_SRV: libvirt.VIR_NETWORK_SECTION_DNS_SRV,
    Section.FORWARD_INTERFACE: libvirt.VIR_NETWORK_SECTION_FORWARD_INTERFACE,
    Section.PORTGROUP: libvirt.VIR_NETWORK_SECTION_PORTGROUP,
}
_COMMAND_CODES = {
    Command.ADD: libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
    Command.DELETE: libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE,
    Command.MODIFY: libvirt.VIR_NETWORK_UPDATE_COMMAND_MODIFY,
}
_UNDO = {Command.ADD: Command.DELETE, Command.DELETE: Command.ADD, Command.MODIFY: Command.MODIFY}


def _apply(net: libvirt.virNetwork, change: Change, undo: bool = False) -> None:
    """virNetworkUpdate(AFFECT_LIVE|AFFECT_CONFIG) of one change (or its inverse)."""
    assert change.section is not None and change.command is not None
    command, text = change.command, change.xml
    if undo:
        command = _UNDO[command]
        text = change.after if command == Command.DELETE else change.before
    flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE | libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
    net.update(
        _COMMAND_CODES[command],
        _SECTION_CODES[change.section],
        change.index,
        text,
        flags,
    )


def _take_back(net: libvirt.virNetwork, applied: list[Change]) -> None:
    """Undo the live updates already made, newest first, when a later step failed."""
    for change in reversed(applied):
        try:
            _apply(net, change, undo=True)
        except libvirt.libvirtError:
            continue  # the error that stopped the edit is the one to report


def edit(host: HostRef, name: str, change: Callable[[NetworkXML], None]) -> EditResult:
    """Apply `change` to the inactive XML: what libvirt can change in the running
    network is updated live and in the config (virNetworkUpdate, AFFECT_LIVE|
    AFFECT_CONFIG); the rest is defined (VALIDATE) and waits for a restart.

    A diff of "" means nothing changed and nothing was done. A failed step takes
    back the live updates before it. NotFound, InvalidInput, InvalidState.
    """
    doing = f"Cannot change network '{name}'"

    def act(conn: libvirt.virConnect) -> EditResult:
        net = lookup(conn, host, name)
        if not net.isPersistent():
            raise InvalidState(f"{doing}: it is transient; only its live state exists.")
        before, after = _edited(net, change)
        if not after.changed:
            return EditResult("", bool(net.isActive()))
        live, pending = _sorted(bool(net.isActive()), plan(before.node, after.node))
        applied: list[Change] = []
        try:
            for item in live:
                _apply(net, item)
                applied.append(item)
            if plan(NetworkXML.parse(_inactive_xml(net)).node, after.node):
                conn.networkDefineXMLFlags(after.tostring(), libvirt.VIR_NETWORK_DEFINE_VALIDATE)
        except libvirt.libvirtError as err:
            _take_back(net, applied)
            raise translate(err, doing) from None
        return EditResult(after.diff(), bool(net.isActive()), live, pending)

    return pool().call(host.uri, act, doing)


def _pending(net: libvirt.virNetwork, summary: NetworkSummary, inactive: str) -> tuple[Change, ...]:
    """What the definition has that the running network has not (yet): it applies
    at the next restart. Only a running, persistent network has any."""
    if not (summary.active and summary.persistent):
        return ()
    live = NetworkXML.parse(str(net.XMLDesc(0)))
    return tuple(
        Change(False, c.what, c.before, c.after, c.command, c.index)
        for c in plan(live.node, NetworkXML.parse(inactive).node)
    )


# DHCP static hosts


def _host_xml(mac: str, ip: str, name: str) -> str:
    node = etree.Element("host", {"mac": mac, "ip": ip})
    if name:
        node.set("name", name)
    return xml.tostring(node)


def _update(net: libvirt.virNetwork, command: int, index: int, text: str) -> None:
    live, config = libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE, libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
    flags = (live if net.isActive() else 0) | (config if net.isPersistent() else 0)
    net.update(command, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, index, text, flags)


def add_static_host(host: HostRef, name: str, subnet: int, entry: StaticHost) -> None:
    """virNetworkUpdate(ADD_LAST, IP_DHCP_HOST) live (when active) and in the config."""
    doing = f"Cannot add a DHCP host to network '{name}'"
    text = _host_xml(entry.mac, entry.ip, entry.name)
    pool().call(
        host.uri,
        lambda conn: _update(
            lookup(conn, host, name), libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, subnet, text
        ),
        doing,
    )


def remove_static_host(host: HostRef, name: str, subnet: int, entry: StaticHost) -> None:
    """virNetworkUpdate(DELETE, IP_DHCP_HOST) live (when active) and in the config."""
    doing = f"Cannot remove the DHCP host {entry.mac} from network '{name}'"
    text = _host_xml(entry.mac, entry.ip, entry.name)
    pool().call(
        host.uri,
        lambda conn: _update(
            lookup(conn, host, name), libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, subnet, text
        ),
        doing,
    )


# What the host already has: for the create form's checks and choices


@dataclass(frozen=True)
class HostNetworking:
    """Subnets of the host's networks and addresses of its own interfaces."""

    networks: tuple[tuple[str, IPNetwork], ...] = ()  # (network name, subnet)
    addresses: tuple[tuple[str, IPInterface], ...] = ()  # (interface, address)
    addresses_known: bool = False
    bridges: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    bridges_known: bool = False
    names: frozenset[str] = frozenset()
    network_bridges: tuple[tuple[str, str], ...] = ()  # (network name, its bridge)


def is_local(uri: str) -> bool:
    """A URI of this machine's own hypervisor (not the test driver, not remote)."""
    parts = urlsplit(uri)
    driver, _plus, transport = parts.scheme.partition("+")
    return driver != "test" and not parts.hostname and transport in ("", "unix")


def _sys_net() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Bridges and other devices from /sys/class/net (this machine only)."""
    bridges, devices = [], []
    for path in sorted(Path("/sys/class/net").iterdir()):
        if (path / "bridge").is_dir():
            bridges.append(path.name)
        elif path.name != "lo":
            devices.append(path.name)
    return tuple(bridges), tuple(devices)


def _local_addresses() -> tuple[tuple[str, IPInterface], ...] | None:
    """This machine's interface addresses (`ip -j addr`); None if `ip` cannot say."""
    try:
        out = subprocess.run(
            ["ip", "-j", "addr"], capture_output=True, text=True, check=True, timeout=5
        )
        links = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    found = []
    for link in links:
        for a in link.get("addr_info", []):
            found.append((link["ifname"], ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}")))
    return tuple(found)


def _interfaces(
    conn: libvirt.virConnect,
) -> tuple[list[str], list[str], list[tuple[str, IPInterface]]]:
    """virConnectListAllInterfaces: bridges, devices, addresses (netcf or udev backend)."""
    bridges: list[str] = []
    devices: list[str] = []
    addresses: list[tuple[str, IPInterface]] = []
    for iface in conn.listAllInterfaces(0):
        root = xml.parse(iface.XMLDesc(0))
        name = root.get("name") or ""
        (bridges if root.get("type") == "bridge" else devices).append(name)
        for ip in root.iterfind(".//protocol/ip"):
            try:
                addresses.append(
                    (name, ipaddress.ip_interface(f"{ip.get('address')}/{ip.get('prefix')}"))
                )
            except ValueError:
                continue
    return bridges, [d for d in devices if d != "lo"], addresses


def host_networking(host: HostRef) -> HostNetworking:
    """Existing network subnets and names (virConnectListAllNetworks, XMLDesc), and
    the host's bridges and addresses (virConnectListAllInterfaces; /sys/class/net
    and `ip addr` when the host is this machine and libvirt cannot list them)."""
    local = is_local(host.uri)

    def read(conn: libvirt.virConnect) -> HostNetworking:
        subnets, names, own_bridges = [], set(), []
        listed = conn.listAllNetworks(0)

        def with_xml(n: libvirt.virNetwork) -> tuple[libvirt.virNetwork, NetworkXML]:
            return n, NetworkXML.parse(n.XMLDesc(0))

        for net, doc in still_there(listed, with_xml, _NET_GONE):
            names.add(net.name())
            subnets += [(net.name(), sub.interface.network) for sub in _subnets(doc)]
            if doc.bridge and not doc.virtualport and doc.forward_mode not in ("bridge",):
                own_bridges.append((net.name(), doc.bridge))
        try:
            bridges, devices, addresses = _interfaces(conn)
            known = True
        except libvirt.libvirtError as err:
            if err.get_error_code() not in (
                libvirt.VIR_ERR_NO_SUPPORT,
                libvirt.VIR_ERR_OPERATION_INVALID,
            ):
                raise
            bridges, devices, addresses, known = [], [], [], False
        if local:
            sys_bridges, sys_devices = _sys_net()
            bridges, devices, known = (
                sorted({*bridges, *sys_bridges}),
                sorted({*devices, *sys_devices}),
                True,
            )
            mine = _local_addresses()
            addresses = list(mine) if mine is not None else addresses
        return HostNetworking(
            networks=tuple(subnets),
            addresses=tuple(addresses),
            addresses_known=bool(addresses),
            bridges=tuple(bridges),
            devices=tuple(devices),
            bridges_known=known,
            names=frozenset(names),
            network_bridges=tuple(own_bridges),
        )

    return pool().call(host.uri, read, f"Cannot read the networking of host '{host.label}'")


def read_network(host: HostRef, uuid: str) -> NetworkSummary | None:
    """The re-read a network event calls for: by UUID (virNetworkLookupByUUIDString,
    then the calls of `get_summary`), None once it is gone. HostUnavailable."""

    def read(conn: libvirt.virConnect) -> NetworkSummary | None:
        try:
            net = conn.networkLookupByUUIDString(uuid)
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
                return None  # undefined, or a transient network that stopped
            raise
        return _one(conn, host, net)

    return pool().call(host.uri, read, f"Cannot read network {uuid} on host '{host.label}'")
