"""A VM's network interfaces: add one on a virtual network, take one out,
set its link up or down, change what it connects to, its model and MAC.

virDomainAttachDeviceFlags / DetachDeviceFlags / UpdateDeviceFlags with
AFFECT_CONFIG, and AFFECT_LIVE too while the VM runs: the running guest sees
the change and the next start keeps it. The <interface> element is built
through the XML layer (an added one), or is the VM's own element with only
<link> changed. Taking a NIC out of a running guest needs the guest's
cooperation (PCI hot-unplug): when it has not let go, the NIC is gone from the
definition and leaves the running VM at its next stop, and the caller is told.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import libvirt
from django.utils.translation import gettext as _
from lxml import etree

from vmdash.virt.connection import pool
from vmdash.virt.devices import detach
from vmdash.virt.domains import edit, lookup
from vmdash.virt.errors import InvalidInput, NotFound, translate
from vmdash.virt.refs import HostRef
from vmdash.virt.xml import tostring
from vmdash.virt.xml.domain import DomainXML, InterfaceXML

MODELS = ("virtio", "e1000e", "e1000", "rtl8139")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


@dataclass(frozen=True)
class Done:
    mac: str
    live: bool  # the running guest has the change now
    waiting: bool = False  # a removal the running guest has not let go of yet


def _flags(dom: libvirt.virDomain) -> int:
    flags = int(libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    if dom.isActive():
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    return flags


def mac_problem(mac: str) -> str:
    """Why `mac` cannot be a NIC's address ("" when it can; "" is "let libvirt choose")."""
    if not mac:
        return ""
    if not _MAC.match(mac):
        return _("A MAC address is six pairs of hex digits: 52:54:00:12:34:56.")
    if int(mac[:2], 16) & 1:
        return _("That is a multicast address: the first pair must be even.")
    return ""


def new_interface(network: str, model: str, mac: str = "") -> str:
    """The <interface> of a NIC on a virtual network."""
    node = etree.Element("interface", type="network")
    nic = InterfaceXML(node)
    if mac:
        nic.mac = mac
    nic.source_network = network
    nic.model = model
    return tostring(node)


def networks(host: HostRef) -> list[tuple[str, bool]]:
    """(name, running) of the host's virtual networks, for the add form."""

    def act(conn: libvirt.virConnect) -> list[tuple[str, bool]]:
        found = [(str(n.name()), bool(n.isActive())) for n in conn.listAllNetworks(0)]
        return sorted(found, key=lambda nv: nv[0].casefold())

    return pool().call(host.uri, act, f"Cannot list the networks of host '{host.label}'")


def _macs(doc: DomainXML) -> set[str]:
    return {(n.mac or "").lower() for n in doc.interfaces}


def add(host: HostRef, name: str, network: str, model: str, mac: str = "") -> Done:
    doing = f"Cannot add a network interface to VM '{name}'"
    mac = mac.strip().lower()
    if model not in MODELS:
        raise InvalidInput(_("Choose a model: %(models)s.") % {"models": ", ".join(MODELS)})
    problem = mac_problem(mac)
    if problem:
        raise InvalidInput(problem)

    def act(conn: libvirt.virConnect) -> Done:
        dom = lookup(conn, host, name)
        try:
            conn.networkLookupByName(network)
        except libvirt.libvirtError:
            raise NotFound(
                _("There is no network '%(n)s' on this host.") % {"n": network}
            ) from None
        before = _macs(DomainXML.parse(str(dom.XMLDesc(_SECURE))))
        if mac and mac in before:
            raise InvalidInput(_("The VM has a NIC with MAC %(mac)s already.") % {"mac": mac})
        live = bool(dom.isActive())
        try:
            dom.attachDeviceFlags(new_interface(network, model, mac), _flags(dom))
        except libvirt.libvirtError as err:
            raise translate(err, doing) from None
        after = _macs(DomainXML.parse(str(dom.XMLDesc(_SECURE))))
        added = sorted(after - before)
        return Done(added[0] if added else mac, live)

    return pool().call(host.uri, act, doing)


def _own(doc: DomainXML, mac: str) -> InterfaceXML | None:
    return next((n for n in doc.interfaces if (n.mac or "").lower() == mac.lower()), None)


def remove(host: HostRef, name: str, mac: str) -> Done:
    doing = f"Cannot remove the network interface {mac} of VM '{name}'"

    def act(conn: libvirt.virConnect) -> Done:
        dom = lookup(conn, host, name)
        missing = _("The VM has no NIC with MAC %(mac)s.") % {"mac": mac}
        done = detach(dom, lambda doc: _own(doc, mac), missing, doing)
        return Done(mac.lower(), done.live, done.waiting)

    return pool().call(host.uri, act, doing)


def set_link(host: HostRef, name: str, mac: str, up: bool) -> Done:
    doing = f"Cannot change the link of {mac} of VM '{name}'"

    def act(conn: libvirt.virConnect) -> Done:
        dom = lookup(conn, host, name)
        targets = [(DomainXML.parse(str(dom.XMLDesc(_SECURE))), libvirt.VIR_DOMAIN_AFFECT_CONFIG)]
        if dom.isActive():  # the running VM's own element: its alias and tap name with it
            live = DomainXML.parse(str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)))
            targets.append((live, libvirt.VIR_DOMAIN_AFFECT_LIVE))
        found = [(_own(doc, mac), flags) for doc, flags in targets]
        if all(nic is None for nic, _flags_ in found):
            raise NotFound(_("The VM has no NIC with MAC %(mac)s.") % {"mac": mac})
        try:
            for nic, flags in found:
                if nic is None:
                    continue
                changed = InterfaceXML(copy.deepcopy(nic.node))
                changed.node.tail = None
                changed.link_state = "up" if up else "down"
                dom.updateDeviceFlags(tostring(changed.node), flags)
        except libvirt.libvirtError as err:
            raise translate(err, doing) from None
        return Done(mac.lower(), bool(dom.isActive()))

    return pool().call(host.uri, act, doing)


# What a NIC is connected to and how it looks to the guest, changed in the
# definition (for the next start): virt-manager's NIC page. "ovs" is a host
# bridge of Open vSwitch (type bridge with <virtualport type='openvswitch'/>),
# "direct" macvtap on a host device.
KINDS = ("network", "bridge", "ovs", "direct")
DIRECT_MODES = ("bridge", "vepa", "private", "passthrough")
_IFNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")


@dataclass(frozen=True)
class NicTuning:
    kind: str
    source: str  # the network's name, or the host bridge or device
    model: str
    mac: str  # "" keeps the MAC it has
    mode: str = "bridge"  # direct only


def tuning_problem(t: NicTuning) -> str:
    """Why `t` cannot be (a sentence), or ""."""
    if t.kind not in KINDS:
        return _("Choose what the interface connects to from the list.")
    if t.model not in MODELS:
        return _("Choose a model: %(models)s.") % {"models": ", ".join(MODELS)}
    if not t.source:
        return _("Name the network, bridge or device it connects to.")
    if t.kind != "network" and not _IFNAME.match(t.source):
        return _("A host interface name has at most 15 letters, digits, '.', '-', '_' or ':'.")
    if t.kind == "direct" and t.mode not in DIRECT_MODES:
        return _("Choose a macvtap mode: %(modes)s.") % {"modes": ", ".join(DIRECT_MODES)}
    return mac_problem(t.mac)


def _tune(doc: DomainXML, mac: str, t: NicTuning) -> str:
    """Change the NIC `mac` of `doc` as `t` says; its MAC after."""
    nic = _own(doc, mac)
    if nic is None:
        raise NotFound(_("The VM has no network interface %(mac)s.") % {"mac": mac})
    new_mac = t.mac.lower() or mac
    if new_mac != mac and new_mac in _macs(doc):
        raise InvalidInput(_("Another interface of this VM has MAC %(mac)s.") % {"mac": new_mac})
    if new_mac != (nic.mac or "").lower():
        nic.mac = new_mac
    was = "ovs" if nic.type == "bridge" and nic.virtualport == "openvswitch" else nic.type
    if was != t.kind:
        # Another kind of connection: what the old <source> and <virtualport>
        # said (a portgroup, a 802.1Qbg profile) means nothing for the new one.
        nic.has_source = False
        nic.has_virtualport = False
    nic.type = "bridge" if t.kind == "ovs" else t.kind
    if t.kind == "network":
        nic.source_network = t.source
    elif t.kind == "direct":
        nic.source_dev, nic.source_mode = t.source, t.mode
    else:
        nic.source_bridge = t.source
    if t.kind == "ovs":
        nic.virtualport = "openvswitch"
    nic.model = t.model
    return new_mac


def tune(host: HostRef, name: str, mac: str, t: NicTuning) -> tuple[str, str]:
    """Set a NIC's connection, model and MAC in the definition (validated);
    (the diff, its MAC after)."""
    doing = f"Cannot change network interface {mac} of VM '{name}'"
    problem = tuning_problem(t)
    if problem:
        raise InvalidInput(problem)
    after: dict[str, str] = {}

    def change(doc: DomainXML) -> None:
        after["mac"] = _tune(doc, mac, t)

    diff = edit(host, name, change, doing=doing, persistent_only=True)
    return diff, after.get("mac", mac)
