"""Fixtures of the network pages: a test-driver world, and the real libvirtd.

Networks made on the real libvirtd are named vmdash-t-net-* and use
10.251.x.0/24 (and fd00:251::/48), ranges nothing else on this machine uses;
a test network lives only on this host's own bridge and sends nothing
elsewhere. `real_networks` removes such networks when first used (leftovers
of a crashed run) and at the end of the session; it touches nothing else.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.browser.conftest import browser  # noqa: F401 (one Chromium per session)
from tests.events.conftest import layer, publisher, ws  # noqa: F401 (the live tests' fixtures)
from tests.realhost import SYSTEM_URI, _quiet
from tests.servers import Vmdash, start_vmdash
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


@pytest.fixture
def dhcp_client() -> Iterator[Callable[[str, str, str], str]]:
    """A real DHCP client on a network's bridge: busybox udhcpc in a network
    namespace of this host, behind a veth pair (no guest of ours has a NIC
    driver). Returns the address it got; namespace and veth removed after."""
    made: list[tuple[str, str]] = []

    def ask(bridge: str, mac: str, hostname: str) -> str:
        n = len(made)
        ns, host_end, ns_end = f"vmdash-t-ns{n}", f"vmdt-h{n}", f"vmdt-g{n}"
        made.append((ns, host_end))
        for cmd in (
            ["ip", "netns", "add", ns],
            ["ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end],
            ["ip", "link", "set", ns_end, "netns", ns],
            ["ip", "link", "set", host_end, "master", bridge, "up"],
            ["ip", "netns", "exec", ns, "ip", "link", "set", ns_end, "address", mac, "up"],
        ):
            subprocess.run(cmd, check=True, capture_output=True)
        out = subprocess.run(
            ["ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", ns_end, "-n", "-q",
             "-t", "10", "-s", "/bin/true", "-x", f"hostname:{hostname}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        for line in (out.stdout + out.stderr).splitlines():
            if "lease of" in line:
                return line.split("lease of ")[1].split()[0]
        raise AssertionError(f"udhcpc got no lease: {out.stdout}{out.stderr}")

    yield ask
    for ns, host_end in made:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, real_networks: object) -> Iterator[Vmdash]:
    """vmdash in its own process, on the real libvirtd as host "local"."""
    srv = start_vmdash(tmp_path_factory.mktemp("vmdash-networks"))
    yield srv
    srv.stop()


OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"


def _forget_dead_ovs(run: Path = Path("/var/run/openvswitch")) -> None:
    """Remove pid files whose daemon is gone (the processes of an earlier session
    were killed; their pids may now be someone else's, and ovs-ctl would take that
    process for a running ovsdb-server and start nothing)."""
    for pidfile in run.glob("*.pid"):
        try:
            comm = Path(f"/proc/{int(pidfile.read_text())}/comm").read_text().strip()
        except (OSError, ValueError):
            comm = ""
        if comm != pidfile.stem[:15]:
            pidfile.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def ovs_bridge() -> Iterator[Callable[[str], str]]:
    """Makes Open vSwitch bridges (vmdash-t-ovs*: not vmdt-*, which the namespace
    sweep deletes with `ip link`, under OVS's feet) with ovs-vsctl, as an admin
    would before defining an OVS network; fresh each time, removed at the end.

    OVS runs without systemd: ovs-ctl starts ovsdb-server and ovs-vswitchd when
    they do not answer. This machine has no openvswitch kernel module, so the
    bridges use OVS's userspace datapath (datapath_type=netdev); libvirt does
    not care which datapath a bridge has.
    """
    if shutil.which("ovs-vsctl") is None or not Path(OVS_CTL).exists():
        pytest.fail("Open vSwitch is missing: scripts/ensure-system-packages installs "
                    "openvswitch-switch", pytrace=False)  # fmt: skip
    if subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True).returncode:
        _forget_dead_ovs()
        started = subprocess.run(
            [OVS_CTL, "start", "--system-id=random", "--no-mlockall", "--no-record-hostname"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert started.returncode == 0, f"ovs-ctl start: {started.stdout} {started.stderr}"
    made: list[str] = []

    def make(name: str) -> str:
        assert name.startswith("vmdash-t-ovs")
        subprocess.run(
            ["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", name, "--", "add-br", name, "--",
             "set", "bridge", name, "datapath_type=netdev"],
            check=True, capture_output=True,
        )  # fmt: skip
        made.append(name)
        return name

    yield make
    for name in made:
        subprocess.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", name])
