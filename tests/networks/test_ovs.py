"""An Open vSwitch network on the real libvirtd and a real OVS: made and edited
through the pages, a port group added live, and a guest that names it gets its
VLAN tag on the OVS port (read back with ovs-vsctl, as an admin would).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import libvirt
import pytest
from django.test import Client
from lxml import etree

from tests.conftest import audit_entries
from tests.networks.conftest import NET_PREFIX
from tests.networks.test_edit_live import virsh_xml
from tests.networks.test_real_libvirtd import Conn
from tests.networks.test_real_libvirtd import guest_on as guest_on  # a fixture
from vmdash.models import Host

pytestmark = [pytest.mark.django_db, pytest.mark.libvirtd]
BASE = "/hosts/local/networks/"


def ovs(*args: str) -> str:
    out = subprocess.run(["ovs-vsctl", "--timeout=10", *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_an_ovs_network_gets_a_port_group_live_and_a_guest_gets_its_vlan_tag(
    as_alice: Client,
    local: Host,
    real_networks: Conn,
    ovs_bridge: Callable[[str], str],
    guest_on: Callable[..., str],
) -> None:
    bridge = ovs_bridge("vmdash-t-ovs1")
    name = f"{NET_PREFIX}ovsvlan"
    r = as_alice.post(BASE + "new/", {"name": name, "mode": "openvswitch", "bridge": bridge,
                                      "start": "on"})  # fmt: skip
    assert r.status_code == 302, r.content.decode()
    net = real_networks().networkLookupByName(name)
    assert net.isActive()

    data = {"bridge": bridge, "switch": "openvswitch", "portgroups": "web 10 default\ndb 20"}
    preview = as_alice.post(f"{BASE}{name}/edit/", {**data, "preview": "1"}).content.decode()
    assert preview.count('data-change="live" data-what="portgroup"') == 2
    assert 'data-change="restart"' not in preview
    page = as_alice.post(f"{BASE}{name}/edit/", data, follow=True).content.decode()
    assert "Applied to the running network" in page and "Waiting for a restart" not in page
    for inactive in (False, True):
        groups = {
            g.get("name"): [t.get("id") for t in g.iterfind("vlan/tag")]
            for g in virsh_xml(name, inactive).iterfind("portgroup")
        }
        assert groups == {"web": ["10"], "db": ["20"]}

    vm = guest_on(name, "52:54:00:25:50:01", portgroup="db")
    dom = real_networks().lookupByName(vm)
    target = etree.fromstring(dom.XMLDesc(0)).find("devices/interface/target").get("dev")
    assert target in ovs("list-ports", bridge).split()
    assert ovs("get", "port", target, "tag") == "20"
    assert ovs("get", "interface", target, "external_ids:attached-mac") == '"52:54:00:25:50:01"'
    actions = list(audit_entries().order_by("id").values_list("action", "outcome"))
    assert actions == [("network-create", "ok"), ("network-edit", "ok")]


def test_a_linux_bridge_network_becomes_an_ovs_one_at_its_next_start(
    as_alice: Client, local: Host, real_networks: Conn, ovs_bridge: Callable[[str], str]
) -> None:
    bridge = ovs_bridge("vmdash-t-ovs2")
    subprocess.run(["ip", "link", "add", "vmdt-br2", "type", "bridge"], check=True)
    try:
        name = f"{NET_PREFIX}tobr"
        r = as_alice.post(BASE + "new/", {"name": name, "mode": "bridge", "bridge": "vmdt-br2",
                                          "start": "on"})  # fmt: skip
        assert r.status_code == 302, r.content.decode()
        data = {"bridge": bridge, "switch": "openvswitch", "portgroups": "web 10"}
        page = as_alice.post(f"{BASE}{name}/edit/", data, follow=True).content.decode()
        assert "Waiting for a restart" in page
        assert 'data-what="bridge"' in page and 'data-what="virtualport"' in page
        assert virsh_xml(name).find("virtualport") is None  # still the Linux bridge
        assert as_alice.post(f"{BASE}{name}/restart/").status_code == 302
        live = virsh_xml(name)
        assert live.find("bridge").get("name") == bridge
        assert live.find("virtualport").get("type") == "openvswitch"
        assert real_networks().networkLookupByName(name).isActive()
    finally:
        subprocess.run(["ip", "link", "del", "vmdt-br2"], capture_output=True)
        try:
            net = real_networks().networkLookupByName(f"{NET_PREFIX}tobr")
            net.destroy()
            net.undefine()
        except libvirt.libvirtError:
            pass
