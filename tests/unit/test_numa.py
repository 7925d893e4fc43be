"""Guest NUMA nodes on the Hardware tab, on libvirt's test driver (web1: 2
vCPUs, 1 GiB): what libvirt stores, what is refused and why, and the edit on
the vendor NFV template (memAccess and the rest of the cell survive)."""

from __future__ import annotations

from pathlib import Path

import libvirt
import lxml.html
import pytest
from django.test import Client

from tests.conftest import TESTNODE_URI
from vmdash.models import AuditEntry, Host
from vmdash.virt import numa
from vmdash.virt.connection import pool
from vmdash.virt.xml.domain import DomainXML

pytestmark = pytest.mark.django_db

URL = "/hosts/lab/domains/web1/hardware/"


def defined_cells() -> list[tuple[str | None, int]]:
    dom = pool().get(TESTNODE_URI).lookupByName("web1")
    doc = DomainXML.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return [(c.cpus, c.memory_kib) for c in doc.numa_cells]


def post(client: Client, *cells: tuple[str, str]) -> str:
    data = {}
    for i, (cpus, mib) in enumerate(cells):
        data[f"cell-{i}-cpus"], data[f"cell-{i}-memory"] = cpus, mib
    return client.post(f"{URL}numa/", data, follow=True).content.decode()


def test_two_guest_nodes_are_saved_for_the_next_start_and_taken_away(
    lab: Host, as_alice: Client
) -> None:
    page = lxml.html.fromstring(as_alice.get(URL).content)
    assert [r.get("data-cell") for r in page.xpath("//section[@id='numa']//tbody/tr")] == ["0"]
    said = post(as_alice, ("0", "512"), ("1", "512"))
    assert "Saved. It applies when the VM next starts." in said
    assert defined_cells() == [("0", 512 * 1024), ("1", 512 * 1024)]
    assert "<cell id='1' cpus='1' memory='524288' unit='KiB'/>" in (
        AuditEntry.objects.get(action="vm-numa", outcome="ok").diff
    )
    post(as_alice, ("", ""), ("", ""))
    assert defined_cells() == []
    xml = pool().get(TESTNODE_URI).lookupByName("web1").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "<numa>" not in xml


@pytest.mark.parametrize(
    ("cells", "said"),
    [
        ((("0-1", "256"), ("1", "256")), "vCPU 1 is in cell 0 and cell 1."),
        ((("0", "1024"), ("1", "1024")), "The cells add up to 2048 MiB, more than the VM"),
        ((("5", "256"),), "Cell 0: the VM has vCPUs 0-1."),
        ((("x", "256"),), "is not a CPU number"),
        ((("0", "lots"),), "Cell 0: give its memory in MiB."),
        ((("0", "0"),), "Cell 0 has no memory."),
        ((("", "256"),), "Cell 0 has no vCPUs."),
        ((("0", "256"),), "vCPUs 1 are in no node"),
    ],
)
def test_a_layout_that_cannot_be_is_refused_and_nothing_changes(
    lab: Host, as_alice: Client, cells: tuple[tuple[str, str], ...], said: str
) -> None:
    assert said in post(as_alice, *cells).replace("&#x27;", "'")
    assert defined_cells() == []


def test_the_vendor_templates_cell_keeps_its_memaccess_and_unit() -> None:
    source = Path(__file__).parent.parent / "data" / "newvm" / "vendor-nfv.xml"
    doc = DomainXML.parse(source.read_text())
    numa._edit(doc, [("0-1", 4 * 2**20)])
    changed = [line for line in doc.diff().splitlines() if line[:1] in "+-"][2:]
    assert changed == [
        "-      <cell id='0' cpus='0-3' memory='4' unit='GiB' memAccess='shared'/>",
        "+      <cell id='0' cpus='0-1' memory='4' unit='GiB' memAccess='shared'/>",
    ]
