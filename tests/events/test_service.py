"""The watcher and the events service on libvirt's test driver.

test:///default is one world per process, shared by every connection to it:
changes made through one connection are events on another. Objects made
here are named vmdash-t-... and removed.
"""

from __future__ import annotations

import asyncio
import queue
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest

from tests.conftest import TESTNODE_URI
from vmdash.live.messages import host_group, object_group, status_group
from vmdash.live.service import EventService
from vmdash.virt.events import Change, Event, HostStatus, HostWatcher, ObjectEvent, ObjectKind
from vmdash.virt.refs import HostRef

DEMO = HostRef("demo", "test:///default")
REFUSED = HostRef("refused", "qemu+tcp://127.0.0.1:1/system")
XML = (
    "<domain type='test'><name>{name}</name><memory>65536</memory>"
    "<os><type arch='x86_64'>hvm</type></os></domain>"
)


@pytest.fixture
def demo() -> Iterator[libvirt.virConnect]:
    conn = libvirt.open(DEMO.uri)
    yield conn
    for dom in conn.listAllDomains():
        if dom.name().startswith("vmdash-t-"):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    conn.close()


@pytest.fixture
def watch() -> Iterator[Any]:
    started: list[HostWatcher] = []

    def start(host: HostRef, **kwargs: Any) -> queue.Queue[Event]:
        events: queue.Queue[Event] = queue.Queue()
        watcher = HostWatcher(host, events.put, **kwargs)
        watcher.start()
        started.append(watcher)
        return events

    yield start
    for watcher in started:
        watcher.stop(timeout=2)


def take(events: queue.Queue[Event], n: int, timeout: float = 5) -> list[Event]:
    return [events.get(timeout=timeout) for _ in range(n)]


def test_it_reports_what_happens_to_a_vm_as_typed_events(demo: Any, watch: Any) -> None:
    events = watch(DEMO)
    assert take(events, 1) == [HostStatus("demo", True, "", pytest.approx(time.time(), abs=5))]
    dom = demo.defineXML(XML.format(name="vmdash-t-typed"))
    dom.create()
    dom.suspend()
    dom.resume()
    dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_TITLE, "hello", None, None, 0)
    dom.destroy()
    dom.undefine()
    got = take(events, 7)
    assert all(isinstance(e, ObjectEvent) for e in got)
    assert [(e.change, e.detail, e.info) for e in got if isinstance(e, ObjectEvent)] == [
        (Change.DEFINED, "added", ""),
        (Change.STARTED, "booted", ""),
        (Change.SUSPENDED, "paused", ""),
        (Change.RESUMED, "unpaused", ""),
        (Change.METADATA_CHANGED, "", "title"),
        (Change.STOPPED, "destroyed", ""),
        (Change.UNDEFINED, "removed", ""),
    ]
    first = got[0]
    assert isinstance(first, ObjectEvent)
    assert (first.host, first.kind, first.name, first.uuid) == (
        "demo",
        ObjectKind.DOMAIN,
        "vmdash-t-typed",
        dom.UUIDString(),
    )


def test_it_reports_network_and_storage_pool_lifecycle(demo: Any, watch: Any) -> None:
    events = watch(DEMO)
    take(events, 1)
    net = demo.networkLookupByName("default")
    net.destroy()
    net.create()
    pool = demo.storagePoolLookupByName("default-pool")
    pool.destroy()
    pool.create()
    got = [e for e in take(events, 4) if isinstance(e, ObjectEvent)]
    assert [(e.kind, e.name, e.change) for e in got] == [
        (ObjectKind.NETWORK, "default", Change.STOPPED),
        (ObjectKind.NETWORK, "default", Change.STARTED),
        (ObjectKind.POOL, "default-pool", Change.STOPPED),
        (ObjectKind.POOL, "default-pool", Change.STARTED),
    ]


def test_an_unreachable_host_is_reported_down_once_and_retried(watch: Any) -> None:
    events = watch(REFUSED, min_backoff=0.05, max_backoff=0.1)
    down = events.get(timeout=5)
    assert isinstance(down, HostStatus) and not down.up
    assert "Cannot connect to refused" in down.message
    time.sleep(0.5)  # several attempts meanwhile, none reported again
    assert events.empty()


@pytest.fixture
def silent_host() -> Iterator[HostRef]:
    """A loopback port that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    yield HostRef("silent", f"qemu+tcp://127.0.0.1:{port}/system")
    stop.set()
    thread.join(2)
    for conn in accepted:
        conn.close()  # the watcher's stuck open() fails now and its thread ends
    listener.close()


def test_a_silent_host_does_not_hold_up_another(
    demo: Any, watch: Any, silent_host: HostRef
) -> None:
    silent = watch(silent_host)
    events = watch(DEMO)
    take(events, 1)
    demo.defineXML(XML.format(name="vmdash-t-unhindered"))
    (defined,) = take(events, 1)
    assert isinstance(defined, ObjectEvent) and defined.name == "vmdash-t-unhindered"
    assert silent.empty()  # still opening: it has not even failed yet


async def test_the_service_publishes_to_the_host_status_and_object_groups(
    demo: Any, settings: Any
) -> None:
    from channels.layers import InMemoryChannelLayer

    layer = InMemoryChannelLayer()
    listener = await layer.new_channel()
    dom = demo.defineXML(XML.format(name="vmdash-t-published"))
    uuid = dom.UUIDString()
    for group in (host_group("demo"), status_group("demo"), object_group("demo", "domain", uuid)):
        await layer.group_add(group, listener)
    service = EventService(layer, load_hosts=lambda: [DEMO], refresh_interval=0.2)
    task = asyncio.create_task(service.run())
    try:
        up = await asyncio.wait_for(layer.receive(listener), 5)
        assert (up["type"], up["kind"], up["change"], up["seq"]) == ("live.event", "host", "up", 1)
        # The same message again, through the status group:
        assert (await asyncio.wait_for(layer.receive(listener), 5))["id"] == up["id"]
        await asyncio.to_thread(dom.create)
        started = await asyncio.wait_for(layer.receive(listener), 5)
        assert (started["kind"], started["change"], started["uuid"], started["seq"]) == (
            "domain",
            "started",
            uuid,
            2,
        )
        assert started["id"] == f"{service.epoch}:demo:2"
        # ... and through the object group; nothing more:
        assert (await asyncio.wait_for(layer.receive(listener), 5))["id"] == started["id"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(listener), 0.3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_service_follows_the_host_list(demo: Any) -> None:
    from channels.layers import InMemoryChannelLayer

    hosts = [DEMO]
    service = EventService(InMemoryChannelLayer(), load_hosts=lambda: list(hosts))
    await service.refresh()
    first = service.watchers["demo"]
    hosts[:] = [HostRef("demo", TESTNODE_URI), REFUSED]  # another world: a new URI
    await service.refresh()
    assert set(service.watchers) == {"demo", "refused"}
    assert service.watchers["demo"] is not first  # the URI changed: a new watcher
    hosts[:] = []
    await service.refresh()
    assert service.watchers == {}
