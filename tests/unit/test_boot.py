"""Boot order, boot menu, title and description on the Hardware tab, on
libvirt's test driver (web1: a disk vda, a NIC, <os><boot dev='hd'/>): what
libvirt stores, and what is refused."""

from __future__ import annotations

import libvirt
import lxml.html
import pytest
from django.test import Client

from tests.conftest import TESTNODE_URI
from vmdash.models import AuditEntry, Host
from vmdash.virt import boot
from vmdash.virt.connection import pool
from vmdash.virt.xml.domain import DomainXML

pytestmark = pytest.mark.django_db

URL = "/hosts/lab/domains/web1/hardware/"
NIC = "nic:52:54:00:00:00:01"


def defined() -> DomainXML:
    dom = pool().get(TESTNODE_URI).lookupByName("web1")
    return DomainXML.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def test_the_network_boots_first_then_the_disk_with_a_menu_and_a_new_title(
    lab: Host, as_alice: Client
) -> None:
    page = lxml.html.fromstring(as_alice.get(URL).content)
    keys = [r.get("data-device") for r in page.xpath("//section[@id='boot']//tbody/tr")]
    assert keys == ["disk:vda", NIC]
    assert "boots by kind (hd)" in page.xpath("string(//section[@id='boot'])")
    response = as_alice.post(
        f"{URL}boot/",
        {"boot-disk:vda": "2", f"boot-{NIC}": "1", "menu": "on", "title": "Front web",
         "description": "nginx, then the app"},
        follow=True,
    )  # fmt: skip
    assert "Saved. It applies when the VM next starts." in response.content.decode()
    doc = defined()
    assert [d.boot_order for d in doc.disks] == [2]
    assert [n.boot_order for n in doc.interfaces] == [1]
    assert len(doc.boot) == 0  # libvirt refuses kind-wise entries beside per-device ones
    assert doc.node.find("./os/bootmenu").get("enable") == "yes"
    assert (doc.title, doc.description) == ("Front web", "nginx, then the app")
    assert "<boot order='1'/>" in AuditEntry.objects.get(action="vm-boot", outcome="ok").diff


@pytest.mark.parametrize(
    ("posted", "said"),
    [
        ({"boot-disk:vda": "1", f"boot-{NIC}": "1"}, "Two devices are in boot position 1."),
        ({"boot-disk:vda": "0"}, "A boot position starts at 1."),
        ({"boot-disk:vda": "first"}, "A boot position is a number: first."),
        ({"boot-disk:vdz": "1"}, "There is no device disk:vdz in the VM."),
    ],
)
def test_a_boot_order_that_cannot_be_is_refused(
    lab: Host, as_alice: Client, posted: dict[str, str], said: str
) -> None:
    before = pool().get(TESTNODE_URI).lookupByName("web1").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    response = as_alice.post(f"{URL}boot/", {**posted, "title": "x"}, follow=True)
    assert said in response.content.decode()
    after = pool().get(TESTNODE_URI).lookupByName("web1").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert after == before


def test_the_boot_edit_of_the_libvirt_style_sample_keeps_the_rest() -> None:
    from pathlib import Path

    sample = Path(__file__).parent.parent / "data" / "xml" / "qemu-guest.in.xml"
    doc = DomainXML.parse(sample.read_text())
    boot._edit(
        doc, {"disk:vda": 1}, True, "Demo guest", "A QEMU guest like the examples of libvirt's docs"
    )
    changed = [line for line in doc.diff().splitlines() if line[:1] in "+-"][2:]
    assert changed == [
        "-    <boot dev='hd'/>",
        "-    <boot dev='cdrom'/>",
        "+    <bootmenu enable='yes'/>",
        "+      <boot order='1'/>",
    ]
    assert "<qemu:arg value='-newarg'/>" in doc.tostring()
