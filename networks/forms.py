"""Forms for creating and editing networks and their DHCP hosts.

Everything is checked here, before libvirt is asked, with what the host
already has (`HostNetworking`): a clash is named next to its field. libvirt
still validates the XML (VIR_NETWORK_DEFINE_VALIDATE); what it refuses comes
back as a form error too.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from vmdash.virt.names import name_problem
from vmdash.virt.networks import (
    HostNetworking,
    IpSpec,
    NetworkSpec,
    NetworkSummary,
    Portgroup,
    StaticHost,
    Subnet,
)
from vmdash.virt.xml.network import ForwardMode

# libvirt keeps <name>.xml.new and dnsmasq <name>.hostsfile: a name of 240
# bytes already fails with "File name too long"; 200 leaves room.
MAX_NAME_BYTES = 200
IFNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")  # Linux IFNAMSIZ - 1
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
DNS_DOMAIN = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)

MODES = [
    ("nat", _l("NAT: guests reach outside through the host's address")),
    ("route", _l("Routed: guests' addresses are routed, no NAT")),
    ("open", _l("Open: routed, and libvirt adds no firewall rules")),
    ("isolated", _l("Isolated: guests and host only")),
    ("bridge", _l("Bridge: guests join an existing host bridge")),
    ("macvtap", _l("macvtap: guests share a host device directly")),
    ("openvswitch", _l("Open vSwitch: guests join an existing OVS bridge")),
]
ROUTED = ("nat", "route", "open", "isolated")
MACVTAP_MODES = [
    (ForwardMode.BRIDGE.value, _l("bridge: guests see each other and the LAN")),
    (ForwardMode.VEPA.value, _l("vepa: all traffic goes through the external switch")),
    (ForwardMode.PRIVATE.value, _l("private: guests cannot see each other")),
    (ForwardMode.PASSTHROUGH.value, _l("passthrough: one guest takes the whole device")),
]


def check_network_name(name: str, taken: frozenset[str]) -> str:
    """A name libvirt and our URLs can take; forms.ValidationError otherwise."""
    problem = name_problem(name)
    if problem is not None:
        raise forms.ValidationError(_("This name cannot be used: %(why)s.") % {"why": _(problem)})
    if "/" in name:
        raise forms.ValidationError(_("A network name cannot contain “/”."))
    if name.strip(".") == "" or name != name.strip():
        raise forms.ValidationError(
            _("A network name cannot be only dots, nor start or end with a space.")
        )
    if len(name.encode()) > MAX_NAME_BYTES:
        raise forms.ValidationError(
            _("A network name has at most %(n)d bytes.") % {"n": MAX_NAME_BYTES}
        )
    if name == "new":
        raise forms.ValidationError(
            _("“new” is the address of the create form: choose another name.")
        )
    if name in taken:
        raise forms.ValidationError(_("This host already has a network with this name."))
    return name


def _address(text: str, version: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        raise forms.ValidationError(_("“%(v)s” is not an IP address.") % {"v": text}) from None
    if addr.version != version:
        raise forms.ValidationError(_("This must be an IPv%(n)d address.") % {"n": version})
    return addr


def parse_gateway(text: str, version: int) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """ "10.0.0.1/24": the host's address on the network and the subnet's prefix."""
    if "/" not in text:
        raise forms.ValidationError(
            _("Give the prefix too, as in %(ex)s.")
            % {"ex": "10.0.0.1/24" if version == 4 else "fd00:1::1/64"}
        )
    try:
        iface = ipaddress.ip_interface(text.strip())
    except ValueError:
        raise forms.ValidationError(
            _("“%(v)s” is not an address with a prefix.") % {"v": text}
        ) from None
    if iface.version != version:
        raise forms.ValidationError(_("This must be an IPv%(n)d address.") % {"n": version})
    net = iface.network
    if version == 4 and net.prefixlen > 30:
        raise forms.ValidationError(_("The subnet is too small: use a prefix of 30 or less."))
    if iface.ip in (net.network_address, net.broadcast_address) and net.prefixlen < 127:
        raise forms.ValidationError(
            _("%(ip)s is the subnet's own address; the gateway needs a host address in it.")
            % {"ip": iface.ip}
        )
    return iface


def check_collisions(
    iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface, facts: HostNetworking, own: str = ""
) -> None:
    """The subnet overlaps no other network of the host and none of its own addresses."""
    net = iface.network
    for name, other in facts.networks:
        if name != own and other.version == net.version and other.overlaps(net):
            raise forms.ValidationError(
                _("%(net)s overlaps the subnet %(other)s of network “%(name)s”.")
                % {"net": net, "other": other, "name": name}
            )
    own_bridges = {bridge for _name, bridge in facts.network_bridges}
    for dev, addr in facts.addresses:
        if dev in own_bridges:
            continue  # a running network's address: the check above names the network
        if addr.version == net.version and addr.network.overlaps(net):
            raise forms.ValidationError(
                _("%(net)s overlaps the address %(addr)s of the host's interface %(dev)s.")
                % {"net": net, "addr": addr, "dev": dev}
            )


def check_dhcp(
    iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface, start: str, end: str
) -> tuple[str, str]:
    """The range lies in the subnet, in order, and leaves out the gateway."""
    first, last = _address(start, iface.version), _address(end, iface.version)
    net = iface.network
    for addr in (first, last):
        if addr not in net or addr in (net.network_address, net.broadcast_address):
            raise forms.ValidationError(
                _("%(a)s is not a host address of the subnet %(net)s.") % {"a": addr, "net": net}
            )
    if int(first) > int(last):
        raise forms.ValidationError(_("The range ends before it starts."))
    if int(first) <= int(iface.ip) <= int(last):
        raise forms.ValidationError(
            _("The range includes the gateway %(ip)s: DHCP would hand it out.") % {"ip": iface.ip}
        )
    return str(first), str(last)


class _IpFields(forms.Form):
    """IPv4 and IPv6: gateway with prefix, DHCP range, DNS domain."""

    ipv4_address = forms.CharField(
        label=_l("IPv4: gateway address of the network, with prefix"),
        help_text=_l("The host's own address on the network, e.g. 10.0.0.1/24. Empty: no IPv4."),
        required=False,
    )
    ipv4_dhcp_start = forms.CharField(
        label=_l("IPv4: first address DHCP hands out"), required=False
    )
    ipv4_dhcp_end = forms.CharField(label=_l("IPv4: last address DHCP hands out"), required=False)
    ipv6_address = forms.CharField(
        label=_l("IPv6: gateway address of the network, with prefix"),
        help_text=_l("e.g. fd00:1::1/64. Empty: no IPv6."),
        required=False,
    )
    ipv6_dhcp_start = forms.CharField(
        label=_l("IPv6: first address DHCP hands out"), required=False
    )
    ipv6_dhcp_end = forms.CharField(label=_l("IPv6: last address DHCP hands out"), required=False)
    domain = forms.CharField(
        label=_l("DNS domain of the guests"),
        help_text=_l("Guests are known as <name>.<domain> to each other, e.g. lab.internal."),
        required=False,
    )

    facts: HostNetworking
    own_name = ""

    def clean_domain(self) -> str:
        value = str(self.cleaned_data.get("domain", "")).strip()
        if value and not DNS_DOMAIN.match(value):
            raise forms.ValidationError(_("This is not a DNS domain name."))
        return value

    def ip_spec(self, version: int) -> IpSpec | None:
        """Check one family's fields; errors go next to them. None: not asked for."""
        key = f"ipv{version}"
        data: dict[str, Any] = self.cleaned_data
        text, start, end = (
            str(data.get(f"{key}{s}", "")).strip() for s in ("_address", "_dhcp_start", "_dhcp_end")
        )
        if not text:
            if start or end:
                self.add_error(f"{key}_address", _("A DHCP range needs the gateway address."))
            return None
        try:
            iface = parse_gateway(text, version)
            check_collisions(iface, self.facts, self.own_name)
        except forms.ValidationError as err:
            self.add_error(f"{key}_address", err)
            return None
        if bool(start) != bool(end):
            self.add_error(
                f"{key}_dhcp_end" if start else f"{key}_dhcp_start",
                _("Give both ends of the range."),
            )
            return None
        if not start:
            return IpSpec(iface)
        try:
            first, last = check_dhcp(iface, start, end)
        except forms.ValidationError as err:
            self.add_error(f"{key}_dhcp_start", err)
            return None
        return IpSpec(iface, first, last)


class NetworkCreateForm(_IpFields):
    name = forms.CharField(label=_l("Name"), max_length=400, strip=False)
    mode = forms.ChoiceField(label=_l("How guests reach the outside"), choices=MODES, initial="nat")
    bridge = forms.CharField(
        label=_l("Bridge"),
        help_text=_l(
            "Bridge and Open vSwitch: the existing host bridge to join. "
            "Other modes: the name of the bridge libvirt makes (empty: virbrN)."
        ),
        required=False,
    )
    device = forms.CharField(label=_l("macvtap: the host's network device"), required=False)
    macvtap_mode = forms.ChoiceField(
        label=_l("macvtap mode"), choices=MACVTAP_MODES, initial="bridge", required=False
    )
    start = forms.BooleanField(label=_l("Start it now"), required=False, initial=True)
    autostart = forms.BooleanField(label=_l("Start it when the host boots"), required=False)

    def __init__(self, *args: Any, facts: HostNetworking, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.facts = facts
        self.spec: NetworkSpec | None = None

    def clean_name(self) -> str:
        return check_network_name(str(self.cleaned_data["name"]), self.facts.names)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        mode = data.get("mode", "")
        if "name" not in data or not mode:
            return data
        if mode in ROUTED:
            self._clean_routed(data, mode)
        else:
            self._clean_joined(data, mode)
        return data

    def _clean_routed(self, data: dict[str, Any], mode: str) -> None:
        bridge = str(data.get("bridge", "")).strip()
        problem = self._new_bridge_problem(bridge) if bridge else ""
        if problem:
            self.add_error("bridge", problem)
        ipv4, ipv6 = self.ip_spec(4), self.ip_spec(6)
        if self.errors:
            return
        if mode != "isolated" and ipv4 is None and ipv6 is None:
            self.add_error("ipv4_address", _("This mode needs an IPv4 or IPv6 subnet."))
            return
        self.spec = NetworkSpec(
            name=data["name"], mode=mode, bridge=bridge, ipv4=ipv4, ipv6=ipv6,
            domain=data.get("domain", ""), start=bool(data.get("start")),
            autostart=bool(data.get("autostart")),
        )  # fmt: skip

    def _new_bridge_problem(self, bridge: str) -> str:
        """Why libvirt could not make a bridge of this name ("" if it can)."""
        owners = {b: n for n, b in self.facts.network_bridges}
        if not IFNAME.match(bridge):
            return _("An interface name has 1 to 15 letters, digits, “-”, “_”, “.”.")
        if bridge in owners:
            return _("This is the bridge of network “%(name)s”.") % {"name": owners[bridge]}
        if bridge in (*self.facts.bridges, *self.facts.devices, "lo"):
            return _("The host already has an interface with this name.")
        return ""

    def _clean_joined(self, data: dict[str, Any], mode: str) -> None:
        field = "device" if mode == "macvtap" else "bridge"
        value = str(data.get(field, "")).strip()
        known = self.facts.devices if mode == "macvtap" else self.facts.bridges
        if not value:
            self.add_error(field, _("Choose the host's interface."))
            return
        if not IFNAME.match(value):
            self.add_error(
                field, _("An interface name has 1 to 15 letters, digits, “-”, “_”, “.”.")
            )
            return
        if mode != "openvswitch" and self.facts.bridges_known and value not in known:
            self.add_error(field, _("The host has no interface “%(v)s”.") % {"v": value})
            return
        self.spec = NetworkSpec(
            name=data["name"], mode=mode,
            bridge=value if mode != "macvtap" else "", device=value if mode == "macvtap" else "",
            macvtap_mode=ForwardMode(data.get("macvtap_mode") or "bridge"),
            start=bool(data.get("start")), autostart=bool(data.get("autostart")),
        )  # fmt: skip


EDIT_MODES = [m for m in MODES if m[0] in ROUTED]
SWITCHES = [
    ("linux", _l("Linux bridge")),
    ("openvswitch", _l("Open vSwitch bridge (virtualport openvswitch)")),
]
PORTGROUP_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def network_family(n: NetworkSummary) -> str:
    """Which edit form fits: routed (NAT, route, open, isolated), bridge (a host
    bridge, Linux or Open vSwitch), macvtap; "" for what the form cannot edit."""
    if str(n.mode) in ROUTED:
        return "routed"
    if n.mode == ForwardMode.BRIDGE and n.bridge:
        return "bridge"
    if n.mode in (ForwardMode.BRIDGE, ForwardMode.PRIVATE, ForwardMode.VEPA,
                  ForwardMode.PASSTHROUGH) and not n.bridge:  # fmt: skip
        return "macvtap"
    return ""


def parse_portgroups(text: str, vlans_allowed: bool) -> tuple[Portgroup, ...]:
    """Lines of "name [vlan[,vlan...]] [default]"; forms.ValidationError otherwise."""
    out: list[Portgroup] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.replace(",", " , ").split()
        if not words:
            continue
        name, rest = words[0], [w for w in words[1:] if w != ","]
        where = {"n": number}
        if not PORTGROUP_NAME.match(name):
            raise forms.ValidationError(
                _("Line %(n)d: a port group name has letters, digits, “-”, “_”, “.”, “:”.") % where
            )
        default = "default" in rest
        tags = [w for w in rest if w != "default"]
        if not all(t.isdigit() and int(t) <= 4095 for t in tags):
            raise forms.ValidationError(
                _("Line %(n)d: VLAN tags are numbers from 0 to 4095.") % where
            )
        if tags and not vlans_allowed:
            raise forms.ValidationError(
                _("Line %(n)d: libvirt gives VLAN tags only to Open vSwitch networks.") % where
            )
        if any(p.name == name for p in out):
            raise forms.ValidationError(_("Line %(n)d: this name is already used.") % where)
        out.append(Portgroup(name, tuple(dict.fromkeys(int(t) for t in tags)), default))
    if sum(p.default for p in out) > 1:
        raise forms.ValidationError(_("Only one port group can be the default."))
    return tuple(out)


DnsHost = tuple[str, tuple[str, ...]]


def parse_dns_hosts(text: str) -> tuple[DnsHost, ...]:
    """Lines of "address name [name...]"; forms.ValidationError otherwise."""
    out: list[DnsHost] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        where = {"n": number}
        try:
            addr = str(ipaddress.ip_address(words[0]))
        except ValueError:
            raise forms.ValidationError(
                _("Line %(n)d: “%(v)s” is not an IP address.") % {**where, "v": words[0]}
            ) from None
        if len(words) < 2 or not all(DNS_DOMAIN.match(w) for w in words[1:]):
            raise forms.ValidationError(
                _("Line %(n)d: give the address, then one or more host names.") % where
            )
        if any(a == addr for a, _n in out):
            raise forms.ValidationError(_("Line %(n)d: this address is already listed.") % where)
        out.append((addr, tuple(dict.fromkeys(words[1:]))))
    return tuple(out)


def dns_hosts_text(hosts: tuple[DnsHost, ...]) -> str:
    return "\n".join(" ".join((ip, *names)) for ip, names in hosts)


def portgroups_text(groups: tuple[Portgroup, ...]) -> str:
    lines = []
    for p in groups:
        words = [p.name, ",".join(str(v) for v in p.vlans), "default" if p.default else ""]
        lines.append(" ".join(w for w in words if w))
    return "\n".join(lines)


class NetworkEditForm(_IpFields):
    """The fields of one kind of network (`family`, see network_family):

    routed: mode, the first IPv4 and IPv6 subnet with their first DHCP range, domain;
    bridge: the host bridge and whether it is Open vSwitch;
    macvtap: the macvtap mode and the host devices;
    all: the port groups.
    """

    mode = forms.ChoiceField(label=_l("How guests reach the outside"), choices=EDIT_MODES)
    bridge = forms.CharField(label=_l("Host bridge the guests join"), required=False)
    switch = forms.ChoiceField(label=_l("Kind of bridge"), choices=SWITCHES, required=False)
    macvtap_mode = forms.ChoiceField(
        label=_l("macvtap mode"), choices=MACVTAP_MODES, required=False
    )
    devices = forms.CharField(
        label=_l("macvtap: the host's network devices"),
        help_text=_l("Separated by spaces; the first is the one guests use unless it is taken "
                     "(passthrough and private take one device per guest)."),
        required=False,
    )  # fmt: skip
    portgroups = forms.CharField(
        label=_l("Port groups"),
        help_text=_l("One per line: a name, its VLAN tags (Open vSwitch; several make a trunk) "
                     "and “default” for the one guests get when their NIC names none, "
                     "e.g. “web 10 default”."),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
    )  # fmt: skip
    dns_hosts = forms.CharField(
        label=_l("DNS names the network answers for"),
        help_text=_l("One address per line, then its names, e.g. “10.0.0.5 printer printer.lab”."),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
    )
    field_order = ["mode", "bridge", "switch", "macvtap_mode", "devices"]
    FAMILY_FIELDS = {
        "routed": ("mode", "ipv4_address", "ipv4_dhcp_start", "ipv4_dhcp_end", "ipv6_address",
                   "ipv6_dhcp_start", "ipv6_dhcp_end", "domain", "dns_hosts", "portgroups"),
        "bridge": ("bridge", "switch", "portgroups"),
        "macvtap": ("macvtap_mode", "devices", "portgroups"),
    }  # fmt: skip

    def __init__(
        self,
        *args: Any,
        facts: HostNetworking,
        own_name: str,
        family: str = "routed",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.facts, self.own_name, self.family = facts, own_name, family
        keep = self.FAMILY_FIELDS.get(family, ())
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        self.ipv4: IpSpec | None = None
        self.ipv6: IpSpec | None = None
        self.groups: tuple[Portgroup, ...] = ()
        self.device_list: tuple[str, ...] = ()
        self.dns: tuple[DnsHost, ...] = ()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        ovs = self.family == "bridge" and data.get("switch") == "openvswitch"
        try:
            self.groups = parse_portgroups(str(data.get("portgroups", "")), vlans_allowed=ovs)
        except forms.ValidationError as err:
            self.add_error("portgroups", err)
        if self.family == "routed":
            self._clean_routed(data)
        elif self.family == "bridge":
            self._clean_bridge(data)
        elif self.family == "macvtap":
            self._clean_devices(data)
        return data

    def _clean_routed(self, data: dict[str, Any]) -> None:
        try:
            self.dns = parse_dns_hosts(str(data.get("dns_hosts", "")))
        except forms.ValidationError as err:
            self.add_error("dns_hosts", err)
        self.ipv4, self.ipv6 = self.ip_spec(4), self.ip_spec(6)
        if not self.errors and data.get("mode") != "isolated" and not (self.ipv4 or self.ipv6):
            self.add_error("ipv4_address", _("This mode needs an IPv4 or IPv6 subnet."))

    def _clean_bridge(self, data: dict[str, Any]) -> None:
        bridge = str(data.get("bridge", "")).strip()
        problem = self._interface_problem(bridge, data.get("switch") != "openvswitch")
        if problem:
            self.add_error("bridge", problem)
        data["bridge"] = bridge

    def _clean_devices(self, data: dict[str, Any]) -> None:
        devices = tuple(dict.fromkeys(str(data.get("devices", "")).split()))
        if not devices:
            self.add_error("devices", _("Choose the host's interface."))
        for dev in devices:
            problem = self._interface_problem(dev, True)
            if problem:
                self.add_error("devices", problem)
                return
        self.device_list = devices

    def _interface_problem(self, name: str, must_exist: bool) -> str:
        if not name:
            return _("Choose the host's interface.")
        if not IFNAME.match(name):
            return _("An interface name has 1 to 15 letters, digits, “-”, “_”, “.”.")
        known = (*self.facts.bridges, *self.facts.devices)
        if must_exist and self.facts.bridges_known and name not in known:
            return _("The host has no interface “%(v)s”.") % {"v": name}
        return ""


class StaticHostForm(forms.Form):
    mac = forms.CharField(label=_l("MAC address of the guest's NIC"), max_length=40)
    ip = forms.CharField(label=_l("Address it always gets"), max_length=60)
    name = forms.CharField(label=_l("Host name (optional)"), required=False, max_length=63)

    def __init__(
        self, *args: Any, subnets: tuple[Subnet, ...], leases: dict[str, str], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.subnets, self.leases = subnets, leases  # leases: ip -> mac
        self.subnet: Subnet | None = None

    def clean_mac(self) -> str:
        mac = str(self.cleaned_data["mac"]).strip().lower().replace("-", ":")
        if not MAC.match(mac):
            raise forms.ValidationError(_("A MAC address looks like 52:54:00:12:34:56."))
        if int(mac[:2], 16) & 1:
            raise forms.ValidationError(_("This is a multicast address, not a NIC's."))
        return mac

    def clean_name(self) -> str:
        name = str(self.cleaned_data.get("name", "")).strip()
        if name and not HOSTNAME.match(name):
            raise forms.ValidationError(_("A host name has letters, digits and “-” only."))
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "ip" not in data:
            return data
        try:  # "10.0.0.5/24" as a VM page shows it: the prefix is the subnet's
            addr = ipaddress.ip_address(str(data["ip"]).strip().split("/")[0])
        except ValueError:
            self.add_error("ip", _("“%(v)s” is not an IP address.") % {"v": data["ip"]})
            return data
        self.subnet = next((s for s in self.subnets if addr in s.interface.network), None)
        problem = self._problem(addr, data.get("mac", ""))
        if problem:
            self.add_error("ip", problem)
        data["ip"] = str(addr)
        return data

    def _problem(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address, mac: str) -> str:
        if self.subnet is None:
            nets = ", ".join(str(s.interface.network) for s in self.subnets) or _("none")
            return _("%(a)s is in none of the network's subnets (%(nets)s).") % {
                "a": addr,
                "nets": nets,
            }
        net = self.subnet.interface.network
        if addr == self.subnet.interface.ip:
            return _("%(a)s is the network's gateway.") % {"a": addr}
        if addr in (net.network_address, net.broadcast_address):
            return _("%(a)s is not a host address of %(net)s.") % {"a": addr, "net": net}
        for h in self.subnet.hosts:
            if h.ip == str(addr) or h.mac == mac:
                return _("Already reserved: %(mac)s has %(ip)s.") % {"mac": h.mac, "ip": h.ip}
        holder = self.leases.get(str(addr))
        if holder and holder != mac:
            return _("%(a)s is leased to %(mac)s now.") % {"a": addr, "mac": holder}
        return ""

    def entry(self) -> StaticHost:
        d = self.cleaned_data
        return StaticHost(d["mac"], d["ip"], d.get("name", ""))
