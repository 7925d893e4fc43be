"""Template helpers of the network pages: no I/O, only URLs and labels."""

from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _l

from networks.ops import OP_INFO
from vmdash.virt.networks import NetworkSummary
from vmdash.virt.xml.network import MACVTAP_MODES
from vmdash.virt.xml.network_changes import Change

register = template.Library()


@dataclass(frozen=True)
class Button:
    op: str
    label: Promise
    url: str
    confirm_url: str = ""
    danger: bool = False


@register.filter
def network_buttons(n: NetworkSummary) -> list[Button]:
    """The operations valid now, as buttons (delete: a link to its confirmation)."""
    out = []
    for op in n.ops:
        info = OP_INFO[op]
        args = [n.host, n.name]
        confirm = reverse("network-confirm", args=[*args, op.value]) if info.confirm else ""
        out.append(
            Button(
                op.value,
                info.label,
                reverse(f"network-{op.value}", args=args),
                confirm,
                info.danger,
            )
        )
    return out


@register.filter
def network_url(n: NetworkSummary) -> str:
    return reverse("network-detail", args=[n.host, n.name])


_MODES = {
    "nat": _l("NAT"),
    "route": _l("routed"),
    "open": _l("open"),
    "isolated": _l("isolated"),
    "bridge": _l("host bridge"),
}


@register.filter
def network_mode(n: NetworkSummary) -> str:
    """How the network reaches the outside, in words."""
    if n.virtualport == "openvswitch":
        return str(_l("Open vSwitch"))
    if n.mode in MACVTAP_MODES and not n.bridge:
        return str(_l("macvtap (%(mode)s)") % {"mode": n.mode})
    return str(_MODES.get(str(n.mode), n.mode))


_WHAT = {
    "ip-dhcp-host": _l("DHCP static host"),
    "ip-dhcp-range": _l("DHCP range"),
    "dns-host": _l("DNS host"),
    "dns-txt": _l("DNS TXT record"),
    "dns-srv": _l("DNS SRV record"),
    "forward-interface": _l("host device"),
    "portgroup": _l("port group"),
    "forward": _l("forward mode and devices"),
    "bridge": _l("bridge"),
    "ip": _l("subnet (gateway address and prefix)"),
    "domain": _l("DNS domain"),
    "dns": _l("DNS settings"),
    "mtu": _l("MTU"),
    "mac": _l("bridge MAC address"),
    "virtualport": _l("virtual port (Open vSwitch)"),
    "vlan": _l("VLAN"),
    "bandwidth": _l("bandwidth limits"),
    "name": _l("name"),
}


@register.filter
def change_what(change: Change) -> str:
    """What a change is about, in words."""
    return str(_WHAT.get(change.what, change.what))


@register.filter
def change_verb(change: Change) -> str:
    if not change.before:
        return str(_l("added"))
    if not change.after:
        return str(_l("removed"))
    return str(_l("changed"))
