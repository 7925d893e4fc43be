"""A deleted VM recreated from the last definition vmdash kept: listed on the
host's Deleted VMs page, its XML in the import form, defined again (what
libvirt then has). On libvirt's test driver."""

from __future__ import annotations

import libvirt
import lxml.html
import pytest
from django.test import Client

from domains import versions
from tests.conftest import TESTNODE_URI, audit_entries
from vmdash.models import Host
from vmdash.virt.connection import pool

pytestmark = pytest.mark.django_db
GONE = """<domain type='test'><name>gone</name><memory>262144</memory><vcpu>1</vcpu>
<description>made for the recreate test</description><os><type>hvm</type></os></domain>"""


@pytest.fixture
def gone(lab: Host) -> str:
    """A VM vmdash saw (a version kept), then undefined from outside; its UUID."""
    conn = pool().get(TESTNODE_URI)
    dom = conn.defineXML(GONE)
    uuid = str(dom.UUIDString())
    versions.remember_now(lab.ref, "gone", uuid)
    dom.undefine()
    return uuid


def test_a_deleted_vm_is_listed_and_recreated_from_its_last_definition(
    as_alice: Client, gone: str
) -> None:
    page = as_alice.get("/hosts/lab/domains/deleted/")
    doc = lxml.html.fromstring(page.content)
    (row,) = doc.xpath("//table[@id='deleted']/tbody/tr[@data-uuid]")
    assert row.get("data-uuid") == gone and "gone" in row.text_content()
    assert "web1" not in page.content.decode()  # still there: not deleted
    link = row.xpath(".//a")[0].get("href")
    form = lxml.html.fromstring(as_alice.get(link).content)
    text = form.xpath("//textarea[@name='xml']")[0].text_content()
    assert "<name>gone</name>" in text and form.get_element_by_id("recreating") is not None
    done = as_alice.post("/hosts/lab/domains/import/", {"xml": text})
    assert done.status_code == 200, done.content
    dom = pool().get(TESTNODE_URI).lookupByName("gone")  # libvirt has it again
    assert dom.UUIDString() == gone
    assert "made for the recreate test" in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert audit_entries().get(action="vm-import").outcome == "ok"
    again = lxml.html.fromstring(as_alice.get("/hosts/lab/domains/deleted/").content)
    assert not again.xpath("//table[@id='deleted']/tbody/tr[@data-uuid]")


def test_only_those_who_may_create_see_deleted_vms(as_bob: Client, gone: str) -> None:
    assert as_bob.get("/hosts/lab/domains/deleted/").status_code == 404
    assert as_bob.get("/hosts/lab/domains/import/?version=1").status_code == 404
