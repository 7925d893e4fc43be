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
