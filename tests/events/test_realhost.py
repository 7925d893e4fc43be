"""Live events on the real libvirtd: the embedded service, the consumer and a
real guest changed with the libvirt API directly (not through vmdash)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from tests.events.test_service import silent_host  # noqa: F401 - fixture
from tests.realhost import libvirtd_pids, start_domain, start_libvirtd, stop_libvirtd
from vmdash.live.service import embedded_service
from vmdash.models import Host
from vmdash.virt.refs import HostRef

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.libvirtd]


@pytest.fixture
def embedded(layer: Any, settings: Any) -> Any:
    """The events service as `make run` runs it: inside this process, started
    by the first WebSocket; quick to reconnect for the test."""
    settings.VMDASH_EVENTS = "embedded"
    settings.VMDASH_EVENTS_MAX_BACKOFF = 1
    settings.VMDASH_RECONNECT_INTERVAL = 1
    return layer


@pytest.fixture
def local(db: None, system_conn: object) -> Host:
    return Host.objects.create(slug="local", name="This machine", uri="qemu:///system")


@pytest.fixture
def restart_afterwards() -> Iterator[None]:
    yield
    if not libvirtd_pids():
        start_libvirtd()


async def subscribe(comm: Any, regions: list[dict[str, str]]) -> None:
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "regions": regions}))


async def until(comm: Any, *texts: str, timeout: float = 30) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        pushed: str = await comm.receive_from(timeout=max(0.1, deadline - loop.time()))
        if all(t in pushed for t in texts):
            return pushed


async def seen(comm: Any, *wanted: tuple[str, ...], timeout: float = 30) -> list[str]:
    """Frames until each of `wanted` (texts that one frame holds together) was
    seen, in whatever order; the first frame for each."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    found: dict[int, str] = {}
    while len(found) < len(wanted):
        pushed: str = await comm.receive_from(timeout=max(0.1, deadline - loop.time()))
        for i, texts in enumerate(wanted):
            if i not in found and all(t in pushed for t in texts):
                found[i] = pushed
    return [found[i] for i in range(len(wanted))]


async def connected(comm: Any, guest_uuid: str, host: str = "local") -> None:
    """Subscribed to the guest's row and header, with the service watching."""
    regions = [
        {"region": "domain-row", "host": host, "uuid": guest_uuid},
        {"region": "domain-header", "host": host, "uuid": guest_uuid},
    ]
    await subscribe(comm, regions)  # the first WebSocket started the service
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        service = embedded_service()
        watcher = service.watchers.get(host) if service else None
        if watcher is not None and watcher.connected.is_set():
            break
        assert loop.time() < deadline, "the events service did not connect"
        await asyncio.sleep(0.05)
    await comm.send_to(
        text_data=json.dumps({"type": "subscribe", "regions": regions, "resync": True})
    )
    await until(comm, f"<!-- vmdash-live resync {host} -->")


def uuid_of(guest: Any) -> str:
    return str(guest.dom().UUIDString())


async def test_a_change_made_with_libvirt_directly_reaches_the_page(
    embedded: Any, ws: Any, local: Host, as_alice: Client, make_guest: Any
) -> None:
    guest = await sync_to_async(make_guest)()
    uuid = await sync_to_async(uuid_of)(guest)
    comm = await ws(as_alice)
    await connected(comm, uuid)

    await sync_to_async(lambda: start_domain(guest.dom()))()
    # The row and the detail header (table rows travel in a frame of their own).
    pushed, _head = await seen(
        comm, (f'id="dom-{uuid}"', 'data-state="running"'), (f'id="dom-head-{uuid}"',)
    )
    assert 'data-op="shutdown"' in pushed and 'data-op="start"' not in pushed
    toast = await until(comm, "data-live-toast")
    assert f"{guest.name} was started outside vmdash." in toast

    await sync_to_async(lambda: guest.dom().destroy())()
    pushed = await until(comm, f'id="dom-{uuid}"', 'data-state="shutoff"')
    assert 'data-op="start"' in pushed
    toast = await until(comm, "data-live-toast")
    assert f"{guest.name} was forced off outside vmdash." in toast


@pytest.mark.restarts_libvirtd
async def test_the_stream_resumes_with_a_resync_after_libvirtd_restarts(
    embedded: Any,
    ws: Any,
    local: Host,
    as_alice: Client,
    make_guest: Any,
    restart_afterwards: None,
) -> None:
    guest = await sync_to_async(make_guest)()
    uuid = await sync_to_async(uuid_of)(guest)
    comm = await ws(as_alice)
    await connected(comm, uuid)

    await sync_to_async(stop_libvirtd)()
    await until(comm, "Host This machine is unreachable")
    await sync_to_async(start_libvirtd)()
    resync, back = await seen(
        comm,
        ("<!-- vmdash-live resync local -->", f'id="dom-{uuid}"'),
        ("Host This machine is back",),
    )
    assert 'data-state="shutoff"' in resync and "data-live-toast" in back

    await sync_to_async(lambda: start_domain(guest.dom()))()
    await until(comm, f'id="dom-{uuid}"', 'data-state="running"')
    await sync_to_async(lambda: guest.dom().destroy())()
    await until(comm, f'id="dom-{uuid}"', 'data-state="shutoff"')


async def test_an_unreachable_second_host_does_not_delay_the_first(
    embedded: Any,
    ws: Any,
    local: Host,
    as_alice: Client,
    make_guest: Any,
    silent_host: HostRef,  # noqa: F811 - the fixture
) -> None:
    await sync_to_async(Host.objects.create)(slug="silent", name="Silent", uri=silent_host.uri)
    await sync_to_async(Host.objects.create)(
        slug="refused", name="Refused", uri="qemu+tcp://127.0.0.1:1/system"
    )
    guest = await sync_to_async(make_guest)()
    uuid = await sync_to_async(uuid_of)(guest)
    comm = await ws(as_alice)
    await connected(comm, uuid)
    service = embedded_service()
    assert service is not None and set(service.watchers) == {"local", "silent", "refused"}

    await sync_to_async(
        lambda: guest.dom().setMetadata(
            libvirt.VIR_DOMAIN_METADATA_TITLE, "still live", None, None, 0
        )
    )()
    pushed = await until(comm, f'id="dom-{uuid}"', "still live", timeout=10)
    assert pushed
    # ... while the silent host is still being opened: it holds nobody up.
    assert not service.watchers["silent"].connected.is_set()
    assert service.watchers["local"].connected.is_set()
