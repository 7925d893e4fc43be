"""What the views share: the buttons of each operation, and the edit form's change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _l

from networks.forms import DnsHost, NetworkEditForm, dns_hosts_text, portgroups_text
from vmdash.virt.networks import IpSpec, NetworkSummary, Op, Portgroup
from vmdash.virt.xml import remove
from vmdash.virt.xml.network import ForwardMode, IpXML, NetworkXML


@dataclass(frozen=True)
class OpInfo:
    label: Promise
    confirm: bool = False
    danger: bool = False


OP_INFO: dict[Op, OpInfo] = {
    Op.START: OpInfo(_l("Start")),
    Op.STOP: OpInfo(_l("Stop")),
    Op.AUTOSTART_ON: OpInfo(_l("Autostart on")),
    Op.AUTOSTART_OFF: OpInfo(_l("Autostart off")),
    Op.DELETE: OpInfo(_l("Delete"), confirm=True, danger=True),
    Op.RESTART: OpInfo(_l("Restart"), danger=True),
}


def form_errors(form: forms.Form) -> str:
    """The form's errors in one line, for the audit trail."""
    parts = []
    for field, errors in form.errors.items():
        label = field if field != "__all__" else "form"
        parts.append(f"{label}: {' '.join(str(e) for e in errors)}")
    return "; ".join(parts)[:2000]


def edit_initial(n: NetworkSummary) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "mode": str(n.mode),
        "domain": n.domain,
        "bridge": n.bridge,
        "switch": "openvswitch" if n.virtualport == "openvswitch" else "linux",
        "macvtap_mode": str(n.mode),
        "devices": " ".join(n.devices),
        "portgroups": portgroups_text(n.portgroups),
        "dns_hosts": dns_hosts_text(n.dns_hosts),
    }
    for sub in n.subnets:
        key = "ipv6" if sub.v6 else "ipv4"
        if f"{key}_address" in initial:
            continue  # the form edits the first subnet of each family
        initial[f"{key}_address"] = sub.gateway
        if sub.dhcp:
            initial[f"{key}_dhcp_start"], initial[f"{key}_dhcp_end"] = sub.dhcp[0]
    return initial


def _set_ip(doc: NetworkXML, ip: IpXML | None, spec: IpSpec | None) -> None:
    if spec is None:
        if ip is not None:
            doc.ips.remove(ip)
        return
    if ip is None:
        attrs = {"family": "ipv6"} if spec.gateway.version == 6 else {}
        ip = doc.ips.add(**attrs)
    ip.address = str(spec.gateway.ip)
    if ip.netmask is not None and spec.gateway.version == 4:
        ip.netmask = str(spec.gateway.network.netmask)  # keep the notation it had
    else:
        ip.prefix = spec.gateway.network.prefixlen
    ranges = list(ip.ranges)
    if spec.dhcp_start:
        first = ranges[0] if ranges else ip.ranges.add()
        first.start, first.end = spec.dhcp_start, spec.dhcp_end
        return
    for r in ranges:
        ip.ranges.remove(r)
    dhcp = ip.node.find("dhcp")
    if dhcp is not None and len(dhcp) == 0:
        remove(dhcp)


def _set_portgroups(doc: NetworkXML, groups: tuple[Portgroup, ...]) -> None:
    """Port groups by name: kept ones keep what the form does not show (bandwidth,
    virtualport parameters); gone ones go; new ones come last."""
    wanted = {p.name: p for p in groups}
    for existing in list(doc.portgroups):
        if existing.name not in wanted:
            doc.portgroups.remove(existing)
    have = {p.name: p for p in doc.portgroups}
    for group in groups:
        node = have.get(group.name) or doc.portgroups.add(name=group.name)
        if bool(node.default) != group.default:
            node.default = True if group.default else None
        node.vlans = group.vlans


def _set_dns_hosts(doc: NetworkXML, hosts: tuple[DnsHost, ...]) -> None:
    """DNS hosts by address: kept ones get the names asked for; an empty <dns> goes."""
    wanted = dict(hosts)
    gone = [h for h in doc.dns_hosts if h.ip not in wanted]
    for existing in gone:
        doc.dns_hosts.remove(existing)
    have = {h.ip: h for h in doc.dns_hosts}
    for ip, names in hosts:
        (have.get(ip) or doc.dns_hosts.add(ip=ip)).names = names
    dns = doc.node.find("dns")
    if gone and dns is not None and len(dns) == 0 and not dns.attrib:
        remove(dns)  # we emptied it


def _set_bridge(doc: NetworkXML, bridge: str, ovs: bool) -> None:
    doc.bridge = bridge
    if ovs:
        doc.virtualport = "openvswitch"
        return
    node = doc.node.find("virtualport")
    if node is not None:
        remove(node)  # a Linux bridge has no virtual port (nor its parameters)


def _set_devices(doc: NetworkXML, mode: ForwardMode, devices: tuple[str, ...]) -> None:
    """macvtap: the mode, and the devices in order; dev= names the first (libvirt
    wants them to agree)."""
    if doc.forward_mode != mode:
        doc.forward_mode = mode
    for iface in list(doc.forward_interfaces):
        if iface.dev not in devices:
            doc.forward_interfaces.remove(iface)
    have = {i.dev for i in doc.forward_interfaces}
    for dev in devices:
        if dev not in have:
            doc.forward_interfaces.add(dev=dev)
    doc.forward_dev = devices[0]


def edit_change(form: NetworkEditForm) -> Callable[[NetworkXML], None]:
    """The edit as a change of the inactive XML: only the nodes the form covers."""
    data = form.cleaned_data

    def routed(doc: NetworkXML) -> None:
        mode = ForwardMode(data["mode"])
        if doc.forward_mode != mode:
            doc.forward_mode = mode
        doc.domain = data.get("domain") or None
        _set_ip(doc, doc.ip_of(v6=False), form.ipv4)
        _set_ip(doc, doc.ip_of(v6=True), form.ipv6)
        _set_dns_hosts(doc, form.dns)

    def change(doc: NetworkXML) -> None:
        if form.family == "routed":
            routed(doc)
        elif form.family == "bridge":
            _set_bridge(doc, data["bridge"], data.get("switch") == "openvswitch")
        elif form.family == "macvtap":
            _set_devices(doc, ForwardMode(data["macvtap_mode"]), form.device_list)
        _set_portgroups(doc, form.groups)

    return change
