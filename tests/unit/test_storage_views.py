"""The storage pages on libvirt's test driver: pools, volumes, the door, the audit."""

from __future__ import annotations

import libvirt
import pytest
from django.test import Client

from storage.models import IsoLibrary
from tests.conftest import TESTNODE_URI, audit_entries
from vmdash.models import Host
from vmdash.virt.connection import pool as connections

pytestmark = pytest.mark.django_db


def _conn() -> libvirt.virConnect:
    """The test driver keeps its world per connection: look through vmdash's own."""
    return connections().get(TESTNODE_URI)


def _make_pool(client: Client, name: str = "images", path: str = "/vmdash-t/images") -> None:
    r = client.post(
        "/hosts/lab/storage/new/",
        {"name": name, "type": "dir", "target_path": path, "autostart": "on", "build": "on"},
    )
    assert r.status_code == 302, r.content.decode()[:2000]


def test_it_lists_the_pools_of_a_host_with_their_space(as_alice: Client, lab: Host) -> None:
    _make_pool(as_alice)
    page = as_alice.get("/hosts/lab/storage/").content.decode()
    assert "images" in page and "free" in page and "/vmdash-t/images" in page


def test_it_creates_a_started_autostarted_dir_pool_and_audits_its_xml(
    as_alice: Client, lab: Host
) -> None:
    _make_pool(as_alice)
    p = _conn().storagePoolLookupByName("images")
    assert p.isActive() and p.autostart()
    entry = audit_entries().get(action="pool-create")
    assert entry.outcome == "ok" and entry.object_uuid == p.UUIDString()
    assert "<path>/vmdash-t/images</path>" in entry.diff


def test_it_shows_only_the_fields_of_the_chosen_type(as_alice: Client, lab: Host) -> None:
    r = as_alice.get("/hosts/lab/storage/new/?type=netfs&name=x", HTTP_HX_REQUEST="true")
    page = r.content.decode()
    assert 'name="source_host"' in page and 'name="source_dir"' in page
    assert 'name="source_name"' not in page
    r = as_alice.get("/hosts/lab/storage/new/?type=logical", HTTP_HX_REQUEST="true")
    assert 'name="source_name"' in r.content.decode()
    assert 'name="source_dir"' not in r.content.decode()


def test_it_refuses_a_pool_form_without_the_fields_of_its_type(as_alice: Client, lab: Host) -> None:
    r = as_alice.post("/hosts/lab/storage/new/", {"name": "nfs1", "type": "netfs"})
    assert r.status_code == 400
    assert "nfs1" not in _conn().listStoragePools() + _conn().listDefinedStoragePools()
    assert audit_entries().get(action="pool-create").outcome == "error"


@pytest.mark.parametrize("name", ["a/b", "..", "x" * 300, "bad\nname"])
def test_it_refuses_pool_names_libvirt_cannot_take(as_alice: Client, lab: Host, name: str) -> None:
    r = as_alice.post(
        "/hosts/lab/storage/new/", {"name": name, "type": "dir", "target_path": "/tmp/x"}
    )
    assert r.status_code == 400


def test_it_stops_starts_and_deletes_a_pool(as_alice: Client, lab: Host) -> None:
    _make_pool(as_alice)
    assert as_alice.post("/hosts/lab/storage/images/stop/").status_code == 302
    assert not _conn().storagePoolLookupByName("images").isActive()
    page = as_alice.get("/hosts/lab/storage/").content.decode()
    assert "inactive" in page
    assert as_alice.post("/hosts/lab/storage/images/start/").status_code == 302
    assert as_alice.post("/hosts/lab/storage/images/autostart-off/").status_code == 302
    assert not _conn().storagePoolLookupByName("images").autostart()
    r = as_alice.post("/hosts/lab/storage/images/delete/")
    assert r.status_code == 302 and r["Location"].endswith("/delete/confirm/")
    r = as_alice.post("/hosts/lab/storage/images/delete/", {"confirm": "images"})
    assert r.status_code == 302
    assert "images" not in _conn().listStoragePools() + _conn().listDefinedStoragePools()
    actions = list(audit_entries().values_list("action", flat=True))
    assert {"pool-stop", "pool-start", "pool-autostart-off", "pool-delete"} <= set(actions)


def test_the_delete_confirmation_names_the_volumes_that_go(as_alice: Client, lab: Host) -> None:
    _make_pool(as_alice)
    as_alice.post(
        "/hosts/lab/storage/images/volumes/new/", {"name": "disk1", "format": "raw", "size": "1G"}
    )
    page = as_alice.get("/hosts/lab/storage/images/delete/confirm/").content.decode()
    assert "disk1" in page and "with_storage" in page


def test_it_htmx_answers_a_pool_op_with_the_table(as_alice: Client, lab: Host) -> None:
    _make_pool(as_alice)
    r = as_alice.post("/hosts/lab/storage/images/refresh/", HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and 'id="pool-table-lab"' in r.content.decode()


def test_it_marks_one_pool_per_host_as_the_iso_library(as_alice: Client, lab: Host) -> None:
    _make_pool(as_alice, "a", "/vmdash-t/a")
    _make_pool(as_alice, "b", "/vmdash-t/b")
    as_alice.post("/hosts/lab/storage/a/iso-library/", {"on": "1"})
    as_alice.post("/hosts/lab/storage/b/iso-library/", {"on": "1"})
    only = IsoLibrary.objects.get(host="lab")
    assert only.pool_uuid == _conn().storagePoolLookupByName("b").UUIDString()
    assert "ISO library" in as_alice.get("/hosts/lab/storage/b/").content.decode()


def test_it_rejects_get_on_every_mutation(as_alice: Client, lab: Host) -> None:
    _make_pool(as_alice)
    for op in ("start", "stop", "refresh", "delete", "autostart-on", "iso-library", "volumes/new"):
        assert as_alice.get(f"/hosts/lab/storage/images/{op}/").status_code == 405, op


def test_bob_sees_no_pool_and_changes_none(as_bob: Client, lab: Host, as_alice: Client) -> None:
    _make_pool(as_alice)
    assert as_bob.get("/hosts/lab/storage/").status_code == 404
    assert as_bob.post("/hosts/lab/storage/images/stop/").status_code == 404
    assert _conn().storagePoolLookupByName("images").isActive()


# Volumes


def _vol(client: Client, name: str, fmt: str = "qcow2", size: str = "1 GiB", **more: str):
    return client.post(
        "/hosts/lab/storage/images/volumes/new/",
        {"name": name, "format": fmt, "size": size, **more},
    )


def test_it_creates_a_qcow2_volume_of_the_size_asked(as_alice: Client, lab: Host) -> None:
    _make_pool(as_alice)
    assert _vol(as_alice, "disk1.qcow2", size="20 GiB").status_code == 302
    vol = _conn().storagePoolLookupByName("images").storageVolLookupByName("disk1.qcow2")
    assert vol.info()[1] == 20 * 2**30
    assert "<format type='qcow2'/>" in vol.XMLDesc(0)
    assert audit_entries().get(action="volume-create").outcome == "ok"


def test_it_creates_a_qcow2_overlay_on_a_backing_volume(as_alice: Client, lab: Host) -> None:
    _make_pool(as_alice)
    _vol(as_alice, "base.qcow2")
    assert _vol(as_alice, "top.qcow2", backing="base.qcow2").status_code == 302
    xml = _conn().storagePoolLookupByName("images").storageVolLookupByName("top.qcow2").XMLDesc(0)
    assert "<path>/vmdash-t/images/base.qcow2</path>" in xml


@pytest.mark.parametrize("size", ["0", "-5G", "lots", "1 EiB", "2E", ""])
def test_it_refuses_sizes_no_pool_can_hold(as_alice: Client, lab: Host, size: str) -> None:
    _make_pool(as_alice)
    r = _vol(as_alice, "v", size=size)
    assert r.status_code == 400
    assert _conn().storagePoolLookupByName("images").numOfVolumes() == 0
    assert audit_entries().get(action="volume-create").outcome == "error"


@pytest.mark.parametrize("name", ["a/b", "..", ".hidden", "x" * 300, "tab\there"])
def test_it_refuses_volume_names_that_are_not_file_names(
    as_alice: Client, lab: Host, name: str
) -> None:
    _make_pool(as_alice)
    assert _vol(as_alice, name).status_code == 400


@pytest.mark.parametrize("name", ["with space", 'it\'s "quoted"', "ünï cödé"])
def test_it_takes_names_with_spaces_quotes_and_non_ascii(
    as_alice: Client, lab: Host, name: str
) -> None:
    _make_pool(as_alice)
    assert _vol(as_alice, name).status_code == 302
    page = as_alice.get("/hosts/lab/storage/images/").content.decode()
    from django.utils.html import escape

    assert escape(name) in page
    from urllib.parse import quote

    assert as_alice.get(f"/hosts/lab/storage/images/volumes/{quote(name)}/").status_code == 200


def test_it_pages_and_searches_the_volumes(as_alice: Client, lab: Host) -> None:
    _make_pool(as_alice)
    p = _conn().storagePoolLookupByName("images")
    for i in range(130):
        p.createXML(f"<volume><name>v{i:03}</name><capacity>1024</capacity></volume>", 0)
    page = as_alice.get("/hosts/lab/storage/images/").content.decode()
    assert 'data-volume="v049"' in page and 'data-volume="v050"' not in page
    assert "page 1 of 3" in page
    page = as_alice.get("/hosts/lab/storage/images/?page=2").content.decode()
    assert 'data-volume="v050"' in page and 'data-volume="v049"' not in page
    assert 'data-volume="v100"' not in page
    page = as_alice.get("/hosts/lab/storage/images/?q=v12", HTTP_HX_REQUEST="true").content
    assert b'data-volume="v125"' in page and b'data-volume="v099"' not in page
    assert b"10 of 130 volumes" in page


def test_it_deletes_a_volume_after_confirmation(as_alice: Client, lab: Host) -> None:
    _make_pool(as_alice)
    _vol(as_alice, "gone")
    r = as_alice.post("/hosts/lab/storage/images/volumes/gone/delete/")
    assert r.status_code == 302 and "confirm" in r["Location"]
    r = as_alice.post("/hosts/lab/storage/images/volumes/gone/delete/", {"confirm": "gone"})
    assert r.status_code == 302
    assert _conn().storagePoolLookupByName("images").numOfVolumes() == 0


def test_an_inactive_pool_says_so_instead_of_listing(as_alice: Client, lab: Host) -> None:
    _make_pool(as_alice)
    as_alice.post("/hosts/lab/storage/images/stop/")
    page = as_alice.get("/hosts/lab/storage/images/").content.decode()
    assert "inactive" in page


def test_a_pool_that_does_not_exist_is_a_404(as_alice: Client, lab: Host) -> None:
    assert as_alice.get("/hosts/lab/storage/nope/").status_code == 404
    assert as_alice.get("/hosts/lab/storage/nope/volumes/x/").status_code == 404
