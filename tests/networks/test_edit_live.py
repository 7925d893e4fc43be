"""Edits of running networks on the real libvirtd: what libvirt can change live is
changed live and in the definition, the rest waits for a restart the page offers.

What happened is read with `virsh` (live and --inactive), the network's dnsmasq
PID file and its bridge's interface index (a restart makes a new bridge).
Networks are vmdash-t-net-* on 10.251.42.0/24 to 10.251.48.0/24.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import libvirt
import pytest
from django.test import Client
from lxml import etree

from tests.conftest import audit_entries
from tests.networks.conftest import NET_PREFIX
from tests.networks.test_real_libvirtd import Conn, define_nat
from tests.realhost import SYSTEM_URI
from vmdash.models import Host

pytestmark = [pytest.mark.django_db, pytest.mark.libvirtd]
BASE = "/hosts/local/networks/"
RUN = Path("/run/libvirt/network")


def virsh_xml(name: str, inactive: bool = False) -> etree._Element:
    args = ["virsh", "-c", SYSTEM_URI, "net-dumpxml", name, *(["--inactive"] if inactive else [])]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        listed = subprocess.run(["virsh", "-c", SYSTEM_URI, "net-list", "--all", "--name"],
                                capture_output=True, text=True).stdout.split()  # fmt: skip
        pytest.fail(f"virsh: {out.stderr.strip()}; net-list: {listed}")
    return etree.fromstring(out.stdout.encode())


def dnsmasq_pid(name: str) -> int:
    return int((RUN / f"{name}.pid").read_text())


def ifindex(dev: str) -> int:
    out = subprocess.run(["ip", "-j", "link", "show", dev], capture_output=True, check=True)
    return int(json.loads(out.stdout)[0]["ifindex"])


def test_a_static_host_added_to_a_running_network_is_live_and_saved_without_a_restart(
    as_alice: Client, local: Host, real_networks: Conn
) -> None:
    name = f"{NET_PREFIX}livehost"
    net = define_nat(real_networks(), name, 47)
    pid, bridge = dnsmasq_pid(name), net.bridgeName()
    index = ifindex(bridge)
    r = as_alice.post(
        f"{BASE}{name}/hosts/add/", {"mac": "52:54:00:25:47:01", "ip": "10.251.47.10", "name": "h1"}
    )
    assert r.status_code == 302
    for inactive in (False, True):
        host = virsh_xml(name, inactive).find("ip/dhcp/host")
        assert host is not None and (host.get("mac"), host.get("ip")) == (
            "52:54:00:25:47:01",
            "10.251.47.10",
        )
    assert dnsmasq_pid(name) == pid  # dnsmasq re-read its hosts file: no restart
    assert ifindex(bridge) == index  # the same bridge: the network was not restarted
    assert "10.251.47.10" in (Path("/var/lib/libvirt/dnsmasq") / f"{name}.hostsfile").read_text()


def test_an_edit_changes_the_dhcp_range_live_and_saves_the_domain_for_a_restart(
    as_alice: Client, local: Host, real_networks: Conn
) -> None:
    name = f"{NET_PREFIX}liveedit"
    net = define_nat(real_networks(), name, 42)
    bridge = net.bridgeName()
    index = ifindex(bridge)
    data = {"mode": "nat", "ipv4_address": "10.251.42.1/24", "ipv4_dhcp_start": "10.251.42.20",
            "ipv4_dhcp_end": "10.251.42.40", "domain": "t42.internal"}  # fmt: skip
    preview = as_alice.post(f"{BASE}{name}/edit/", {**data, "preview": "1"}).content.decode()
    assert preview.count('data-change="live" data-what="ip-dhcp-range"') == 2  # delete, add
    assert 'data-change="restart" data-what="domain"' in preview
    assert virsh_xml(name).find("ip/dhcp/range").get("start") == "10.251.42.100"  # not yet

    page = as_alice.post(f"{BASE}{name}/edit/", data, follow=True).content.decode()
    assert "2 change(s) applied to the running network; 1 wait for a restart." in page
    for inactive in (False, True):  # the range: live and saved
        assert dict(virsh_xml(name, inactive).find("ip/dhcp/range").attrib) == {
            "start": "10.251.42.20",
            "end": "10.251.42.40",
        }
    assert virsh_xml(name).find("domain") is None  # the domain waits ...
    assert virsh_xml(name, inactive=True).find("domain").get("name") == "t42.internal"
    assert ifindex(bridge) == index  # ... and the network was not restarted
    assert "Waiting for a restart" in page and 'data-what="domain"' in page
    assert 'data-what="ip-dhcp-range"' not in page[page.find("Waiting for a restart") :]

    r = as_alice.post(f"{BASE}{name}/restart/")
    assert r.status_code == 302
    assert virsh_xml(name).find("domain").get("name") == "t42.internal"
    assert real_networks().networkLookupByName(name).isActive()
    assert "Waiting for a restart" not in as_alice.get(f"{BASE}{name}/").content.decode()
    entries = list(audit_entries().order_by("id").values_list("action", "outcome", "message"))
    assert entries == [
        ("network-edit", "ok", "applied live: 2; waiting for a restart: 1"),
        ("network-restart", "ok", ""),
    ]


def test_an_edit_libvirt_refuses_live_takes_back_what_it_had_applied(
    as_alice: Client, local: Host, real_networks: Conn
) -> None:
    """The edit moves the range: delete the old one (done), add the new one, which
    libvirt refuses because the running network has it already (the test added it
    there behind vmdash's back). The delete is taken back; nothing is defined."""
    name = f"{NET_PREFIX}liveundo"
    net = define_nat(real_networks(), name, 43)
    config = net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)
    net.update(
        libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
        libvirt.VIR_NETWORK_SECTION_IP_DHCP_RANGE,
        0,
        "<range start='10.251.43.10' end='10.251.43.40'/>",
        libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE,
    )
    data = {"mode": "nat", "ipv4_address": "10.251.43.1/24", "ipv4_dhcp_start": "10.251.43.10",
            "ipv4_dhcp_end": "10.251.43.40", "domain": "t43.internal"}  # fmt: skip
    r = as_alice.post(f"{BASE}{name}/edit/", data)
    assert r.status_code >= 400 and 'class="alert alert-error"' in r.content.decode()
    ranges = {(x.get("start"), x.get("end")) for x in virsh_xml(name).iterfind("ip/dhcp/range")}
    assert ranges == {("10.251.43.100", "10.251.43.150"), ("10.251.43.10", "10.251.43.40")}
    assert net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE) == config  # not the domain either
    assert audit_entries().get().outcome == "error"


def test_a_dns_name_added_to_a_running_network_is_answered_without_a_restart(
    as_alice: Client, local: Host, real_networks: Conn
) -> None:
    name = f"{NET_PREFIX}livedns"
    net = define_nat(real_networks(), name, 48)
    pid, index = dnsmasq_pid(name), ifindex(net.bridgeName())
    data = {"mode": "nat", "ipv4_address": "10.251.48.1/24", "ipv4_dhcp_start": "10.251.48.100",
            "ipv4_dhcp_end": "10.251.48.150",
            "dns_hosts": "10.251.48.7 printer printer.lab"}  # fmt: skip
    page = as_alice.post(f"{BASE}{name}/edit/", data, follow=True).content.decode()
    assert "Applied to the running network" in page and 'data-ip="10.251.48.7"' in page
    for inactive in (False, True):
        host = virsh_xml(name, inactive).find("dns/host")
        assert host.get("ip") == "10.251.48.7"
        assert [h.text for h in host.iterfind("hostname")] == ["printer", "printer.lab"]
    addn = Path("/var/lib/libvirt/dnsmasq") / f"{name}.addnhosts"
    assert "10.251.48.7\tprinter\tprinter.lab" in addn.read_text().replace(" ", "\t")
    assert (dnsmasq_pid(name), ifindex(net.bridgeName())) == (pid, index)
