"""The libvirt network XML as field tables (https://libvirt.org/formatnetwork.html).

ORDERS follow virNetworkDefFormatBuf (network_conf.c), so an element we
create sits where libvirt writes it; the schema itself does not care.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum

from vmdash.virt.xml import INT, YESNO, Children, Document, Field, XMLObject, remove


class ForwardMode(StrEnum):
    """How a network reaches the outside; ISOLATED is libvirt's "no <forward>"."""

    NAT = "nat"
    ROUTE = "route"
    OPEN = "open"
    ISOLATED = "isolated"
    BRIDGE = "bridge"
    PRIVATE = "private"  # the macvtap modes (<forward mode='...' dev=...>)
    VEPA = "vepa"
    PASSTHROUGH = "passthrough"
    HOSTDEV = "hostdev"


MACVTAP_MODES = (ForwardMode.BRIDGE, ForwardMode.PRIVATE, ForwardMode.VEPA, ForwardMode.PASSTHROUGH)


class RangeXML(XMLObject):
    start = Field("./@start")
    end = Field("./@end")


class DhcpHostXML(XMLObject):
    mac = Field("./@mac")
    ip = Field("./@ip")
    name = Field("./@name")


class IpXML(XMLObject):
    ORDERS = {"ip": ("tftp", "dhcp"), "dhcp": ("range", "host", "bootp")}
    address = Field("./@address")
    prefix = Field("./@prefix", INT)
    netmask = Field("./@netmask")
    family = Field("./@family")  # ipv4 (default) or ipv6
    ranges = Children(RangeXML, "./dhcp/range")
    hosts = Children(DhcpHostXML, "./dhcp/host")

    @property
    def interface(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
        """The gateway address with its subnet, or None when unreadable."""
        if not self.address:
            return None
        mask = self.netmask or (str(self.prefix) if self.prefix is not None else "")
        if not mask:
            mask = "24" if ":" not in self.address else "64"  # libvirt's defaults
        try:
            return ipaddress.ip_interface(f"{self.address}/{mask}")
        except ValueError:
            return None

    @property
    def is_ipv6(self) -> bool:
        return self.family == "ipv6" or ":" in (self.address or "")


class ForwardInterfaceXML(XMLObject):
    dev = Field("./@dev")


class HostnameXML(XMLObject):
    text = Field(".")


class DnsHostXML(XMLObject):
    """<dns><host ip=...><hostname>a</hostname>...: names dnsmasq answers for."""

    ip = Field("./@ip")
    hostnames = Children(HostnameXML, "./hostname")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple((h.node.text or "").strip() for h in self.hostnames)

    @names.setter
    def names(self, names: tuple[str, ...]) -> None:
        if self.names == tuple(names):
            return
        for h in list(self.hostnames):
            self.hostnames.remove(h)
        for name in names:
            self.hostnames.add().node.text = name


class VlanTagXML(XMLObject):
    id = Field("./@id", INT)


class PortgroupXML(XMLObject):
    """A <portgroup>: a name guests' NICs pick, maybe a VLAN (Open vSwitch)."""

    ORDERS = {"portgroup": ("virtualport", "bandwidth", "vlan")}
    name = Field("./@name")
    default = Field("./@default", YESNO)
    tags = Children(VlanTagXML, "./vlan/tag")

    @property
    def vlans(self) -> tuple[int, ...]:
        return tuple(t.id for t in self.tags if t.id is not None)

    @vlans.setter
    def vlans(self, ids: tuple[int, ...]) -> None:
        """Replace the VLAN tags (several: a trunk); none removes <vlan>."""
        vlan = self.node.find("vlan")
        if tuple(self.vlans) == tuple(ids):
            return
        if vlan is not None:
            remove(vlan)
        for tag in ids:
            self.tags.add(id=str(tag))


class NetworkXML(Document):
    ROOT = "network"
    ORDERS = {
        "network": (
            "name", "uuid", "metadata", "forward", "bridge", "mtu", "mac", "domain", "dns",
            "bandwidth", "vlan", "port", "virtualport", "ip", "route", "portgroup",
        ),
        "forward": ("nat", "pf", "interface", "address", "driver"),
        "dns": ("forwarder", "txt", "host", "srv"),
    }  # fmt: skip

    name = Field("./name")
    uuid = Field("./uuid")
    # Absent <forward>: an isolated network. Present without mode: NAT.
    forward_mode_raw = Field("./forward/@mode")
    forward_dev = Field("./forward/@dev")
    forward_interfaces = Children(ForwardInterfaceXML, "./forward/interface")
    bridge = Field("./bridge/@name")
    bridge_stp = Field("./bridge/@stp")  # on, off
    bridge_delay = Field("./bridge/@delay", INT)
    mac = Field("./mac/@address")
    domain_name = Field("./domain/@name")
    domain_local_only = Field("./domain/@localOnly", YESNO)
    virtualport = Field("./virtualport/@type")  # openvswitch on an OVS bridge
    ips = Children(IpXML, "./ip")
    portgroups = Children(PortgroupXML, "./portgroup")
    dns_hosts = Children(DnsHostXML, "./dns/host")

    @property
    def forward_mode(self) -> ForwardMode:
        if self.node.find("forward") is None:
            return ForwardMode.ISOLATED
        try:
            return ForwardMode(self.forward_mode_raw or "nat")
        except ValueError:
            return ForwardMode.NAT if not self.forward_mode_raw else ForwardMode.HOSTDEV

    @forward_mode.setter
    def forward_mode(self, mode: ForwardMode) -> None:
        """Isolated removes <forward>; any other mode sets it (keeping its children)."""
        if mode == ForwardMode.ISOLATED:
            self.forward_mode_raw = None
            self.forward_dev = None
            forward = self.node.find("forward")
            if forward is not None:
                remove(forward)
            return
        self.forward_mode_raw = mode.value
        nat = self.node.find("forward/nat")
        if nat is not None and mode != ForwardMode.NAT:
            remove(nat)  # port and address ranges mean something only for NAT

    @property
    def domain(self) -> str | None:
        """The guests' DNS domain (<domain name=...>); None removes the element."""
        return self.domain_name

    @domain.setter
    def domain(self, name: str | None) -> None:
        if name:
            self.domain_name = name
            return
        node = self.node.find("domain")
        if node is not None:
            remove(node)

    @property
    def is_macvtap(self) -> bool:
        """A <forward mode='bridge'> without <bridge>: macvtap on a host device."""
        return self.forward_mode in MACVTAP_MODES and self.bridge is None

    def ip_of(self, v6: bool) -> IpXML | None:
        return next((ip for ip in self.ips if ip.is_ipv6 == v6), None)


SKELETON = "<network>\n  <name></name>\n</network>\n"


def new_network(name: str) -> NetworkXML:
    """An empty definition with `name`, indented like libvirt's own."""
    doc = NetworkXML.parse(SKELETON)
    doc.name = name
    return doc
