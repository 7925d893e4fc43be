"""Fixtures of the network pages: a test-driver world, and the real libvirtd.

Networks made on the real libvirtd are named vmdash-t-net-* and use
10.251.x.0/24 (and fd00:251::/48), ranges nothing else on this machine uses;
a test network lives only on this host's own bridge and sends nothing
elsewhere. `real_networks` removes such networks when first used (leftovers
of a crashed run) and at the end of the session; it touches nothing else.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.events.conftest import layer, publisher, ws  # noqa: F401 (the live tests' fixtures)
from tests.realhost import SYSTEM_URI, _quiet
from vmdash.models import Host

WORLD_URI = f"test://{Path(__file__).parent / 'world.xml'}"
NET_PREFIX = "vmdash-t-net-"


@pytest.fixture
def world(db: None, settings: Any) -> Host:
    """A host on the test driver: networks lan (NAT, DHCP, one static host) and
    quiet (isolated), both active; VM web1 (running) on lan, db (shut off) on quiet."""
    settings.VMDASH_TEST_DRIVER_DIR = str(Path(__file__).parent)  # where world.xml is
    return Host.objects.create(slug="world", name="World", uri=WORLD_URI)


def world_conn() -> libvirt.virConnect:
    """A raw connection to the same world as the pool's (the test driver keeps
    one world per URI per process, until every connection to it is closed)."""
    return libvirt.open(WORLD_URI)


def sweep_namespaces() -> None:
    """Remove the DHCP clients' namespaces (vmdash-t-ns*) and veths (vmdt-*) of a crashed run."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        ns = line.split(" ")[0]
        if ns.startswith("vmdash-t-ns"):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True).stdout or "[]")
    for link in links:
        if str(link.get("ifname", "")).startswith("vmdt-"):
            subprocess.run(["ip", "link", "del", link["ifname"]], capture_output=True)


def sweep(conn: libvirt.virConnect) -> None:
    """Remove every vmdash-t-net-* network (and leftover DHCP clients); nothing else."""
    sweep_namespaces()
    for net in conn.listAllNetworks(0):
        if not net.name().startswith(NET_PREFIX):
            continue
        for call in (net.destroy, net.undefine):
            try:
                call()
            except libvirt.libvirtError:
                continue


@pytest.fixture(scope="session")
def real_networks() -> Iterator[Callable[[], libvirt.virConnect]]:
    """Fresh raw connections to the real libvirtd, with vmdash-t-net-* swept."""
    libvirt.registerErrorHandler(_quiet, None)
    try:
        conn = libvirt.open(SYSTEM_URI)
    except libvirt.libvirtError as err:
        pytest.fail(f"libvirtd does not answer on {SYSTEM_URI} ({err}).", pytrace=False)
    sweep(conn)
    yield lambda: libvirt.open(SYSTEM_URI)
    sweep(libvirt.open(SYSTEM_URI))


@pytest.fixture
def local(db: None, real_networks: object) -> Host:
    """The real libvirtd as a vmdash host."""
    return Host.objects.create(slug="local", name="This machine", uri=SYSTEM_URI)
