"""The connection pool: lazy, shared, reopened after failure; slow hosts fenced off."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import TESTNODE_URI
from vmdash.virt import domains
from vmdash.virt.connection import ConnectionPool, pool
from vmdash.virt.errors import HostUnavailable
from vmdash.virt.hosts import each_host
from vmdash.virt.refs import HostRef


def test_one_connection_serves_every_call() -> None:
    assert pool().get(TESTNODE_URI) is pool().get(TESTNODE_URI)


def test_a_dropped_connection_is_reopened_on_the_next_call() -> None:
    first = pool().get(TESTNODE_URI)
    pool().drop(TESTNODE_URI)
    second = pool().get(TESTNODE_URI)
    assert second is not first
    assert second.isAlive()


def test_a_failed_host_is_not_retried_before_the_interval() -> None:
    p = ConnectionPool(reconnect_interval=60)
    uri = "qemu+tcp://127.0.0.1:1/system"
    with pytest.raises(HostUnavailable) as first:
        p.get(uri)
    started = time.monotonic()
    with pytest.raises(HostUnavailable) as second:
        p.get(uri)
    assert second.value is first.value  # answered from memory, not by asking again
    assert time.monotonic() - started < 0.05


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A loopback port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"qemu+tcp://127.0.0.1:{server.getsockname()[1]}/system"
    stop.set()
    t.join()
    for s in accepted:
        s.close()
    server.close()


def test_a_silent_host_does_not_hold_up_the_others(silent_host: str) -> None:
    hosts = [HostRef("silent", silent_host), HostRef("lab", TESTNODE_URI)]
    started = time.monotonic()
    results = each_host(hosts, domains.list_domains, timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 5
    by_host = {r.host.slug: r for r in results}
    assert isinstance(by_host["silent"].error, HostUnavailable)
    assert "did not answer within 1 s" in str(by_host["silent"].error)
    assert by_host["lab"].value is not None and len(by_host["lab"].value) == 3


def test_a_silent_host_fails_its_pages_within_the_timeout(
    silent_host: str, as_alice, settings
) -> None:  # type: ignore[no-untyped-def]
    from vmdash.models import Host

    settings.VMDASH_HOST_TIMEOUT = 1
    Host.objects.create(slug="silent", uri=silent_host)
    for url, status in [("/hosts/silent/domains/web1/", 503), ("/domains/", 200), ("/", 200)]:
        started = time.monotonic()
        response = as_alice.get(url)
        assert response.status_code == status, url
        assert time.monotonic() - started < 3, url
        assert "within 1 s" in response.content.decode(), url


def open_threads(uri: str = "") -> list[threading.Thread]:
    """Threads blocked in libvirt.open (of `uri` only, when given: an earlier
    test's open of its own silent host may still be ending)."""
    return [t for t in threading.enumerate() if t.name.startswith("libvirt-open") and uri in t.name]


def test_a_silent_host_costs_one_blocked_open_however_often_it_is_asked(silent_host: str) -> None:
    p = ConnectionPool(reconnect_interval=0, connect_timeout=0.3)
    for _ in range(5):
        with pytest.raises(HostUnavailable):
            p.get(silent_host)
    callers = [threading.Thread(target=lambda: _fails(p, silent_host)) for _ in range(20)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert len(open_threads(silent_host)) == 1


def _fails(p: ConnectionPool, uri: str) -> None:
    with pytest.raises(HostUnavailable):
        p.get(uri)


def test_after_a_timeout_the_host_fails_at_once_saying_since_when(silent_host: str) -> None:
    p = ConnectionPool(reconnect_interval=0, connect_timeout=0.3)
    with pytest.raises(HostUnavailable) as first:
        p.get(silent_host)
    assert "no answer within 0.3 s" in str(first.value)
    with pytest.raises(HostUnavailable) as later:
        p.get(silent_host)
    assert "unreachable since" in str(later.value)
    assert "reconnects in the background" in str(later.value)


def test_a_second_caller_does_not_wait_out_a_pending_open(silent_host: str) -> None:
    p = ConnectionPool(reconnect_interval=0, connect_timeout=30, join_grace=0.1)
    first = threading.Thread(target=lambda: _fails(p, silent_host), daemon=True)
    first.start()
    while not open_threads(silent_host):
        time.sleep(0.01)
    with pytest.raises(HostUnavailable) as second:
        p.get(silent_host)
    assert "connecting since" in str(second.value)


def test_the_form_probe_opens_through_the_pool(silent_host: str, settings) -> None:  # type: ignore[no-untyped-def]
    from vmdash.virt.connection import probe, reset_pool

    settings.VMDASH_HOST_TIMEOUT = 0.3
    reset_pool()
    probes = [threading.Thread(target=_probe_fails, args=(probe, silent_host)) for _ in range(16)]
    for t in probes:
        t.start()
    for t in probes:
        t.join()
    assert len(open_threads(silent_host)) == 1
    assert probe(TESTNODE_URI) and pool().get(TESTNODE_URI) is pool().get(TESTNODE_URI)


def _probe_fails(probe, uri: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(HostUnavailable):
        probe(uri)


@pytest.mark.django_db(transaction=True)
def test_a_silent_host_leaves_the_vm_list_whole_under_load(silent_host: str, settings) -> None:  # type: ignore[no-untyped-def]
    """20 people load the VM list while others try to add the silent host (the issue's fault)."""
    from django.contrib.auth.models import User
    from django.test import Client

    from vmdash.models import Host

    settings.VMDASH_HOST_TIMEOUT = 1
    Host.objects.create(slug="lab", name="Lab", uri=TESTNODE_URI)
    Host.objects.create(slug="silent", uri=silent_host)
    User.objects.create_superuser("alice", password="alice-pw-1")
    baseline = threading.active_count()
    pages: list[str] = []

    def person(n: int) -> None:
        c = Client()
        c.force_login(User.objects.get(username="alice"))
        if n % 2:  # an "Add host" probe of the silent host, then the list
            c.post("/hosts/add/", {"slug": f"s{n}", "uri": silent_host, "enabled": "on"})
        for _ in range(2):
            pages.append(c.get("/domains/").content.decode())

    people = [threading.Thread(target=person, args=(n,)) for n in range(20)]
    for t in people:
        t.start()
    peak = threading.active_count()
    for t in people:
        t.join()
    assert len(pages) == 40
    assert all('data-name="web1"' in p and 'data-name="db"' in p for p in pages)
    assert threading.active_count() - baseline <= 16 + 2  # the host workers, one open, loop
    assert peak - baseline <= 20 + 16 + 2
    assert len(open_threads(silent_host)) <= 1
