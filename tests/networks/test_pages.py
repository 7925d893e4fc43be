"""The network pages on libvirt's test driver: list, detail, lifecycle, create, edit, DHCP.

The test driver keeps one world per URI per process, shared by vmdash's
connections, so what a page did is read back through vmdash's own reader
here; tests/networks/test_real_libvirtd.py checks with libvirt directly.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import audit_entries
from vmdash.models import Host
from vmdash.virt import networks as virt
from vmdash.virt.connection import pool
from vmdash.virt.refs import HostRef

pytestmark = pytest.mark.django_db
BASE = "/hosts/world/networks/"


def names(host: Host) -> set[str]:
    return {n.name for n in virt.list_networks(host.ref)}


def summary(host: Host, name: str) -> virt.NetworkSummary:
    return virt.get_summary(host.ref, name)


def test_it_lists_each_network_with_its_vms_macs_and_ranges(as_alice: Client, world: Host) -> None:
    page = as_alice.get(BASE).content.decode()
    assert 'data-name="lan" data-state="active"' in page
    assert "10.251.1.1/24" in page and "10.251.1.100 – 10.251.1.200" in page
    assert "web1" in page and "52:54:00:00:00:01" in page
    assert "virbr51" in page and "NAT" in page and "isolated" in page


def test_it_reads_every_vm_once_for_the_whole_list(world: Host) -> None:
    rows = {n.name: n for n in virt.list_networks(world.ref)}
    assert [a.vm for a in rows["lan"].attachments] == ["web1"]
    assert rows["lan"].attachments[0].running
    assert [(a.vm, a.running) for a in rows["quiet"].attachments] == [("db", False)]


def test_it_shows_a_network_page_with_its_static_hosts(as_alice: Client, world: Host) -> None:
    page = as_alice.get(BASE + "lan/").content.decode()
    assert "lan.test" in page and "printer" in page and "10.251.1.9" in page
    assert 'action="/hosts/world/networks/lan/hosts/add/"' in page


def test_it_hides_networks_from_a_user_without_grants(as_bob: Client, world: Host) -> None:
    assert as_bob.get(BASE).status_code == 404
    assert as_bob.get(BASE + "lan/").status_code == 404
    assert as_bob.post(BASE + "lan/stop/").status_code == 404
    assert summary(world, "lan").active


@pytest.mark.parametrize(
    "path", ["lan/stop/", "lan/start/", "lan/autostart-on/", "lan/delete/", "lan/hosts/add/",
             "lan/hosts/remove/", "lan/restart/"]
)  # fmt: skip
def test_it_rejects_get_for_every_change(as_alice: Client, world: Host, path: str) -> None:
    assert as_alice.get(BASE + path).status_code == 405


def test_it_stops_starts_and_sets_autostart(as_alice: Client, world: Host) -> None:
    assert as_alice.post(BASE + "quiet/stop/").status_code == 302
    assert not summary(world, "quiet").active
    r = as_alice.post(BASE + "quiet/start/", {"view": "row"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and 'data-name="quiet" data-state="active"' in r.content.decode()
    as_alice.post(BASE + "quiet/autostart-on/")
    assert summary(world, "quiet").autostart
    actions = list(audit_entries().order_by("id").values_list("action", "outcome", "object_name"))
    assert actions == [
        ("network-stop", "ok", "quiet"),
        ("network-start", "ok", "quiet"),
        ("network-autostart-on", "ok", "quiet"),
    ]


def test_it_refuses_to_delete_a_network_a_running_vm_uses_and_names_it(
    as_alice: Client, world: Host
) -> None:
    confirm = as_alice.get(BASE + "lan/delete/confirm/").content.decode()
    assert "Running VMs use it: web1" in confirm
    r = as_alice.post(BASE + "lan/delete/", {"confirm": "lan"})
    assert r.status_code == 409 and "web1" in r.content.decode()
    assert "lan" in names(world)
    entry = audit_entries().get()
    assert (entry.action, entry.outcome) == ("network-delete", "error") and "web1" in entry.message


def test_it_deletes_after_confirmation_only(as_alice: Client, world: Host) -> None:
    r = as_alice.post(BASE + "quiet/delete/")
    assert r.status_code == 302 and r["Location"].endswith("/quiet/delete/confirm/")
    assert "quiet" in names(world)
    assert as_alice.post(BASE + "quiet/delete/", {"confirm": "quiet"}).status_code == 302
    assert "quiet" not in names(world)  # db is shut off: allowed


NAT = {"mode": "nat", "ipv4_address": "10.251.9.1/24", "start": "on"}


def dhcp(start: str, end: str) -> dict[str, str]:
    return {"ipv4_dhcp_start": start, "ipv4_dhcp_end": end}


def create(client: Client, **data: str) -> tuple[int, str]:
    r = client.post(BASE + "new/", {**NAT, **data})
    return r.status_code, r.content.decode()


def field_error(page: str, field: str) -> bool:
    """Is there an error message next to `field`?"""
    start = page.find(f'data-field="{field}"')
    return start >= 0 and 'class="field-error"' in page[start : page.find("</div>\n</div>", start)]


def test_it_creates_a_nat_network_with_dhcp_and_goes_to_its_page(
    as_alice: Client, world: Host
) -> None:
    r = as_alice.post(
        BASE + "new/",
        {**NAT, "name": "made", "ipv4_dhcp_start": "10.251.9.100", "ipv4_dhcp_end": "10.251.9.150",
         "domain": "made.test"},
    )  # fmt: skip
    assert r.status_code == 302 and r["Location"] == BASE + "made/"
    made = summary(world, "made")
    assert made.active and made.subnets[0].dhcp == (("10.251.9.100", "10.251.9.150"),)
    assert made.domain == "made.test"
    entry = audit_entries().get()
    assert (entry.action, entry.outcome, entry.object_uuid) == ("network-create", "ok", made.uuid)


@pytest.mark.parametrize("name", ["with space", 'it\'s "quoted"', "ünïcödé-сеть", "x" * 200])
def test_it_accepts_names_libvirt_accepts(as_alice: Client, world: Host, name: str) -> None:
    status, page = create(as_alice, name=name)
    assert status == 302, page
    assert name in names(world)


@pytest.mark.parametrize(
    "name", ["a/b", "..", ".", "x" * 300, "", " lead", "new", "lan", "nul\x00byte", "tab\there"]
)
def test_it_refuses_bad_names_next_to_the_field_and_makes_nothing(
    as_alice: Client, world: Host, name: str
) -> None:
    before = names(world)
    status, page = create(as_alice, name=name)
    assert status == 400
    assert field_error(page, "name"), page
    assert names(world) == before
    entry = audit_entries().get()
    assert (entry.action, entry.outcome) == ("network-create", "error")
    assert entry.message.startswith("name:")


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"ipv4_address": "10.251.9.1"}, "ipv4_address", "prefix"),
        ({"ipv4_address": "10.251.9.300/24"}, "ipv4_address", "not an address"),
        ({"ipv4_address": "banana/24"}, "ipv4_address", "not an address"),
        ({"ipv4_address": "10.251.9.0/24"}, "ipv4_address", "subnet&#x27;s own address"),
        ({"ipv4_address": "10.251.9.1/31"}, "ipv4_address", "too small"),
        ({"ipv4_address": "fd00::1/64"}, "ipv4_address", "IPv4"),
        ({"ipv4_address": "10.251.1.200/25"}, "ipv4_address", "network “lan”"),
        ({"ipv4_address": "10.250.0.1/15"}, "ipv4_address", "overlaps the subnet"),
        ({"ipv4_address": "10.251.200.1/24"}, "ipv4_address", "interface eth1"),
        (dhcp("10.251.8.10", "10.251.9.20"), "ipv4_dhcp_start", "not a host address"),
        (dhcp("10.251.9.0", "10.251.9.20"), "ipv4_dhcp_start", "not a host address"),
        (dhcp("10.251.9.1", "10.251.9.20"), "ipv4_dhcp_start", "gateway"),
        (dhcp("10.251.9.50", "10.251.9.20"), "ipv4_dhcp_start", "ends before"),
        ({"ipv4_dhcp_start": "10.251.9.50"}, "ipv4_dhcp_end", "both ends"),
        ({**dhcp("10.251.9.5", "10.251.9.6"), "ipv4_address": ""}, "ipv4_address", "needs the"),
        ({"ipv4_address": ""}, "ipv4_address", "needs an IPv4 or IPv6"),
        ({"ipv6_address": "fd00:251:9::/64"}, "ipv6_address", "subnet&#x27;s own address"),
        ({"domain": "not a domain"}, "domain", "DNS domain"),
        ({"bridge": "a-bridge-name-far-too-long"}, "bridge", "15"),
        ({"bridge": "virbr51"}, "bridge", "network “lan”"),
        ({"mode": "bridge", "bridge": ""}, "bridge", "Choose"),
        ({"mode": "bridge", "bridge": "br-none"}, "bridge", "no interface"),
        ({"mode": "macvtap", "device": "eth9"}, "device", "no interface"),
    ],
)  # fmt: skip
def test_it_refuses_bad_addresses_next_to_the_field_and_makes_nothing(
    as_alice: Client, world: Host, data: dict[str, str], field: str, says: str | None
) -> None:
    before = names(world)
    status, page = create(as_alice, name="refused", **data)
    assert status == 400, page
    assert field_error(page, field), page
    assert says in page
    assert names(world) == before
    assert audit_entries().get().outcome == "error"


def test_it_creates_a_macvtap_network_on_a_device_of_the_host(
    as_alice: Client, world: Host
) -> None:
    status, page = create(as_alice, name="tap", mode="macvtap", device="eth1", macvtap_mode="vepa")
    assert status == 302, page
    tap = summary(world, "tap")
    assert (tap.mode, tap.device) == ("vepa", "eth1")


def test_the_form_lists_the_hosts_interfaces_and_taken_subnets(
    as_alice: Client, world: Host
) -> None:
    page = as_alice.get(BASE + "new/").content.decode()
    assert "gateway address of the network" in page
    assert "eth1" in page and "10.251.1.0/24" in page and "(lan)" in page


def test_it_adds_and_removes_a_static_host(as_alice: Client, world: Host) -> None:
    r = as_alice.post(
        BASE + "lan/hosts/add/",
        {"mac": "52:54:00:AB:CD:EF", "ip": "10.251.1.50", "name": "web2"},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200 and "52:54:00:ab:cd:ef" in r.content.decode()
    hosts = summary(world, "lan").subnets[0].hosts
    assert virt.StaticHost("52:54:00:ab:cd:ef", "10.251.1.50", "web2") in hosts
    r = as_alice.post(BASE + "lan/hosts/remove/", {"mac": "52:54:00:ab:cd:ef", "ip": "10.251.1.50"})
    assert r.status_code == 302
    assert [h.mac for h in summary(world, "lan").subnets[0].hosts] == ["52:54:00:00:00:09"]
    actions = list(audit_entries().order_by("id").values_list("action", "outcome"))
    assert actions == [("network-host-add", "ok"), ("network-host-remove", "ok")]


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"mac": "52:54:00:ab:cd", "ip": "10.251.1.50"}, "mac", "looks like"),
        ({"mac": "zz:54:00:ab:cd:ef", "ip": "10.251.1.50"}, "mac", "looks like"),
        ({"mac": "01:00:5e:00:00:01", "ip": "10.251.1.50"}, "mac", "multicast"),
        ({"mac": "52:54:00:ab:cd:ef", "ip": "10.251.2.50"}, "ip", "none of the network"),
        ({"mac": "52:54:00:ab:cd:ef", "ip": "10.251.1.1"}, "ip", "gateway"),
        ({"mac": "52:54:00:ab:cd:ef", "ip": "10.251.1.255"}, "ip", "not a host address"),
        ({"mac": "52:54:00:ab:cd:ef", "ip": "10.251.1.9"}, "ip", "Already reserved"),
        ({"mac": "52:54:00:00:00:09", "ip": "10.251.1.60"}, "ip", "Already reserved"),
        ({"mac": "52:54:00:ab:cd:ef", "ip": "ten"}, "ip", "not an IP address"),
        ({"mac": "52:54:00:ab:cd:ef", "ip": "10.251.1.61", "name": "bad name"}, "name", "letters"),
    ],
)  # fmt: skip
def test_it_refuses_bad_static_hosts_next_to_the_field(
    as_alice: Client, world: Host, data: dict[str, str], field: str, says: str
) -> None:
    r = as_alice.post(BASE + "lan/hosts/add/", data, HTTP_HX_REQUEST="true")
    page = r.content.decode()
    assert r.status_code == 400 and field_error(page, field) and says in page, page
    assert len(summary(world, "lan").subnets[0].hosts) == 1
    assert audit_entries().get().outcome == "error"


def test_an_edit_shows_its_diff_first_and_defines_only_when_applied(
    as_alice: Client, world: Host
) -> None:
    virt.run_op(world.ref, "lan", virt.Op.STOP)  # the test driver shows a running one's old XML
    data = {"mode": "route", "ipv4_address": "10.251.1.1/24", "ipv4_dhcp_start": "10.251.1.20",
            "ipv4_dhcp_end": "10.251.1.30", "domain": "lan.test"}  # fmt: skip
    r = as_alice.post(BASE + "lan/edit/", {**data, "preview": "1"}, HTTP_HX_REQUEST="true")
    page = r.content.decode()
    assert r.status_code == 200 and "+  &lt;forward mode=&#x27;route&#x27;/&gt;" in page
    assert summary(world, "lan").mode == "nat"  # nothing defined yet
    r = as_alice.post(BASE + "lan/edit/", {**data, "apply": "1"})
    assert r.status_code == 302
    lan = summary(world, "lan")
    assert lan.mode == "route" and lan.subnets[0].dhcp == (("10.251.1.20", "10.251.1.30"),)
    entry = audit_entries().get()
    assert entry.action == "network-edit" and "+      <range start='10.251.1.20'" in entry.diff


def test_an_edit_of_a_running_network_says_what_waits_for_a_restart(
    as_alice: Client, world: Host
) -> None:
    data = {"mode": "isolated", "ipv4_address": "10.251.2.1/24", "domain": "quiet.test"}
    preview = as_alice.post(BASE + "quiet/edit/", {**data, "preview": "1"}).content.decode()
    assert 'data-change="restart" data-what="domain"' in preview
    assert 'data-change="live"' not in preview
    r = as_alice.post(BASE + "quiet/edit/", data, follow=True)
    assert "It applies when the network restarts" in r.content.decode()
    entry = audit_entries().get()
    assert "+  <domain name='quiet.test'/>" in entry.diff
    assert entry.message == "applied live: 0; waiting for a restart: 1"


def test_an_edit_may_keep_its_own_subnet_but_not_take_anothers(
    as_alice: Client, world: Host
) -> None:
    r = as_alice.post(BASE + "quiet/edit/", {"mode": "isolated", "ipv4_address": "10.251.1.5/24"})
    assert r.status_code == 400 and "network “lan”" in r.content.decode()
    assert audit_entries().get().outcome == "error"


def test_the_reader_gives_the_host_facts_the_form_checks_against(world: Host) -> None:
    facts = virt.host_networking(HostRef(world.slug, world.uri))
    assert {n for n, _s in facts.networks} == {"lan", "quiet"}
    assert [(d, str(a)) for d, a in facts.addresses] == [("eth1", "10.251.200.5/24")]
    assert facts.names == {"lan", "quiet"}


def test_a_running_networks_own_bridge_address_is_no_collision() -> None:
    import ipaddress

    from networks.forms import check_collisions

    facts = virt.HostNetworking(
        networks=(("lan", ipaddress.ip_network("10.251.1.0/24")),),
        addresses=(("virbr51", ipaddress.ip_interface("10.251.1.1/24")),),
        network_bridges=(("lan", "virbr51"),),
    )
    check_collisions(ipaddress.ip_interface("10.251.1.1/24"), facts, own="lan")  # no error


def test_a_vm_page_can_reserve_the_address_it_shows_and_goes_back_to_it(
    as_alice: Client, world: Host
) -> None:
    data = {"mac": "52:54:00:00:00:01", "ip": "10.251.1.77/24", "vm": "web1"}
    r = as_alice.post(BASE + "lan/hosts/add/", data)
    assert r.status_code == 302 and r["Location"] == "/hosts/world/domains/web1/devices/"
    hosts = summary(world, "lan").subnets[0].hosts
    assert virt.StaticHost("52:54:00:00:00:01", "10.251.1.77", "") in hosts


def define(host: Host, text: str) -> None:
    """Define a network in the world vmdash's own connection sees."""
    pool().call(host.uri, lambda conn: conn.networkDefineXML(text), "define")


BRIDGED = """<network><name>{name}</name><forward mode='bridge'/><bridge name='ovsbr0'/>
<virtualport type='openvswitch'/></network>"""


def test_an_ovs_network_is_edited_through_the_same_form(as_alice: Client, world: Host) -> None:
    define(world, BRIDGED.format(name="ovs"))  # defined, not started
    form = as_alice.get(BASE + "ovs/edit/").content.decode()
    assert 'data-family="bridge"' in form and 'name="portgroups"' in form
    assert 'name="ipv4_address"' not in form  # a bridge's addresses are the LAN's business
    data = {"bridge": "ovsbr0", "switch": "openvswitch", "portgroups": "web 10 default\ndb 20"}
    preview = as_alice.post(BASE + "ovs/edit/", {**data, "preview": "1"}).content.decode()
    assert "applies when the network starts" in preview
    assert preview.count('data-what="portgroup"') == 2
    r = as_alice.post(BASE + "ovs/edit/", data, follow=True)
    assert "It applies when the network starts" in r.content.decode()
    assert summary(world, "ovs").portgroups == (
        virt.Portgroup("web", (10,), True),
        virt.Portgroup("db", (20,), False),
    )
    page = r.content.decode()
    assert 'data-portgroup="web"' in page and "VLAN" in page


def test_a_bridge_networks_vlan_needs_open_vswitch(as_alice: Client, world: Host) -> None:
    define(world, BRIDGED.format(name="ovs2"))
    data = {"bridge": "ovsbr0", "switch": "linux", "portgroups": "web 10"}
    r = as_alice.post(BASE + "ovs2/edit/", data)
    assert r.status_code == 400 and "only to Open vSwitch" in r.content.decode()
    assert summary(world, "ovs2").portgroups == ()
    assert audit_entries().get().outcome == "error"


def test_a_restart_needs_the_right_to_manage_networks_and_a_running_network(
    as_alice: Client, world: Host
) -> None:
    from tests.unit.test_grants import grant, logged_in, person

    viewer = person("vera")
    grant("viewer", user=viewer, scope="host", host="world")
    as_vera = logged_in(viewer)
    assert as_vera.get(BASE + "lan/").status_code == 200
    assert as_vera.post(BASE + "lan/restart/").status_code == 403
    assert as_vera.get(BASE + "lan/edit/").status_code == 403
    assert as_alice.post(BASE + "lan/restart/").status_code == 302
    assert summary(world, "lan").active
    virt.run_op(world.ref, "quiet", virt.Op.STOP)
    r = as_alice.post(BASE + "quiet/restart/")
    assert r.status_code == 409 and "only a running, persistent network" in r.content.decode()
    actions = list(audit_entries().order_by("id").values_list("action", "outcome"))
    assert actions == [
        ("network-restart", "denied"),
        ("network-restart", "ok"),
        ("network-restart", "error"),
    ]
