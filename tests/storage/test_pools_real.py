"""Pools on the real libvirtd: made, refused and removed as a person would, checked
through libvirt directly."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import libvirt
import pytest
from django.test import Client

from tests.conftest import audit_entries
from tests.storage.conftest import POOL_PREFIX
from vmdash.models import Host


def _names(conn: libvirt.virConnect) -> set[str]:
    return {p.name() for p in conn.listAllStoragePools(0)}


def test_it_creates_builds_and_starts_a_dir_pool(
    client: Client, local: Host, system_conn: libvirt.virConnect, pool_dir: Path
) -> None:
    name = f"{POOL_PREFIX}{uuid.uuid4().hex[:8]}"
    r = client.post(
        "/hosts/local/storage/new/",
        {"name": name, "type": "dir", "target_path": str(pool_dir / "new"), "build": "on"},
    )
    assert r.status_code == 302, r.content.decode()[-3000:]
    p = system_conn.storagePoolLookupByName(name)
    assert p.isActive() and not p.autostart() and (pool_dir / "new").is_dir()
    page = client.get("/hosts/local/storage/").content.decode()
    assert name in page and "free" in page


def test_a_pool_whose_path_cannot_be_made_leaves_nothing_defined(
    client: Client, local: Host, system_conn: libvirt.virConnect, pool_dir: Path
) -> None:
    blocker = pool_dir / "a-file"
    blocker.write_text("not a directory")
    name = f"{POOL_PREFIX}{uuid.uuid4().hex[:8]}"
    r = client.post(
        "/hosts/local/storage/new/",
        {"name": name, "type": "dir", "target_path": str(blocker / "sub"), "build": "on"},
    )
    assert r.status_code in (400, 409, 502), r.status_code
    assert 'role="alert"' in r.content.decode()
    assert name not in _names(system_conn)
    entry = audit_entries().get(action="pool-create")
    assert entry.outcome == "error" and entry.object_name == name


def test_a_pool_path_that_does_not_exist_without_build_is_refused(
    client: Client, local: Host, system_conn: libvirt.virConnect, pool_dir: Path
) -> None:
    name = f"{POOL_PREFIX}{uuid.uuid4().hex[:8]}"
    r = client.post(
        "/hosts/local/storage/new/",
        {"name": name, "type": "dir", "target_path": str(pool_dir / "missing")},
    )
    assert r.status_code >= 400
    assert name not in _names(system_conn)


def test_an_nfs_server_that_does_not_answer_is_said_in_time_and_nothing_stays(
    client: Client, local: Host, system_conn: libvirt.virConnect, pool_dir: Path, settings
) -> None:
    settings.VMDASH_HOST_TIMEOUT = 3
    name = f"{POOL_PREFIX}{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    r = client.post(
        "/hosts/local/storage/new/",
        {
            "name": name,
            "type": "netfs",
            "source_host": "192.0.2.1",  # TEST-NET-1: nobody answers there
            "source_dir": "/export",
            "target_path": str(pool_dir / "nfs"),
            "build": "on",
        },
    )
    assert time.monotonic() - began < 3 + 2
    assert r.status_code >= 400 and 'role="alert"' in r.content.decode()
    deadline = time.monotonic() + 240  # a mount that hangs gives up on its own
    while name in _names(system_conn) and time.monotonic() < deadline:
        time.sleep(1)
    assert name not in _names(system_conn)


def test_it_deletes_a_pool_with_its_directory_and_volumes(
    client: Client,
    local: Host,
    system_conn: libvirt.virConnect,
    make_pool: Callable[[], libvirt.virStoragePool],
) -> None:
    p = make_pool()
    path = Path(libvirt_path(p))
    p.createXML("<volume><name>v1</name><capacity>1048576</capacity></volume>", 0)
    page = client.get(f"/hosts/local/storage/{p.name()}/delete/confirm/").content.decode()
    assert "v1" in page
    r = client.post(
        f"/hosts/local/storage/{p.name()}/delete/", {"confirm": p.name(), "with_storage": "on"}
    )
    assert r.status_code == 302
    assert p.name() not in _names(system_conn) and not path.exists()
    assert audit_entries().get(action="pool-delete-with-storage").outcome == "ok"


def libvirt_path(p: libvirt.virStoragePool) -> str:
    from lxml import etree

    return str(etree.fromstring(p.XMLDesc(0).encode()).findtext("target/path"))


@pytest.mark.parametrize("op", ["stop", "start", "refresh", "autostart-on", "autostart-off"])
def test_pool_operations_reach_libvirt(
    client: Client, local: Host, make_pool: Callable[[], libvirt.virStoragePool], op: str
) -> None:
    p = make_pool()
    if op == "start":
        p.destroy()
    assert client.post(f"/hosts/local/storage/{p.name()}/{op}/").status_code == 302
    expected = {
        "stop": lambda: not p.isActive(),
        "start": lambda: p.isActive(),
        "refresh": lambda: p.isActive(),
        "autostart-on": lambda: p.autostart(),
        "autostart-off": lambda: not p.autostart(),
    }
    assert expected[op]()
