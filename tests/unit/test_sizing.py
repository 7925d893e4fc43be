"""The Hardware tab's memory and vCPUs on libvirt's test driver: what libvirt
reports after each change (live and in the definition), what waits for a
shutdown, bad input, who may change it, and the XML edit itself on a vendor
template (everything else survives, golden file)."""

from __future__ import annotations

import os
from pathlib import Path

import libvirt
import lxml.html
import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import TESTNODE_URI
from tests.unit.test_grants import dora, erin
from vmdash.models import AuditEntry, Host
from vmdash.virt import sizing
from vmdash.virt.connection import pool
from vmdash.virt.xml.domain import DomainXML

__all__ = ["dora", "erin"]  # personas (tests/unit/test_grants.py), used by name

pytestmark = pytest.mark.django_db

URL = "/hosts/lab/domains/{}/hardware/"
HTMX = {"HTTP_HX_REQUEST": "true"}
DATA = Path(__file__).parent.parent / "data"


def libvirt_says(name: str, flags: int = 0) -> sizing.Sizing:
    """The four values as libvirt's own XML has them (0: live, INACTIVE: the definition)."""
    doc = DomainXML.parse(pool().get(TESTNODE_URI).lookupByName(name).XMLDesc(flags))
    return sizing._sizing(doc)


def form(memory: int, max_memory: int, vcpus: int, max_vcpus: int, **extra: str) -> dict[str, str]:
    values = {"memory": memory, "max_memory": max_memory, "vcpus": vcpus, "max_vcpus": max_vcpus}
    return {**{k: str(v) for k, v in values.items()}, **extra}


def test_the_tab_shows_the_running_vms_values_beside_its_definitions(
    lab: Host, as_alice: Client
) -> None:
    page = lxml.html.fromstring(as_alice.get(URL.format("web1")).content)
    heads = [th.text_content() for th in page.xpath("//section[@id='sizing']//thead//th")]
    assert heads[1:] == ["Now", "After shutdown"]
    rows = {
        r.xpath("string(th)"): [td.text_content().strip() for td in r.xpath("td")]
        for r in page.xpath("//section[@id='sizing']//tbody/tr")
    }
    assert rows["Memory"] == ["1 GiB", "1 GiB"]
    assert rows["vCPUs"] == ["2", "2"]
    assert not page.xpath("//span[contains(@class, 'badge-pending')]")
    assert page.xpath("//form[@id='sizing-form']//input[@name='memory']/@value") == ["1024"]


def test_a_preview_shows_what_applies_now_and_after_shutdown_and_changes_nothing(
    lab: Host, as_alice: Client
) -> None:
    before = (libvirt_says("web1"), libvirt_says("web1", libvirt.VIR_DOMAIN_XML_INACTIVE))
    response = as_alice.post(URL.format("web1"), form(512, 1024, 2, 3, preview="1"), **HTMX)
    assert response.status_code == 200
    page = lxml.html.fromstring(response.content.decode())  # a partial: no charset
    said = " ".join(page.text_content().split())
    assert "At once, in the running VM and its definition" in said
    assert "Memory: 1 GiB → 512 MiB" in said
    assert "After shutdown (saved in the definition) Maximum vCPUs: 2 → 3" in said
    assert "+  <vcpu placement='static' current='2'>3</vcpu>" in page.xpath(
        "string(//pre[@class='diff'])"
    )
    assert (libvirt_says("web1"), libvirt_says("web1", libvirt.VIR_DOMAIN_XML_INACTIVE)) == before


def test_applied_the_running_vm_changes_now_and_the_maximum_waits_then_reverts(
    lab: Host, as_alice: Client
) -> None:
    response = as_alice.post(URL.format("web1"), form(512, 1024, 2, 3))
    assert response.status_code == 302
    live, defined = libvirt_says("web1"), libvirt_says("web1", libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert (live.memory, live.max_vcpus) == (512 * 1024, 2)  # ballooned now, max unchanged
    assert (defined.memory, defined.vcpus, defined.max_vcpus) == (512 * 1024, 2, 3)
    page = lxml.html.fromstring(as_alice.get(URL.format("web1")).content)
    pending = page.xpath("//table[@class='sizing']//tr[@class='pending']/th/text()")
    assert pending == ["Maximum vCPUs"]
    assert "Some values apply only after shutdown" in page.text_content()
    entry = AuditEntry.objects.get(action="vm-resize", outcome="ok")
    assert "max_vcpus 2->3" in entry.message and "current='2'>3</vcpu>" in entry.diff

    assert as_alice.post(f"{URL.format('web1')}revert/").status_code == 302
    assert libvirt_says("web1", libvirt.VIR_DOMAIN_XML_INACTIVE).max_vcpus == 2
    page = lxml.html.fromstring(as_alice.get(URL.format("web1")).content)
    assert not page.xpath("//tr[@class='pending']")
    assert "The pending changes are reverted" in page.text_content()


def test_a_vnc_password_survives_the_change_and_stays_out_of_the_diff(
    lab: Host, as_alice: Client
) -> None:
    conn = pool().get(TESTNODE_URI)
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    doc = DomainXML.parse(conn.lookupByName("db").XMLDesc(flags))
    vnc = doc.graphics.add(type="vnc")
    vnc.port, vnc.autoport = -1, True
    vnc.node.set("passwd", "s3cret-vnc")
    conn.defineXML(doc.tostring())
    assert as_alice.post(URL.format("db"), form(2048, 4096, 4, 4)).status_code == 302
    assert "passwd='s3cret-vnc'" in conn.lookupByName("db").XMLDesc(flags)
    assert "s3cret-vnc" not in AuditEntry.objects.get(action="vm-resize").diff


def test_a_shut_off_vm_gets_it_at_its_next_start(lab: Host, as_alice: Client) -> None:
    response = as_alice.post(URL.format("db"), form(2048, 4096, 1, 2), follow=True)
    assert "Saved. It applies when the VM starts." in response.content.decode()
    defined = libvirt_says("db", libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert defined == sizing.Sizing(2048 * 1024, 4096 * 1024, 1, 2)


@pytest.mark.parametrize(
    ("values", "field", "said"),
    [
        ((1024, 1024, 3, 2), "vcpus", "More than the maximum vCPUs."),
        ((2048, 1024, 2, 2), "memory", "More than the maximum memory."),
        ((1024, 1024, 2, 999), "max_vcpus", "This host gives one VM at most"),
        ((1024, 64 * 1024, 2, 2), "max_memory", "This host has 8192 MiB in all."),
        ((8, 1024, 2, 2), "memory", "greater than or equal to 16"),
        ((1024, 1024, 0, 2), "vcpus", "greater than or equal to 1"),
    ],
)
def test_bad_values_are_refused_next_to_their_field_and_nothing_changes(
    lab: Host, as_alice: Client, values: tuple[int, int, int, int], field: str, said: str
) -> None:
    before = libvirt_says("web1", libvirt.VIR_DOMAIN_XML_INACTIVE)
    response = as_alice.post(URL.format("web1"), form(*values, preview="1"), **HTMX)
    assert response.status_code == 400
    page = lxml.html.fromstring(response.content.decode())  # a partial: no charset
    errors = page.xpath(f"//div[@data-field='{field}']/div[@class='field-error']/text()")
    assert errors and said in errors[0]
    assert as_alice.post(URL.format("web1"), form(*values)).status_code == 400
    assert libvirt_says("web1", libvirt.VIR_DOMAIN_XML_INACTIVE) == before
    assert AuditEntry.objects.filter(action="vm-resize", outcome="error").count() == 2


def test_a_viewer_sees_the_values_and_no_form_and_an_operator_may_not_change_them(
    dora: User, erin: User
) -> None:
    as_dora = Client()
    as_dora.force_login(dora)  # Viewer of web1
    page = lxml.html.fromstring(as_dora.get(URL.format("web1")).content)
    assert page.xpath("//table[@class='sizing']") and not page.xpath("//form[@id='sizing-form']")
    assert as_dora.post(URL.format("web1"), form(512, 1024, 2, 2)).status_code == 403
    as_erin = Client()
    as_erin.force_login(erin)  # Operator of host lab: starts and stops, changes nothing
    assert as_erin.post(URL.format("web1"), form(512, 1024, 2, 2)).status_code == 403
    assert as_erin.post(f"{URL.format('web1')}revert/").status_code == 403
    assert libvirt_says("web1").memory == 1024 * 1024


def test_the_edit_of_a_vendor_template_touches_only_the_two_values() -> None:
    """Hugepages, pinning, NUMA tuning, OVS ports, comments: all survive."""
    source = DATA / "newvm" / "vendor-nfv.xml"
    expected = DATA / "xml" / "sizing-nfv.expected.xml"
    doc = DomainXML.parse(source.read_text())
    sizing._edit(doc, sizing.Sizing(memory=3 * 2**20, max_memory=4 * 2**20, vcpus=2, max_vcpus=4))
    if os.environ.get("VMDASH_REGEN_GOLDEN"):
        expected.write_text(doc.tostring())
    assert doc.tostring() == expected.read_text()
    changed = [line for line in doc.diff().splitlines() if line[:1] in "+-"][2:]
    assert changed == [
        "-  <currentMemory unit='GiB'>4</currentMemory>",
        "+  <currentMemory unit='GiB'>3</currentMemory>",
        "-  <vcpu placement='static' cpuset='0-1'>4</vcpu>",
        "+  <vcpu placement='static' cpuset='0-1' current='2'>4</vcpu>",
    ]


def test_memory_set_by_numa_cells_is_not_offered_as_a_field() -> None:
    doc = DomainXML.parse((DATA / "newvm" / "vendor-nfv.xml").read_text())
    facts = sizing.Resources(
        running=False,
        persistent=True,
        live=None,
        config=sizing._sizing(doc),
        numa=True,
        host_vcpus=8,
        host_memory_kib=16 * 2**20,
    )
    wanted = sizing.Sizing(4 * 2**20, 8 * 2**20, 4, 4)
    assert sizing.problems(wanted, facts) == {"max_memory": "set by the VM's NUMA cells"}
