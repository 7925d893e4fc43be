"""Golden files for the networks the create form builds, one per mode, and an edit.

tests/data/xml/network-<case>.xml is the exact text `build_xml` writes for the
spec below; every one passes libvirt's own schema (virt-xml-validate). To
review a deliberate change, regenerate with VMDASH_REGEN_GOLDEN=1 and read the
diff of the files.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from networks.forms import NetworkEditForm
from networks.ops import edit_change
from vmdash.virt.networks import HostNetworking, IpSpec, NetworkSpec, build_xml
from vmdash.virt.xml.network import ForwardMode, NetworkXML
from vmdash.virt.xml.network_changes import Command, Section, plan

DATA = Path(__file__).parent.parent / "data" / "xml"
V4 = IpSpec(ipaddress.ip_interface("10.251.7.1/24"), "10.251.7.100", "10.251.7.199")
V6 = IpSpec(ipaddress.ip_interface("fd00:251:7::1/64"), "fd00:251:7::100", "fd00:251:7::1ff")

SPECS = {
    "nat": NetworkSpec("vmdash-nat", "nat", ipv4=V4, ipv6=V6, domain="lab.internal"),
    "route": NetworkSpec("vmdash-route", "route", bridge="vmdbr7", ipv4=V4),
    "open": NetworkSpec("vmdash-open", "open", ipv4=IpSpec(V4.gateway)),
    "isolated": NetworkSpec("vmdash-isolated", "isolated"),
    "isolated-v6": NetworkSpec("vmdash-isolated-v6", "isolated", ipv6=V6),
    "bridge": NetworkSpec("vmdash-bridge", "bridge", bridge="br0"),
    "macvtap": NetworkSpec(
        "vmdash-macvtap", "macvtap", device="eth0", macvtap_mode=ForwardMode.VEPA
    ),
    "openvswitch": NetworkSpec("vmdash-ovs", "openvswitch", bridge="ovsbr0"),
    "odd-name": NetworkSpec('it\'s <b>& "ünï"', "isolated"),
}


def validate(path: Path) -> None:
    tool = shutil.which("virt-xml-validate")
    assert tool, "virt-xml-validate is missing: install libvirt-clients"
    result = subprocess.run([tool, str(path), "network"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", sorted(SPECS))
def test_it_builds_each_mode_as_the_golden_file_says(case: str, tmp_path: Path) -> None:
    text = build_xml(SPECS[case]).tostring()
    golden = DATA / f"network-{case}.xml"
    if os.environ.get("VMDASH_REGEN_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    validate(golden)


def test_it_reads_back_what_it_built() -> None:
    doc = NetworkXML.parse(build_xml(SPECS["nat"]).tostring())
    assert doc.forward_mode == ForwardMode.NAT
    assert doc.domain == "lab.internal"
    v4, v6 = doc.ip_of(v6=False), doc.ip_of(v6=True)
    assert v4 is not None and v6 is not None
    assert str(v4.interface) == "10.251.7.1/24" and v6.family == "ipv6"
    assert [(r.start, r.end) for r in v4.ranges] == [("10.251.7.100", "10.251.7.199")]


def test_an_isolated_network_has_no_forward_element() -> None:
    doc = build_xml(SPECS["isolated"])
    assert doc.node.find("forward") is None
    assert doc.forward_mode == ForwardMode.ISOLATED


def test_it_edits_mode_ranges_and_domain_in_place_keeping_the_rest(tmp_path: Path) -> None:
    before = (DATA / "network-edit.in.xml").read_text()
    form = NetworkEditForm(
        {
            "mode": "route",
            "ipv4_address": "10.251.8.1/24",
            "ipv4_dhcp_start": "10.251.8.10",
            "ipv4_dhcp_end": "10.251.8.20",
            "domain": "",
        },
        facts=HostNetworking(),
        own_name="edited",
    )
    assert form.is_valid(), form.errors
    doc = NetworkXML.parse(before)
    edit_change(form)(doc)
    golden = DATA / "network-edit.expected.xml"
    if os.environ.get("VMDASH_REGEN_GOLDEN"):
        golden.write_text(doc.tostring())
    assert doc.tostring() == golden.read_text()
    validate(golden)
    assert "-  <domain name='old.lab'/>" in doc.diff()
    assert "<host mac='52:54:00:00:00:09'" in doc.tostring()  # not the form's business: kept


# Bridge, Open vSwitch and macvtap networks through the same edit form.

FACTS = HostNetworking(bridges=("br0",), devices=("eth0", "eth1", "eth2"), bridges_known=True)
EDITS = {
    "bridge": ("bridge", {"bridge": "ovsbr1", "switch": "openvswitch",
                          "portgroups": "web 10 default\ntrunk 20, 30"}),
    "ovs": ("bridge", {"bridge": "ovsbr0", "switch": "openvswitch",
                       "portgroups": "web 11 default\ndb 20\nnew 30"}),
    "macvtap": ("macvtap", {"macvtap_mode": "private", "devices": "eth0 eth2",
                            "portgroups": "plain\nguests"}),
}  # fmt: skip


def edited(case: str) -> tuple[NetworkXML, NetworkXML]:
    family, data = EDITS[case]
    form = NetworkEditForm(data, facts=FACTS, own_name=f"vmdash-{case}", family=family)
    assert form.is_valid(), form.errors
    before = NetworkXML.parse((DATA / f"network-edit-{case}.in.xml").read_text())
    after = NetworkXML.parse(before.tostring())
    edit_change(form)(after)
    return before, after


@pytest.mark.parametrize("case", sorted(EDITS))
def test_it_edits_bridge_ovs_and_macvtap_networks_as_the_golden_file_says(case: str) -> None:
    _before, after = edited(case)
    golden = DATA / f"network-edit-{case}.expected.xml"
    if os.environ.get("VMDASH_REGEN_GOLDEN"):
        golden.write_text(after.tostring())
    assert after.tostring() == golden.read_text()
    validate(golden)


def test_a_bridge_edit_keeps_other_tools_metadata_and_the_mtu() -> None:
    _before, after = edited("bridge")
    text = after.tostring()
    assert "kept by other tools" in text and "<mtu size='9000'/>" in text
    assert after.virtualport == "openvswitch"
    assert [(p.name, p.vlans, p.default) for p in after.portgroups] == [
        ("web", (10,), True),
        ("trunk", (20, 30), None),
    ]


def test_an_ovs_edit_changes_port_groups_in_place_and_all_of_it_applies_live() -> None:
    before, after = edited("ovs")
    assert "<inbound average='1000'" in after.tostring()  # the form does not show it: kept
    assert "<parameters interfaceid=" in after.tostring()
    changes = plan(before.node, after.node)
    assert all(c.live and c.section == Section.PORTGROUP for c in changes)
    assert sorted((c.command, c.xml.split("'")[1]) for c in changes) == [
        (Command.ADD, "new"),
        (Command.DELETE, "old"),
        (Command.MODIFY, "web"),
    ]
    assert changes[0].command == Command.DELETE  # deletes first


def test_a_macvtap_edit_adds_a_device_live_and_a_new_mode_waits_for_a_restart() -> None:
    before, after = edited("macvtap")
    changes = plan(before.node, after.node)
    live = {(c.section, c.command, c.xml) for c in changes if c.live}
    assert live == {
        (Section.FORWARD_INTERFACE, Command.DELETE, "<interface dev='eth1'/>"),
        (Section.FORWARD_INTERFACE, Command.ADD, "<interface dev='eth2'/>"),
        (Section.PORTGROUP, Command.ADD, "<portgroup name='guests'/>"),
    }
    assert not [c for c in changes if not c.live]  # same mode, same first device
    form = NetworkEditForm(
        {**EDITS["macvtap"][1], "macvtap_mode": "vepa"}, facts=FACTS, own_name="t", family="macvtap"
    )
    assert form.is_valid()
    again = NetworkXML.parse(before.tostring())
    edit_change(form)(again)
    deferred = plan(before.node, again.node)
    assert [c.what for c in deferred if not c.live] == ["forward-interface"] * 2 + ["forward"]


@pytest.mark.parametrize(
    ("family", "data", "field", "says"),
    [
        ("bridge", {"bridge": "br0", "switch": "linux", "portgroups": "web 10"}, "portgroups",
         "only to Open vSwitch"),
        ("bridge", {"bridge": "br9", "switch": "linux"}, "bridge", "no interface"),
        ("bridge", {"bridge": "a bridge", "switch": "openvswitch"}, "bridge", "15 letters"),
        ("bridge", {"bridge": "ovsbr0", "switch": "openvswitch", "portgroups": "a 4096"},
         "portgroups", "0 to 4095"),
        ("bridge", {"bridge": "ovsbr0", "switch": "openvswitch",
                    "portgroups": "a 1 default\nb 2 default"}, "portgroups", "Only one"),
        ("bridge", {"bridge": "ovsbr0", "switch": "openvswitch", "portgroups": "a 1\na 2"},
         "portgroups", "already used"),
        ("macvtap", {"macvtap_mode": "bridge", "devices": ""}, "devices", "Choose"),
        ("macvtap", {"macvtap_mode": "bridge", "devices": "eth0 eth7"}, "devices", "no interface"),
    ],
)  # fmt: skip
def test_the_edit_form_refuses_bad_bridges_devices_and_port_groups(
    family: str, data: dict[str, str], field: str, says: str
) -> None:
    form = NetworkEditForm(data, facts=FACTS, own_name="t", family=family)
    assert not form.is_valid()
    assert says in " ".join(form.errors[field]), form.errors


def test_an_ovs_network_ovs_does_not_list_may_still_be_named() -> None:
    """libvirt's interface list does not show OVS bridges: any valid name goes."""
    form = NetworkEditForm(
        {"bridge": "ovsbr7", "switch": "openvswitch"}, facts=FACTS, own_name="t", family="bridge"
    )
    assert form.is_valid(), form.errors


def test_dns_names_are_edited_by_address_and_apply_live() -> None:
    text = (
        "<network>\n  <name>d</name>\n  <forward mode='nat'/>\n"
        "  <ip address='10.251.9.1' prefix='24'/>\n</network>\n"
    )
    before = NetworkXML.parse(text)
    data = {"mode": "nat", "ipv4_address": "10.251.9.1/24",
            "dns_hosts": "10.251.9.5 printer printer.lab\n10.251.9.6 nas"}  # fmt: skip
    form = NetworkEditForm(data, facts=HostNetworking(), own_name="d")
    assert form.is_valid(), form.errors
    after = NetworkXML.parse(text)
    edit_change(form)(after)
    assert [(h.ip, h.names) for h in after.dns_hosts] == [
        ("10.251.9.5", ("printer", "printer.lab")),
        ("10.251.9.6", ("nas",)),
    ]
    changes = plan(before.node, after.node)
    assert [(c.live, c.section, c.command) for c in changes] == [
        (True, Section.DNS_HOST, Command.ADD),
        (True, Section.DNS_HOST, Command.ADD),
    ]
    bad = NetworkEditForm({**data, "dns_hosts": "10.251.9.300 x"}, facts=HostNetworking(),
                          own_name="d")  # fmt: skip
    assert not bad.is_valid() and "not an IP address" in str(bad.errors["dns_hosts"])


def test_an_edited_dns_host_passes_libvirts_schema(tmp_path: Path) -> None:
    doc = NetworkXML.parse(
        "<network>\n  <name>d</name>\n  <ip address='10.251.9.1' prefix='24'/>\n</network>\n"
    )
    doc.dns_hosts.add(ip="10.251.9.5").names = ("printer", "printer.lab")
    out = tmp_path / "net.xml"
    out.write_text(doc.tostring())
    validate(out)
