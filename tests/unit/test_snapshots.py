"""The Snapshots tab on libvirt's test driver: what is offered and why not,
the tree as libvirt keeps it, take (a job with progress), revert, delete,
bad names and who may. On the real guest: tests/integration/test_snapshots_real.py."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import lxml.html
import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import TESTNODE_URI
from tests.unit.test_grants import dora
from vmdash import jobs
from vmdash.models import AuditEntry, Host
from vmdash.virt.connection import pool

__all__ = ["dora"]  # a persona (tests/unit/test_grants.py), used by name

# transaction=True: the job writes its audit entry from a thread of its own.
pytestmark = pytest.mark.django_db(transaction=True)

URL = "/hosts/lab/domains/{}/snapshots/"


def libvirt_snapshots(name: str) -> dict[str, str]:
    """name -> its parent's name ("" for a root), as libvirt keeps them."""
    dom = pool().get(TESTNODE_URI).lookupByName(name)
    out = {}
    for snap in dom.listAllSnapshots(0):
        try:
            out[snap.getName()] = snap.getParent(0).getName()
        except Exception:  # noqa: BLE001 - libvirtError: a root has no parent
            out[snap.getName()] = ""
    return out


def current(name: str) -> str:
    return str(pool().get(TESTNODE_URI).lookupByName(name).snapshotCurrent(0).getName())


def take(client: Client, vm: str, snap: str) -> None:
    response = client.post(URL.format(vm), {"name": snap, "description": f"before {snap}"})
    assert response.status_code == 302, response.content.decode()[:500]
    job_id = parse_qs(urlsplit(response["Location"]).query)["job"][0]
    deadline = time.monotonic() + 10
    while not (job := jobs.get(job_id)) or not job.finished:
        assert time.monotonic() < deadline, "the snapshot job did not end"
        time.sleep(0.05)
    assert job.state == "done", job.message
    progress = client.get(f"{URL.format(vm)}jobs/{job_id}/").content.decode()
    assert "Done" in progress


def test_a_vm_without_a_qcow2_disk_is_told_why_it_has_no_snapshots(
    lab: Host, as_alice: Client
) -> None:
    page = lxml.html.fromstring(as_alice.get(URL.format("db")).content)
    why = [li.text_content() for li in page.xpath("//ul[contains(@class, 'why-not')]/li")]
    assert any("no disk to keep a snapshot in" in w for w in why)
    assert any("External snapshots are not offered" in w for w in why)
    assert not page.xpath("//form[@id='snapshot-form']")
    response = as_alice.post(URL.format("db"), {"name": "s1"})
    assert response.status_code == 400 and libvirt_snapshots("db") == {}


def test_snapshots_are_taken_as_a_tree_reverted_to_and_deleted(lab: Host, as_alice: Client) -> None:
    page = lxml.html.fromstring(as_alice.get(URL.format("web1")).content)
    assert "snapshot holds its memory too" in page.xpath("string(//form[@id='snapshot-form'])")
    take(as_alice, "web1", "s1")
    take(as_alice, "web1", "s2")
    assert libvirt_snapshots("web1") == {"s1": "", "s2": "s1"}
    page = lxml.html.fromstring(as_alice.get(URL.format("web1")).content)
    rows = page.xpath("//table[contains(@class, 'snapshots')]/tbody/tr")
    assert [(r.get("data-snapshot"), r.get("data-depth")) for r in rows] == [
        ("s1", "0"),
        ("s2", "1"),
    ]
    assert "current" in rows[1].xpath("string(td[1])")

    as_alice.post(f"{URL.format('web1')}s1/revert/")
    assert current("web1") == "s1"
    as_alice.post(f"{URL.format('web1')}s1/delete/", {"children": "on"})
    assert libvirt_snapshots("web1") == {}
    actions = set(AuditEntry.objects.filter(outcome="ok").values_list("action", flat=True))
    assert {"snapshot-create", "snapshot-revert", "snapshot-delete"} <= actions


@pytest.mark.parametrize(
    ("name", "said"),
    [("", "Give the snapshot a name."), ("a/b", "no “/” in a name"), ("s1", "already")],
)
def test_a_bad_or_taken_name_is_refused_next_to_the_field(
    lab: Host, as_alice: Client, name: str, said: str
) -> None:
    take(as_alice, "web1", "s1")
    response = as_alice.post(URL.format("web1"), {"name": name})
    assert response.status_code == 400
    page = lxml.html.fromstring(response.content)
    assert said in page.xpath("string(//div[@data-field='name']/div[@class='field-error'])")
    assert libvirt_snapshots("web1") == {"s1": ""}


def test_a_viewer_sees_the_snapshots_and_changes_none(
    lab: Host, as_alice: Client, dora: User
) -> None:
    take(as_alice, "web1", "s1")
    c = Client()
    c.force_login(dora)  # Viewer of web1
    page = lxml.html.fromstring(c.get(URL.format("web1")).content)
    assert page.xpath("//tr[@data-snapshot='s1']") and not page.xpath("//form[@id='snapshot-form']")
    assert not page.xpath("//tr[@data-snapshot='s1']//form")
    assert c.post(URL.format("web1"), {"name": "s2"}).status_code == 403
    assert c.post(f"{URL.format('web1')}s1/delete/").status_code == 403
    assert libvirt_snapshots("web1") == {"s1": ""}
