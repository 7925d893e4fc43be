"""The CPU card of the Hardware tab on libvirt's test driver (web1: 2 vCPUs):
mode, model and topology as libvirt stores them, what is refused, and the
edit of the vendor template (its NUMA cell inside <cpu> stays)."""

from __future__ import annotations

import html
from pathlib import Path

import libvirt
import pytest
from django.test import Client

from tests.conftest import TESTNODE_URI
from vmdash.models import Host
from vmdash.virt import cpu
from vmdash.virt.connection import pool
from vmdash.virt.xml.domain import DomainXML

pytestmark = pytest.mark.django_db

URL = "/hosts/lab/domains/web1/hardware/cpu/"


def defined() -> DomainXML:
    dom = pool().get(TESTNODE_URI).lookupByName("web1")
    return DomainXML.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def post(client: Client, **data: str) -> str:
    return html.unescape(client.post(URL, data, follow=True).content.decode())


def test_a_custom_model_with_two_cores_is_stored(lab: Host, as_alice: Client) -> None:
    said = post(as_alice, mode="custom", model="qemu64", sockets="1", dies="1", cores="2",
                threads="1")  # fmt: skip
    assert "Saved. It applies when the VM next starts." in said
    doc = defined()
    assert (str(doc.cpu_mode), doc.cpu_model) == ("custom", "qemu64")
    assert (doc.cpu_sockets, doc.cpu_dies, doc.cpu_cores, doc.cpu_threads) == (1, 1, 2, 1)
    post(as_alice, mode="", model="", sockets="", dies="", cores="", threads="")
    assert defined().node.find("./cpu") is None


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ({"mode": "custom", "sockets": "2", "dies": "1", "cores": "2", "threads": "1"},
         "make 4 vCPUs; the VM has 2 at most"),
        ({"mode": "custom", "model": ""}, "A custom CPU needs a model."),
        ({"mode": "host-model", "sockets": "x", "dies": "1", "cores": "1", "threads": "1"},
         "whole numbers"),
        ({"mode": "host-model", "sockets": "0", "dies": "1", "cores": "2", "threads": "1"},
         "1 or more"),
    ],
)  # fmt: skip
def test_a_cpu_that_cannot_be_is_refused(
    lab: Host, as_alice: Client, data: dict[str, str], said: str
) -> None:
    assert said in post(as_alice, **{"model": "", **data})
    assert defined().node.find("./cpu") is None


def test_the_vendor_templates_numa_cell_survives_a_topology_change() -> None:
    source = Path(__file__).parent.parent / "data" / "newvm" / "vendor-nfv.xml"
    doc = DomainXML.parse(source.read_text())
    cpu._edit(doc, "host-passthrough", "", cpu.Topology(1, 1, 4, 1))
    changed = [line for line in doc.diff().splitlines() if line[:1] in "+-"][2:]
    assert changed == [
        "-    <topology sockets='1' dies='1' cores='2' threads='2'/>",
        "+    <topology sockets='1' dies='1' cores='4' threads='1'/>",
    ]
    assert "<cell id='0' cpus='0-3' memory='4' unit='GiB' memAccess='shared'/>" in doc.tostring()
