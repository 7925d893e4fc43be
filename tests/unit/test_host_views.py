"""Hosts: overview, list, detail, and managing them from the dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.conftest import DATA, TESTNODE_URI, audit_entries
from vmdash.models import Host

pytestmark = pytest.mark.django_db


def test_the_overview_counts_vms_by_state(as_alice: Client, lab: Host) -> None:
    page = as_alice.get("/").content.decode()
    assert "Lab" in page and "connected" in page
    assert "3 VMs" in page


def test_host_detail_shows_versions_cpu_and_memory(as_alice: Client, lab: Host) -> None:
    page = as_alice.get("/hosts/lab/").content.decode()
    for text in ("TEST", "libvirt", "i686", "4 (1 socket × 4 cores × 1 thread)", "8 GiB total"):
        assert text in page, text


def test_a_down_host_is_shown_as_unreachable_with_the_error(as_alice: Client, lab: Host) -> None:
    Host.objects.create(slug="gone", uri="qemu+tcp://127.0.0.1:1/system")
    for url in ("/", "/hosts/", "/hosts/gone/"):
        response = as_alice.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert "unreachable" in page
        assert "Cannot connect to qemu+tcp://127.0.0.1:1/system" in page
    assert "3 VMs" in as_alice.get("/").content.decode()  # the lab host still counts


def test_an_admin_adds_a_host_that_answers(as_alice: Client, db: None) -> None:
    response = as_alice.post(
        "/hosts/add/", {"slug": "lab2", "name": "Lab 2", "uri": TESTNODE_URI, "enabled": "on"}
    )
    assert response.status_code == 302 and response["Location"] == "/hosts/lab2/"
    assert Host.objects.get(slug="lab2").uri == TESTNODE_URI
    assert audit_entries().get().action == "host-add"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("not a uri", "The URI contains spaces"),
        ("qemu+tcp//lab1/system", "This is not a libvirt URI"),
        ("qemu+tcp://127.0.0.1:1/system", "Cannot connect to qemu+tcp://127.0.0.1:1/system"),
        ("nosuchdriver:///x", "The driver or transport &#x27;nosuchdriver&#x27; is not allowed"),
    ],
)
def test_a_malformed_or_unreachable_uri_is_a_form_error(
    as_alice: Client, db: None, uri: str, message: str
) -> None:
    response = as_alice.post("/hosts/add/", {"slug": "bad", "uri": uri, "enabled": "on"})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Host.objects.exists()


def test_an_unreachable_host_may_be_kept_disabled(as_alice: Client, db: None) -> None:
    response = as_alice.post(
        "/hosts/add/", {"slug": "later", "uri": "qemu+tcp://127.0.0.1:1/system"}
    )
    assert response.status_code == 302
    assert not Host.objects.get(slug="later").enabled


def test_the_slug_add_is_reserved(as_alice: Client, db: None) -> None:
    response = as_alice.post("/hosts/add/", {"slug": "add", "uri": TESTNODE_URI, "enabled": "on"})
    assert response.status_code == 400
    assert not Host.objects.exists()


def test_an_admin_edits_disables_and_removes_a_host(as_alice: Client, lab: Host) -> None:
    response = as_alice.post(
        "/hosts/lab/edit/", {"slug": "lab", "name": "Renamed", "uri": TESTNODE_URI, "enabled": "on"}
    )
    assert response.status_code == 302
    assert Host.objects.get(slug="lab").name == "Renamed"
    as_alice.post("/hosts/lab/toggle/")
    assert not Host.objects.get(slug="lab").enabled
    assert 'data-name="web1"' not in as_alice.get("/domains/").content.decode()
    assert "Renamed" in as_alice.get("/hosts/").content.decode()  # listed under Disabled
    as_alice.post("/hosts/lab/toggle/")
    assert Host.objects.get(slug="lab").enabled
    assert "Remove host Renamed?" in as_alice.get("/hosts/lab/delete/").content.decode()
    assert Host.objects.filter(slug="lab").exists()  # the GET changed nothing
    as_alice.post("/hosts/lab/delete/")
    assert not Host.objects.filter(slug="lab").exists()
    actions = list(audit_entries().order_by("id").values_list("action", flat=True))
    assert actions == ["host-edit", "host-disable", "host-enable", "host-delete"]


def test_the_audit_page_lists_entries_newest_first(as_alice: Client, lab: Host) -> None:
    as_alice.post("/hosts/lab/domains/db/start/")
    as_alice.post("/hosts/lab/domains/web1/start/")  # refused: running
    page = as_alice.get("/audit/").content.decode()
    assert page.index("it is running") < page.index("11111111-0000-4000-8000-000000000002")
    assert "failed" in page and "succeeded" in page


def test_enabling_a_host_checks_it_as_adding_does(as_alice: Client, db: None) -> None:
    Host.objects.create(slug="down", uri="qemu+tcp://127.0.0.1:1/system", enabled=False)
    response = as_alice.post("/hosts/down/toggle/", follow=True)
    assert not Host.objects.get(slug="down").enabled
    assert "Cannot connect to qemu+tcp://127.0.0.1:1/system" in response.content.decode()
    entry = audit_entries().get()
    assert (entry.action, entry.outcome) == ("host-enable", "error")
    assert "Connection refused" in entry.message


def test_enabling_a_host_that_answers_enables_it(as_alice: Client, db: None) -> None:
    Host.objects.create(slug="back", uri=TESTNODE_URI, enabled=False)
    as_alice.post("/hosts/back/toggle/")
    assert Host.objects.get(slug="back").enabled
    assert audit_entries().get().outcome == "ok"


def test_saving_a_host_as_disabled_lands_on_the_host_list(as_alice: Client, lab: Host) -> None:
    response = as_alice.post("/hosts/lab/edit/", {"slug": "lab", "uri": TESTNODE_URI})
    assert response.status_code == 302 and response["Location"] == "/hosts/"
    assert as_alice.get(response["Location"]).status_code == 200


def test_a_host_edit_records_the_old_and_the_new_uri(
    as_alice: Client, lab: Host, settings: Any, tmp_path: Path
) -> None:
    settings.VMDASH_TEST_DRIVER_DIR = "/"
    (tmp_path / "other.xml").write_bytes((DATA / "testnode.xml").read_bytes())
    other = f"test://{tmp_path}/other.xml"
    as_alice.post("/hosts/lab/edit/", {"slug": "lab", "uri": other, "enabled": "on"})
    entry = audit_entries().get()
    assert (entry.action, entry.outcome) == ("host-edit", "ok")
    assert entry.message == f"{TESTNODE_URI} → {other}"


def test_a_refused_host_add_is_audited_with_the_uri(as_alice: Client, db: None) -> None:
    as_alice.post(
        "/hosts/add/", {"slug": "d", "uri": "qemu+tcp://127.0.0.1:1/system", "enabled": "on"}
    )
    as_alice.post("/hosts/add/", {"slug": "e", "uri": "qemu+ssh://root:pw@lab/system"})
    down, refused = audit_entries().order_by("id")
    assert (down.action, down.outcome) == ("host-add", "error")
    assert down.message.startswith("qemu+tcp://127.0.0.1:1/system: Cannot connect")
    assert (refused.action, refused.outcome) == ("host-add", "denied")
    assert refused.message.startswith("qemu+ssh://root:***@lab/system: ")
    assert "pw" not in refused.message  # the password is not kept


def test_the_test_driver_host_says_its_memory_is_nodeinfo(as_alice: Client, lab: Host) -> None:
    page = as_alice.get("/hosts/lab/").content.decode()
    assert 'data-memory-from="nodeinfo"' in page
    assert "This driver gives no memory statistics" in page
