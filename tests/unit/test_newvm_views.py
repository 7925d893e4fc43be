"""The new-VM wizard on libvirt's test driver (test:///default: a pool, a network):
rights, messages next to fields, a create job that leaves a defined VM, and nothing
left behind when the form is refused."""

from __future__ import annotations

import time
import uuid
from typing import Any

import libvirt
import pytest
from django.test import Client

from tests.conftest import audit_entries
from tests.unit.test_grants import grant, logged_in, person
from vmdash.models import Host

# Jobs write their audit entry from a thread: real transactions. (The built-in
# roles come back after each flush: vmdash/access/builtin.py.)
pytestmark = pytest.mark.django_db(transaction=True)
URL = "/hosts/demo/domains/new/"


@pytest.fixture
def demo(db: None) -> Host:
    return Host.objects.create(slug="demo", name="Demo", uri="test:///default")


def _name() -> str:
    return f"vmdash-t-{uuid.uuid4().hex[:8]}"


def _post(name: str, **changes: Any) -> dict[str, Any]:
    data = {
        "name": name, "os_id": "linux2022", "source": "kernel", "kernel": "/boot/vmlinuz",
        "memory_mib": "256", "vcpus": "1", "new_disk": "on", "disk_pool": "default-pool",
        "disk_gib": "1", "disk_format": "qcow2", "disk_bus": "virtio", "network": "default",
        "nic_model": "virtio", "firmware": "bios", "machine": "q35", "serial": "on",
    }  # fmt: skip
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _volumes(pool: str = "default-pool") -> set[str]:
    conn = libvirt.open("test:///default")
    return set(conn.storagePoolLookupByName(pool).listVolumes())


def _wait(client: Client, url: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page = client.get(url).content.decode()
        if 'data-state="running"' not in page:
            return page
        time.sleep(0.1)
    raise AssertionError("the create job did not end")


def test_the_page_offers_osinfo_defaults(as_alice: Client, demo: Host) -> None:
    page = as_alice.get(URL + "?os=ubuntu22.04").content.decode()
    assert 'name="memory_mib" value="3072"' in page  # 4096 recommended; the host has 3072
    assert 'name="vcpus" value="2"' in page
    assert 'name="disk_gib" value="25"' in page
    assert "Accelerator:" in page


def test_a_user_without_grants_does_not_see_the_wizard(as_bob: Client, demo: Host) -> None:
    assert as_bob.get(URL).status_code == 404
    assert as_bob.post(URL, _post(_name())).status_code == 404


def test_it_creates_a_vm_with_a_new_volume_as_a_job(as_alice: Client, demo: Host) -> None:
    name = _name()
    response = as_alice.post(URL, _post(name))
    assert response.status_code == 302, response.content.decode()[:2000]
    page = _wait(as_alice, response["Location"])
    assert 'data-state="done"' in page, page
    conn = libvirt.open("test:///default")
    xml = conn.lookupByName(name).XMLDesc(0)
    assert "<kernel>/boot/vmlinuz</kernel>" in xml
    assert f"{name}.qcow2" in _volumes()
    time.sleep(0.1)  # the audit entry is written right after the state
    assert audit_entries().filter(action="vm-create", outcome="ok").exists()


def test_a_taken_name_is_said_next_to_the_field_and_nothing_is_made(
    as_alice: Client, demo: Host
) -> None:
    before = _volumes()
    response = as_alice.post(URL, _post("test"))  # test:///default's own VM
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="field-name"' in page and "already a VM" in page
    assert _volumes() == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"memory_mib": "99999999"}, "memory_mib"),
        ({"vcpus": "10000"}, "vcpus"),
        ({"vcpus": "0"}, "vcpus"),
        ({"disk_gib": "100000"}, "disk_gib"),
        ({"name": "a/b"}, "name"),
        ({"name": "x" * 300}, "name"),
        ({"firmware": "uefi"}, "firmware"),
        ({"source": "iso"}, "iso"),
        ({"source": "kernel", "kernel": ""}, "kernel"),
    ],
)
def test_bad_input_gets_a_message_next_to_its_field(
    as_alice: Client, demo: Host, changes: dict[str, str], field: str
) -> None:
    before = _volumes()
    response = as_alice.post(URL, {**_post(_name()), **changes})
    assert response.status_code == 400
    page = response.content.decode()
    start = page.index(f'id="field-{field}"')
    assert "error-text" in page[start : page.index("</div>", start)], field
    assert _volumes() == before


def test_show_the_xml_defines_nothing(as_alice: Client, demo: Host) -> None:
    name = _name()
    page = as_alice.post(URL, _post(name, preview="1")).content.decode()
    assert "&lt;domain type=" in page
    conn = libvirt.open("test:///default")
    assert name not in conn.listDefinedDomains()


def test_an_operator_may_not_create(demo: Host) -> None:
    u = person("olga")
    grant("operator", user=u, scope="host", host="demo")
    assert logged_in(u).get(URL).status_code == 403


def test_a_vm_admin_creates_without_a_new_disk_but_a_new_disk_needs_pool_rights(
    demo: Host,
) -> None:
    u = person("vera")
    grant("vm-admin", user=u, scope="host", host="demo")
    client = logged_in(u)
    assert client.post(URL, _post(_name())).status_code == 403  # new volume: manage-storage
    response = client.post(URL, _post(_name(), new_disk=None))
    assert response.status_code == 302
    assert 'data-state="done"' in _wait(client, response["Location"])


def test_the_import_page_defines_and_says_libvirt_kept_everything(
    as_alice: Client, demo: Host
) -> None:
    name = _name()
    xml = (
        f"<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory>"
        "<os><type>hvm</type></os></domain>"
    )
    page = as_alice.post("/hosts/demo/domains/import/", {"xml": xml}).content.decode()
    assert 'id="import-result"' in page
    assert name in libvirt.open("test:///default").listDefinedDomains()


@pytest.mark.parametrize("xml", ["not xml", "<network><name>n</name></network>"])
def test_the_import_page_refuses_what_is_not_a_domain(
    as_alice: Client, demo: Host, xml: str
) -> None:
    response = as_alice.post("/hosts/demo/domains/import/", {"xml": xml})
    assert response.status_code == 400 and "error-text" in response.content.decode()
