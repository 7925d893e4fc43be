"""Storage tests on the real libvirtd: dir pools named vmdash-t-pool-* under a temp dir.

A session fixture removes every vmdash-t-pool-* pool (and its volumes) when
the first test of this package starts and after the last one; nothing else
is touched.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest
from django.test import Client

from vmdash.models import Host

POOL_PREFIX = "vmdash-t-pool-"


def remove_pool(p: libvirt.virStoragePool) -> None:
    for step in (
        lambda: [v.delete(0) for v in p.listAllVolumes(0)] if p.isActive() else None,
        lambda: p.destroy() if p.isActive() else None,
        p.undefine,
    ):
        try:
            step()
        except libvirt.libvirtError:
            pass


def sweep(conn: libvirt.virConnect) -> None:
    for p in conn.listAllStoragePools(0):
        if p.name().startswith(POOL_PREFIX):
            remove_pool(p)


@pytest.fixture(scope="session", autouse=True)
def _sweep_pools(system_conn: libvirt.virConnect) -> Iterator[None]:
    sweep(system_conn)
    yield
    sweep(system_conn)


@pytest.fixture
def local(db: None, system_conn: libvirt.virConnect) -> Host:
    """The real libvirtd as a vmdash host."""
    return Host.objects.create(slug="local", name="This machine", uri="qemu:///system")


@pytest.fixture
def pool_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vmdash-t-storage-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_pool(
    system_conn: libvirt.virConnect, pool_dir: Path
) -> Iterator[Callable[[], libvirt.virStoragePool]]:
    """A started dir pool vmdash-t-pool-<random> in a temp dir, made with libvirt directly."""
    made: list[libvirt.virStoragePool] = []

    def make() -> libvirt.virStoragePool:
        name = f"{POOL_PREFIX}{uuid.uuid4().hex[:8]}"
        path = pool_dir / name
        xml = f"<pool type='dir'><name>{name}</name><target><path>{path}</path></target></pool>"
        p = system_conn.storagePoolDefineXML(xml, 0)
        p.build(0)
        p.create(0)
        made.append(p)
        return p

    yield make
    for p in made:
        remove_pool(p)


@pytest.fixture
def client(as_alice: Client) -> Client:
    return as_alice


# The browser test uses the one server and the one Chromium of tests/browser.
from tests.browser.conftest import browser, page, server  # noqa: E402, F401
