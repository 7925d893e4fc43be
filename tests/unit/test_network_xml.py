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
