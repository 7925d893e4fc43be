"""A disk's bus, cache, I/O and discard mode, from the Devices tab: what libvirt
holds after the change (its inactive definition), the refusals with their
reasons, the audit entry. On libvirt's test driver (web1: vda, qcow2, virtio)."""

from __future__ import annotations

import libvirt
import pytest
from django.test import Client

from domains.models import DomainVersion
from tests.conftest import TESTNODE_URI, audit_entries
from vmdash.models import Host
from vmdash.virt import disks
from vmdash.virt.connection import pool
from vmdash.virt.errors import InvalidInput
from vmdash.virt.xml.domain import DomainXML

pytestmark = pytest.mark.django_db
URL = "/hosts/lab/domains/web1/disks/tune/"


def defined_vda(target: str = "vda") -> tuple[str | None, ...]:
    dom = pool().get(TESTNODE_URI).lookupByName("web1")
    doc = DomainXML.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    disk = next(d for d in doc.disks if d.target_dev == target)
    return disk.target_bus, disk.driver_cache, disk.driver_io, disk.driver_discard


def post(client: Client, **data: str) -> object:
    return client.post(URL, {"target": "vda", "bus": "virtio", **data}, follow=True)


def test_cache_io_and_discard_land_in_the_definition(as_alice: Client, lab: Host) -> None:
    page = post(as_alice, cache="none", io="native", discard="unmap")
    assert "applies when the VM next starts" in page.content.decode()
    assert defined_vda() == ("virtio", "none", "native", "unmap")  # libvirt says so
    entry = audit_entries().get(action="disk-tune")
    assert entry.outcome == "ok" and "cache none" in entry.message
    assert DomainVersion.objects.filter(name="web1", username="alice").exists()
    # Back to the defaults: the attributes go.
    post(as_alice)
    assert defined_vda() == ("virtio", None, None, None)


def test_a_new_bus_renames_the_disk_and_says_so(as_alice: Client, lab: Host) -> None:
    page = post(as_alice, bus="sata").content.decode()
    assert "On its new bus it is sda (was vda)" in page
    assert defined_vda("sda")[0] == "sata"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            {"cache": "writeback", "io": "native"},
            "Native I/O needs the cache mode none or directsync.",
        ),
        ({"bus": "usb-stick"}, "Choose a bus"),
        ({"cache": "fastest"}, "Choose the cache, I/O and discard modes from the lists."),
        ({"target": "vdz"}, "The VM has no disk vdz."),
    ],
)
def test_what_cannot_be_is_refused_with_its_reason(
    as_alice: Client, lab: Host, data: dict[str, str], reason: str
) -> None:
    before = defined_vda()
    page = post(as_alice, **data).content.decode()
    assert reason in page
    assert defined_vda() == before
    assert audit_entries().get(action="disk-tune").outcome == "error"


def test_an_address_of_the_old_bus_goes_with_it() -> None:
    doc = DomainXML.parse(
        "<domain type='kvm'><name>x</name><devices>"
        "<disk type='file' device='disk'><source file='/x.qcow2'/><target dev='vda' bus='virtio'/>"
        "<address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/></disk>"
        "<disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>"
        "</devices></domain>"
    )
    assert disks._tune(doc, "vda", disks.Tuning("sata")) == "sdb"
    assert "<address" not in doc.tostring()
    with pytest.raises(InvalidInput, match="virtio"):
        disks._tune(doc, "sda", disks.Tuning("virtio"))


def test_bob_may_not(as_bob: Client, lab: Host) -> None:
    assert as_bob.post(URL, {"target": "vda", "bus": "sata"}).status_code == 404
    assert defined_vda()[0] == "virtio"
