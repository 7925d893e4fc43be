"""Networks made and changed through the pages on the real libvirtd (qemu:///system).

vmdash acts through its pages; what happened is checked with the bare libvirt
API on a connection of the test's own (and dnsmasq's hosts file for the live
half of a static host). Every network here is vmdash-t-net-* on 10.251.x.0/24:
only this host's own bridge carries it.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import libvirt
import pytest
from django.test import Client
from lxml import etree

from tests.conftest import audit_entries
from tests.guest import guest_domain_xml, kvm_usable
from tests.networks.conftest import NET_PREFIX
from tests.realhost import remove_domain
from vmdash.models import Host
from vmdash.virt import networks as virt
from vmdash.virt.errors import VirtError

pytestmark = [pytest.mark.django_db, pytest.mark.libvirtd]
BASE = "/hosts/local/networks/"
Conn = Callable[[], libvirt.virConnect]
DNSMASQ = Path("/var/lib/libvirt/dnsmasq")


def names(conn: libvirt.virConnect) -> set[str]:
    return {n.name() for n in conn.listAllNetworks(0)}


def define_nat(conn: libvirt.virConnect, name: str, third: int) -> libvirt.virNetwork:
    """A NAT network on 10.251.<third>.0/24, started, defined by the test itself."""
    root = etree.Element("network")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "forward", mode="nat")
    ip = etree.SubElement(root, "ip", address=f"10.251.{third}.1", prefix="24")
    etree.SubElement(etree.SubElement(ip, "dhcp"), "range", start=f"10.251.{third}.100",
                     end=f"10.251.{third}.150")  # fmt: skip
    net = conn.networkDefineXML(etree.tostring(root, encoding="unicode"))
    net.create()
    return net


@pytest.fixture
def guest_on(real_networks: Conn, guest_files: Path) -> Iterator[Callable[..., str]]:
    """A real test guest with one NIC (MAC given) on a network, started unless
    asked not to; removed after."""
    made: list[str] = []

    def start(network: str, mac: str, run: bool = True, portgroup: str = "") -> str:
        name = f"vmdash-t-netvm-{uuid.uuid4().hex[:6]}"
        dom = etree.fromstring(
            guest_domain_xml(
                name,
                kernel=guest_files / "vmlinuz",
                initrd=guest_files / "initrd.img",
                domain_type="kvm" if kvm_usable() else "qemu",
                vnc=False,
            )
        )
        nic = etree.SubElement(dom.find("devices"), "interface", type="network")
        etree.SubElement(nic, "mac", address=mac)
        source = etree.SubElement(nic, "source", network=network)
        if portgroup:
            source.set("portgroup", portgroup)
        etree.SubElement(nic, "model", type="virtio")
        # No boot ROM: the guest boots its kernel directly, and on this machine a
        # virtio NIC with its ROM stops QEMU at start ("qemu unexpectedly closed
        # the monitor", nothing more in its log); without the ROM it starts.
        etree.SubElement(nic, "rom", enabled="no")
        dom_ = real_networks().defineXML(etree.tostring(dom, encoding="unicode"))
        made.append(name)
        if run:
            dom_.create()
        return name

    yield start
    conn = real_networks()
    for name in made:
        try:
            remove_domain(conn.lookupByName(name))
        except libvirt.libvirtError:
            pass


def test_it_creates_a_nat_network_with_dhcp_and_a_static_host_through_the_pages(
    as_alice: Client, local: Host, real_networks: Conn
) -> None:
    name = f"{NET_PREFIX}nat"
    r = as_alice.post(
        BASE + "new/",
        {"name": name, "mode": "nat", "ipv4_address": "10.251.21.1/24",
         "ipv4_dhcp_start": "10.251.21.100", "ipv4_dhcp_end": "10.251.21.150",
         "domain": "t21.internal", "start": "on", "autostart": "on"},
    )  # fmt: skip
    assert r.status_code == 302, r.content.decode()
    net = real_networks().networkLookupByName(name)
    assert net.isActive() and net.isPersistent() and net.autostart()
    live = etree.fromstring(net.XMLDesc(0))
    assert live.find("forward").get("mode") == "nat"
    assert live.find("ip/dhcp/range").attrib == {"start": "10.251.21.100", "end": "10.251.21.150"}
    assert live.find("domain").get("name") == "t21.internal"

    r = as_alice.post(
        f"{BASE}{name}/hosts/add/", {"mac": "52:54:00:25:10:01", "ip": "10.251.21.10", "name": "g1"}
    )
    assert r.status_code == 302
    for flags in (0, libvirt.VIR_NETWORK_XML_INACTIVE):  # live and in the config
        host = etree.fromstring(net.XMLDesc(flags)).find("ip/dhcp/host")
        assert host is not None and host.attrib == {
            "mac": "52:54:00:25:10:01", "name": "g1", "ip": "10.251.21.10"
        }  # fmt: skip
    assert "52:54:00:25:10:01" in (DNSMASQ / f"{name}.hostsfile").read_text()  # dnsmasq has it

    page = as_alice.get(f"{BASE}{name}/").content.decode()
    assert "10.251.21.10" in page and "g1" in page
    r = as_alice.post(
        f"{BASE}{name}/hosts/remove/", {"mac": "52:54:00:25:10:01", "ip": "10.251.21.10"}
    )
    assert r.status_code == 302
    assert (
        etree.fromstring(net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)).find("ip/dhcp/host") is None
    )

    assert as_alice.post(f"{BASE}{name}/delete/", {"confirm": name}).status_code == 302
    assert name not in names(real_networks())
    actions = list(audit_entries().order_by("id").values_list("action", "outcome"))
    assert actions == [
        ("network-create", "ok"),
        ("network-host-add", "ok"),
        ("network-host-remove", "ok"),
        ("network-delete", "ok"),
    ]


def test_a_failed_start_undefines_what_it_defined_and_says_why(
    local: Host, real_networks: Conn
) -> None:
    define_nat(real_networks(), f"{NET_PREFIX}first", 22)
    clash = virt.NetworkSpec(  # the same subnet: libvirt defines it, then cannot start it
        f"{NET_PREFIX}second", "nat", ipv4=virt.IpSpec(ipaddress.ip_interface("10.251.22.1/24"))
    )
    with pytest.raises(VirtError) as err:
        virt.create(local.ref, clash)
    assert "it was removed again" in str(err.value) and "in use" in str(err.value)
    assert f"{NET_PREFIX}second" not in names(real_networks())


@pytest.mark.parametrize("tail", ["with space", 'it\'s "quoted"', "ünï-сеть"])
def test_it_makes_names_libvirt_takes_and_serves_their_pages(
    as_alice: Client, local: Host, real_networks: Conn, tail: str
) -> None:
    name = NET_PREFIX + tail
    r = as_alice.post(BASE + "new/", {"name": name, "mode": "isolated", "start": "on"})
    assert r.status_code == 302, r.content.decode()
    assert real_networks().networkLookupByName(name).isActive()
    assert as_alice.get(BASE + quote(name) + "/").status_code == 200
    assert as_alice.post(BASE + quote(name) + "/delete/", {"confirm": name}).status_code == 302
    assert name not in names(real_networks())


def host_address() -> ipaddress.IPv4Interface:
    """A global IPv4 address of one of this machine's interfaces."""
    links = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, check=True).stdout)
    for link in links:
        for a in link.get("addr_info", []):
            iface = ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}")
            if iface.version == 4 and iface.ip.is_private and not iface.ip.is_loopback:
                return iface  # type: ignore[return-value]
    pytest.fail("this machine has no private IPv4 address to collide with", pytrace=False)


def default_subnet(conn: libvirt.virConnect) -> str:
    """The subnet of a network that already exists (libvirt's own "default" here)."""
    for net in conn.listAllNetworks(0):
        ip = etree.fromstring(net.XMLDesc(0)).find("ip")
        if ip is not None and not net.name().startswith(NET_PREFIX):
            mask = ip.get("prefix") or ip.get("netmask")
            return str(ipaddress.ip_interface(f"{ip.get('address')}/{mask}").network)
    pytest.fail("no network with an address on this host to overlap", pytrace=False)


@pytest.mark.parametrize(
    ("make", "field", "says"),
    [
        (lambda c: {"name": NET_PREFIX + "a/b"}, "name", "“/”"),
        (lambda c: {"name": ".."}, "name", "dots"),
        (lambda c: {"name": NET_PREFIX + "x" * 290}, "name", "at most"),
        (lambda c: {"ipv4_address": "10.251.23.1/33"}, "ipv4_address", "not an address"),
        (lambda c: {"ipv4_address": "10.251.23.1/24 ; rm"}, "ipv4_address", "not an address"),
        (lambda c: {"ipv4_address": default_subnet(c).replace(".0/", ".77/", 1)},
         "ipv4_address", "overlaps the subnet"),
        (lambda c: {"ipv4_address": str(host_address())}, "ipv4_address", "of the host"),
        (lambda c: {"ipv4_dhcp_start": "10.251.24.100", "ipv4_dhcp_end": "10.251.25.9"},
         "ipv4_dhcp_start", "not a host address"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_next_to_its_field_and_nothing_is_made(
    as_alice: Client,
    local: Host,
    real_networks: Conn,
    make: Callable[[libvirt.virConnect], dict[str, str]],
    field: str,
    says: str,
) -> None:
    conn = real_networks()
    before = names(conn)
    data = {"name": f"{NET_PREFIX}bad", "mode": "nat", "ipv4_address": "10.251.24.1/24",
            "start": "on", **make(conn)}  # fmt: skip
    r = as_alice.post(BASE + "new/", data)
    page = r.content.decode()
    assert r.status_code == 400
    start = page.find(f'data-field="{field}"')
    assert start >= 0 and 'class="field-error"' in page[start : start + 2000] and says in page
    # Nothing is made: no network by the name asked for (others may come and go).
    assert data["name"] not in names(real_networks()) - before
    entry = audit_entries().get()
    assert (entry.action, entry.outcome) == ("network-create", "error") and field in entry.message


def test_deleting_a_network_a_running_vm_uses_is_refused_with_its_name(
    as_alice: Client, local: Host, real_networks: Conn, guest_on: Callable[..., str]
) -> None:
    name = f"{NET_PREFIX}used"
    define_nat(real_networks(), name, 26)
    vm = guest_on(name, "52:54:00:25:26:01")
    listing = as_alice.get(BASE).content.decode()
    assert vm in listing and "52:54:00:25:26:01" in listing
    r = as_alice.post(f"{BASE}{name}/delete/", {"confirm": name})
    assert r.status_code == 409 and vm in r.content.decode()
    net = real_networks().networkLookupByName(name)
    assert net.isActive() and net.isPersistent()
    entry = audit_entries().get()
    assert (entry.action, entry.outcome) == ("network-delete", "error") and vm in entry.message


def test_a_dhcp_client_gets_its_reserved_address_and_a_lease_can_be_reserved(
    as_alice: Client,
    local: Host,
    real_networks: Conn,
    dhcp_client: Callable[[str, str, str], str],
    guest_on: Callable[..., str],
) -> None:
    name = f"{NET_PREFIX}leases"
    r = as_alice.post(
        BASE + "new/",
        {"name": name, "mode": "nat", "ipv4_address": "10.251.31.1/24",
         "ipv4_dhcp_start": "10.251.31.100", "ipv4_dhcp_end": "10.251.31.150", "start": "on"},
    )  # fmt: skip
    assert r.status_code == 302, r.content.decode()
    bridge = real_networks().networkLookupByName(name).bridgeName()
    as_alice.post(f"{BASE}{name}/hosts/add/", {"mac": "52:54:00:25:31:01", "ip": "10.251.31.10"})
    assert dhcp_client(bridge, "52:54:00:25:31:01", "reserved") == "10.251.31.10"

    vm = guest_on(name, "52:54:00:25:31:02", run=False)  # the lease's MAC names its VM
    other = dhcp_client(bridge, "52:54:00:25:31:02", "roaming")
    assert ipaddress.ip_address(other) in ipaddress.ip_network("10.251.31.96/27")
    page = as_alice.get(f"{BASE}{name}/").content.decode()
    assert f"{other}/24" in page and "roaming" in page and "reserved" in page
    row = page[page.find('<tr data-mac="52:54:00:25:31:02">') :]
    assert vm in row[: row.find("</tr>")]
    assert page.count("Reserve this address") == 1  # .10 is reserved already

    r = as_alice.post(
        f"{BASE}{name}/hosts/add/", {"mac": "52:54:00:25:31:02", "ip": other, "name": "roaming"}
    )
    assert r.status_code == 302
    xml = etree.fromstring(
        real_networks().networkLookupByName(name).XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)
    )
    hosts = {(h.get("mac"), h.get("ip")) for h in xml.iterfind("ip/dhcp/host")}
    assert hosts == {("52:54:00:25:31:01", "10.251.31.10"), ("52:54:00:25:31:02", other)}
    leases = {
        lease["mac"]: lease["ipaddr"]
        for lease in real_networks().networkLookupByName(name).DHCPLeases()
    }
    assert leases == {"52:54:00:25:31:01": "10.251.31.10", "52:54:00:25:31:02": other}


@pytest.fixture
def host_bridge() -> Iterator[str]:
    """An empty Linux bridge on this host (no ports, so no traffic), removed after."""
    subprocess.run(["ip", "link", "add", "vmdt-br0", "type", "bridge"], check=True)
    yield "vmdt-br0"
    subprocess.run(["ip", "link", "del", "vmdt-br0"], capture_output=True)


def test_it_makes_bridge_macvtap_and_open_vswitch_networks_libvirt_accepts(
    as_alice: Client, local: Host, real_networks: Conn, host_bridge: str
) -> None:
    form = as_alice.get(BASE + "new/").content.decode()
    assert host_bridge in form  # the host's bridges are offered
    device = next(d for d in virt.host_networking(local.ref).devices if not d.startswith("vmdt"))
    cases = {
        "bridge": {"mode": "bridge", "bridge": host_bridge},
        "tap": {"mode": "macvtap", "device": device, "macvtap_mode": "private"},
        "ovs": {"mode": "openvswitch", "bridge": "vmdt-ovs0"},  # OVS bridges: free text
    }
    for tail, data in cases.items():
        r = as_alice.post(BASE + "new/", {"name": NET_PREFIX + tail, **data})  # not started
        assert r.status_code == 302, r.content.decode()
    conn = real_networks()
    bridge = etree.fromstring(conn.networkLookupByName(NET_PREFIX + "bridge").XMLDesc(0))
    assert bridge.find("forward").get("mode") == "bridge"
    assert bridge.find("bridge").get("name") == host_bridge
    tap = etree.fromstring(conn.networkLookupByName(NET_PREFIX + "tap").XMLDesc(0))
    assert tap.find("forward").attrib == {"mode": "private", "dev": device}
    ovs = etree.fromstring(conn.networkLookupByName(NET_PREFIX + "ovs").XMLDesc(0))
    assert ovs.find("virtualport").get("type") == "openvswitch"
    assert not any(conn.networkLookupByName(NET_PREFIX + t).isActive() for t in cases)


def test_an_edit_of_a_running_network_applies_the_range_now_and_the_mode_at_a_restart(
    as_alice: Client, local: Host, real_networks: Conn
) -> None:
    name = f"{NET_PREFIX}edit"
    net = define_nat(real_networks(), name, 32)
    data = {"mode": "route", "ipv4_address": "10.251.32.1/24", "ipv4_dhcp_start": "10.251.32.20",
            "ipv4_dhcp_end": "10.251.32.40", "domain": "t32.internal"}  # fmt: skip
    preview = as_alice.post(f"{BASE}{name}/edit/", {**data, "preview": "1"}).content.decode()
    assert 'data-change="live" data-what="ip-dhcp-range"' in preview
    assert 'data-change="restart" data-what="forward"' in preview
    assert "+      &lt;range start=&#x27;10.251.32.20&#x27;" in preview
    r = as_alice.post(f"{BASE}{name}/edit/", data, follow=True)
    assert "wait for a restart" in r.content.decode()

    def of(flags: int) -> tuple[dict[str, str], str]:
        root = etree.fromstring(net.XMLDesc(flags))
        return dict(root.find("ip/dhcp/range").attrib), root.find("forward").get("mode")

    new_range = {"start": "10.251.32.20", "end": "10.251.32.40"}
    assert of(libvirt.VIR_NETWORK_XML_INACTIVE) == (new_range, "route")
    assert of(0) == (new_range, "nat")  # the range now, the mode at the restart
    as_alice.post(f"{BASE}{name}/restart/")
    assert of(0) == (new_range, "route")
    entry = audit_entries().filter(action="network-edit").get()
    assert "+  <domain name='t32.internal'/>" in entry.diff and entry.outcome == "ok"


def test_it_makes_a_dual_stack_nat_network_that_starts(
    as_alice: Client, local: Host, real_networks: Conn
) -> None:
    name = f"{NET_PREFIX}dual"
    r = as_alice.post(
        BASE + "new/",
        {"name": name, "mode": "nat", "ipv4_address": "10.251.33.1/24",
         "ipv6_address": "fd00:251:33::1/64", "ipv6_dhcp_start": "fd00:251:33::100",
         "ipv6_dhcp_end": "fd00:251:33::1ff", "start": "on"},
    )  # fmt: skip
    assert r.status_code == 302, r.content.decode()
    net = real_networks().networkLookupByName(name)
    assert net.isActive()
    v6 = etree.fromstring(net.XMLDesc(0)).find("ip[@family='ipv6']")
    assert v6 is not None and v6.find("dhcp/range").get("start") == "fd00:251:33::100"
