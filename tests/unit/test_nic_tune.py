"""What a network interface connects to (virtual network, host bridge, Open
vSwitch bridge, macvtap), its model and MAC, from the Devices tab: what
libvirt's definition holds after, refusals with reasons. On libvirt's test
driver (web1: one NIC, 52:54:00:00:00:01, on network default, virtio)."""

from __future__ import annotations

import libvirt
import pytest
from django.test import Client

from tests.conftest import TESTNODE_URI, audit_entries
from vmdash.models import Host
from vmdash.virt import nics
from vmdash.virt.connection import pool
from vmdash.virt.errors import InvalidInput
from vmdash.virt.xml.domain import DomainXML

pytestmark = pytest.mark.django_db
URL = "/hosts/lab/domains/web1/nics/tune/"
MAC = "52:54:00:00:00:01"


def defined() -> tuple[str | None, ...]:
    dom = pool().get(TESTNODE_URI).lookupByName("web1")
    (nic,) = DomainXML.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).interfaces
    source = nic.source_network or nic.source_bridge or nic.source_dev
    return nic.type, source, nic.source_mode, nic.virtualport, nic.model, nic.mac


def post(client: Client, **data: str) -> str:
    sent = {"mac": MAC, "kind": "network", "source": "default", "model": "virtio", **data}
    return client.post(URL, sent, follow=True).content.decode()


def test_each_kind_of_connection_lands_in_the_definition(as_alice: Client, lab: Host) -> None:
    page = post(as_alice, kind="bridge", source="br0", model="e1000e")
    assert "applies when the VM next starts" in page
    assert defined() == ("bridge", "br0", None, None, "e1000e", MAC)
    post(as_alice, kind="ovs", source="ovsbr0")
    assert defined() == ("bridge", "ovsbr0", None, "openvswitch", "virtio", MAC)
    post(as_alice, kind="direct", source="eth0", mode="vepa")
    assert defined() == ("direct", "eth0", "vepa", None, "virtio", MAC)
    post(as_alice)  # back on its virtual network
    assert defined() == ("network", "default", None, None, "virtio", MAC)
    assert audit_entries().filter(action="nic-tune", outcome="ok").count() == 4


def test_a_new_mac(as_alice: Client, lab: Host) -> None:
    post(as_alice, new_mac="52:54:00:AA:BB:CC")
    assert defined()[-1] == "52:54:00:aa:bb:cc"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"new_mac": "53:54:00:00:00:02"}, "That is a multicast address"),
        ({"kind": "bridge", "source": "br 0"}, "A host interface name has at most 15"),
        ({"kind": "teleport"}, "Choose what the interface connects to"),
        ({"source": ""}, "Name the network, bridge or device"),
        ({"kind": "direct", "source": "eth0", "mode": "sideways"}, "Choose a macvtap mode"),
        ({"mac": "52:54:00:99:99:99"}, "The VM has no network interface 52:54:00:99:99:99."),
    ],
)
def test_what_cannot_be_is_refused_with_its_reason(
    as_alice: Client, lab: Host, data: dict[str, str], reason: str
) -> None:
    before = defined()
    assert reason in post(as_alice, **data)
    assert defined() == before
    assert audit_entries().get(action="nic-tune").outcome == "error"


def test_two_nics_may_not_share_a_mac() -> None:
    doc = DomainXML.parse(
        "<domain type='kvm'><name>x</name><devices>"
        "<interface type='network'><mac address='52:54:00:00:00:01'/><source network='a'/>"
        "<virtualport type='openvswitch'/></interface>"
        "<interface type='network'><mac address='52:54:00:00:00:02'/><source network='b'/>"
        "</interface></devices></domain>"
    )
    with pytest.raises(InvalidInput, match="Another interface"):
        nics._tune(doc, "52:54:00:00:00:02", nics.NicTuning("network", "b", "virtio",
                                                             "52:54:00:00:00:01"))  # fmt: skip
    # Same kind: a network's own virtualport stays; only the model changes.
    nics._tune(doc, "52:54:00:00:00:01", nics.NicTuning("network", "a", "e1000", ""))
    assert "<virtualport type='openvswitch'/>" in doc.tostring()


def test_bob_may_not(as_bob: Client, lab: Host) -> None:
    assert as_bob.post(URL, {"mac": MAC, "kind": "bridge", "source": "br0"}).status_code == 404
    assert defined()[0] == "network"
