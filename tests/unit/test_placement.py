"""Memory placement (numatune), hugepages and emulator pinning, from the
Hardware tab: checked against what the host reports (its NUMA nodes, page
sizes and free pages, CPUs), saved in the definition, read back from
libvirt. On libvirt's test driver (web1, 1 GiB; a host of 4 CPUs that
reports no NUMA cells and no free hugepages) and on the vendor NFV XML."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from django.test import Client

from tests.conftest import TESTNODE_URI, audit_entries
from vmdash.models import Host
from vmdash.virt import placement
from vmdash.virt.connection import pool
from vmdash.virt.xml.domain import DomainXML

pytestmark = pytest.mark.django_db
URL = "/hosts/lab/domains/web1/hardware/placement/"
VNF = Path(__file__).parent.parent / "data" / "newvm" / "vendor-nfv.xml"


def defined() -> DomainXML:
    dom = pool().get(TESTNODE_URI).lookupByName("web1")
    return DomainXML.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def post(client: Client, **data: str) -> str:
    sent = {"mode": "", "nodeset": "", "page_kib": "0", "emulator_cpus": "", **data}
    return client.post(URL, sent, follow=True).content.decode()


def test_memory_mode_and_emulator_pin_land_in_the_definition(as_alice: Client, lab: Host) -> None:
    page = post(as_alice, mode="strict", nodeset="0", emulator_cpus="2-3")
    assert "It applies when the VM next starts." in page
    doc = defined()  # what libvirt holds
    assert (doc.numatune_mode, doc.numatune_nodeset, doc.emulator_cpuset) == ("strict", "0", "2-3")
    assert audit_entries().get(action="vm-placement").outcome == "ok"
    post(as_alice)  # all back to "anywhere": the elements go
    doc = defined()
    assert not doc.numatune_memory and not doc.emulator_pin
    assert "<numatune" not in doc.tostring() and "<cputune" not in doc.tostring()


def test_the_page_shows_the_hosts_pages_and_what_the_vm_needs(as_alice: Client, lab: Host) -> None:
    page = as_alice.get("/hosts/lab/domains/web1/hardware/").content.decode()
    assert "2 MiB hugepages: 0 free, this VM needs 512." in page  # 1 GiB in 2 MiB pages


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"mode": "strict", "nodeset": "3"}, "This host has no NUMA node 3; it has 0."),
        ({"mode": "strict"}, "Name the host NUMA nodes the memory goes to"),
        ({"mode": "everywhere", "nodeset": "0"}, "Choose a memory mode"),
        ({"page_kib": "2048"}, "The VM needs 512 free 2 MiB hugepages; the host has 0 free"),
        ({"page_kib": "4096"}, "This host has no 4 MiB hugepages (it has: 8 KiB, 2 MiB, 1 GiB)."),
        ({"page_kib": "lots"}, "Choose a page size from the list."),
        ({"emulator_cpus": "9"}, "Emulator CPUs: this host has CPUs 0-3."),
    ],
)
def test_what_the_host_cannot_give_is_refused_before_defining(
    as_alice: Client, lab: Host, data: dict[str, str], reason: str
) -> None:
    before = defined().tostring()
    assert reason in post(as_alice, **data)
    assert defined().tostring() == before
    assert audit_entries().get(action="vm-placement").outcome == "error"


def test_clearing_keeps_what_else_the_vendor_wrote() -> None:
    doc = DomainXML.parse(VNF.read_text())
    assert placement.wanted_of(doc).page_kib == 2048  # <page size='2' unit='MiB'/>
    placement._edit(doc, placement.Wanted())
    text = doc.tostring()
    assert "<hugepages" not in text and "<emulatorpin" not in text
    for kept in ("<nosharepages/>", "<locked/>", "<access mode='shared'/>", "<vcpupin vcpu='0'"):
        assert kept in text
    # The same size again changes nothing (its unit stays MiB).
    again = DomainXML.parse(VNF.read_text())
    placement._edit(again, placement.wanted_of(again))
    assert not again.changed


def test_bob_may_not(as_bob: Client, lab: Host) -> None:
    assert as_bob.post(URL, {"mode": "strict", "nodeset": "0"}).status_code == 404
    assert not defined().numatune_memory


def test_io_threads_and_their_pins_land_in_the_definition(as_alice: Client, lab: Host) -> None:
    post(as_alice, iothreads="2", iothread_cpus="1-2")
    doc = defined()
    assert doc.iothreads == 2
    assert [(p.iothread, p.cpuset) for p in doc.iothread_pins] == [(1, "1-2"), (2, "1-2")]
    post(as_alice, iothreads="1")  # one thread, anywhere
    doc = defined()
    assert doc.iothreads == 1 and not list(doc.iothread_pins)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"iothreads": "many"}, "I/O threads: 0 to 64."),
        ({"iothread_cpus": "0"}, "Pinning I/O threads needs at least one I/O thread."),
        ({"iothreads": "1", "iothread_cpus": "7"}, "I/O thread CPUs: this host has CPUs 0-3."),
    ],
)
def test_io_threads_that_cannot_be_are_refused(
    as_alice: Client, lab: Host, data: dict[str, str], reason: str
) -> None:
    before = defined().tostring()
    assert reason in post(as_alice, **data)
    assert defined().tostring() == before


def test_a_disk_on_an_io_thread_keeps_it() -> None:
    facts = placement.Facts(
        wanted=placement.Wanted(iothreads=2), memory_kib=1 << 20, running=False,
        host_cells=(0,), host_cpus=4, page_sizes=(), iothread_users=(("vdb", 2),),
    )  # fmt: skip
    assert placement.problems(placement.Wanted(iothreads=1), facts) == [
        "Disk vdb uses I/O thread 2: keep at least 2."
    ]
    assert placement.problems(placement.Wanted(iothreads=2), facts) == []
