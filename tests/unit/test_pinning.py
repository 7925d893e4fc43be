"""vCPU pinning on the Hardware tab, on libvirt's test driver (8 host CPUs):
the CPU lists a person types, what libvirt reports after a pin (live with
virDomainGetVcpuPinInfo, the definition's <vcpupin>), and what is refused.
On the real guest: tests/integration/test_sizing_real.py."""

from __future__ import annotations

import libvirt
import lxml.html
import pytest
from django.test import Client
from django.utils import translation

from tests.conftest import TESTNODE_URI
from vmdash.models import AuditEntry, Host
from vmdash.virt import pinning
from vmdash.virt.connection import pool
from vmdash.virt.xml.domain import DomainXML

pytestmark = pytest.mark.django_db

URL = "/hosts/lab/domains/web1/hardware/"
# The test driver's host: a CPU map of 8, 4 of them active; an unpinned vCPU
# may run on those 4 (virDomainGetVcpuPinInfo).
UNPINNED = [0, 1, 2, 3]


def live_cpus(name: str, vcpu: int) -> list[int]:
    info = pool().get(TESTNODE_URI).lookupByName(name).vcpuPinInfo(libvirt.VIR_DOMAIN_AFFECT_LIVE)
    return [cpu for cpu, on in enumerate(info[vcpu]) if on]


def defined_pins(name: str) -> dict[int | None, str | None]:
    dom = pool().get(TESTNODE_URI).lookupByName(name)
    doc = DomainXML.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return {p.vcpu: p.cpuset for p in doc.vcpu_pins}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0-3,x", "“x” is not a CPU number"),
        ("99", "this host has CPUs 0-7"),
        ("3-1", "a range goes up: 1-3"),
        ("1,,2", "an empty part"),
        ("-1", "is not a CPU number"),
    ],
)
def test_a_cpu_list_that_is_wrong_says_why(text: str, why: str) -> None:
    with translation.override("en"), pytest.raises(ValueError, match=why):
        pinning.parse_cpuset(text, 8)


def test_cpu_lists_read_and_write_as_libvirt_does() -> None:
    assert pinning.parse_cpuset("0,2-3", 8) == {0, 2, 3}
    assert pinning.cpuset(frozenset({0, 1, 2, 5, 7})) == "0-2,5,7"
    assert pinning.cpuset(frozenset({3})) == "3"


def test_a_vcpu_pinned_to_cpu_1_runs_there_now_and_after_the_next_start(
    lab: Host, as_alice: Client
) -> None:
    page = lxml.html.fromstring(as_alice.get(URL).content)
    rows = page.xpath("//section[@id='pins']//tbody/tr")
    assert [r.get("data-vcpu") for r in rows] == ["0", "1"]
    assert rows[0].xpath("string(td[1])").strip() == "any CPU"

    response = as_alice.post(f"{URL}pins/", {"pin-0": "1", "pin-1": ""}, follow=True)
    assert "Pinned in the running VM and saved in its definition." in response.content.decode()
    assert live_cpus("web1", 0) == [1]
    assert live_cpus("web1", 1) == UNPINNED
    assert defined_pins("web1") == {0: "1"}
    entry = AuditEntry.objects.get(action="vcpu-pin", outcome="ok")
    assert "<vcpupin vcpu='0' cpuset='1'/>" in entry.diff

    as_alice.post(f"{URL}pins/", {"pin-0": "", "pin-1": ""})  # any CPU again
    assert live_cpus("web1", 0) == UNPINNED and defined_pins("web1") == {}


@pytest.mark.parametrize(
    ("posted", "said"),
    [
        ({"pin-0": "0-3,x"}, "vCPU 0: “x” is not a CPU number"),
        ({"pin-1": "99"}, "vCPU 1: this host has CPUs 0-7"),
        ({"pin-5": "1"}, "vCPU 5: the VM has vCPUs 0-1"),
    ],
)
def test_a_pin_the_host_cannot_take_changes_nothing(
    lab: Host, as_alice: Client, posted: dict[str, str], said: str
) -> None:
    response = as_alice.post(f"{URL}pins/", posted, follow=True)
    assert said in response.content.decode()
    assert defined_pins("web1") == {} and live_cpus("web1", 0) == UNPINNED
    assert AuditEntry.objects.get(action="vcpu-pin").outcome == "error"


def test_pinning_a_vendor_template_changes_only_its_vcpupin_lines() -> None:
    """Emulator pin, schedulers, NUMA tuning and hugepages around it stay."""
    from pathlib import Path

    source = Path(__file__).parent.parent / "data" / "newvm" / "vendor-nfv.xml"
    doc = DomainXML.parse(source.read_text())
    pinning._edit(doc, {0: "1", 3: "", 2: "0"})
    changed = [line for line in doc.diff().splitlines() if line[:1] in "+-"][2:]
    assert changed == [
        "-    <vcpupin vcpu='0' cpuset='0'/>",
        "+    <vcpupin vcpu='0' cpuset='1'/>",
        "-    <vcpupin vcpu='3' cpuset='1'/>",
    ]
    empty = DomainXML.parse("<domain type='kvm'>\n  <name>x</name>\n  <vcpu>2</vcpu>\n</domain>\n")
    pinning._edit(empty, {1: "0"})
    assert "<cputune>\n    <vcpupin vcpu='1' cpuset='0'/>\n  </cputune>" in empty.tostring()
