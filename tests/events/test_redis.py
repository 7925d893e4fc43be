"""The Redis deployment: web processes and an events process that share one
real redis-server (Debian's, on a free loopback port) and the real libvirtd."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import libvirt
import pytest

from tests.browser.conftest import ADMIN
from tests.events.conftest import Deployment, VmdashProcess
from tests.events.wsclient import WsClient, event_id, login_cookies
from tests.realhost import wait_until

pytestmark = [pytest.mark.libvirtd]
TITLES = [f"title {i}" for i in range(5)]


async def listen(web: VmdashProcess, uuid: str) -> WsClient:
    client = await WsClient.connect(web.url, login_cookies(web.url, *ADMIN))
    await client.subscribe([{"region": "domain-row", "host": "local", "uuid": uuid}], resync=True)
    await client.receive_until(lambda t: "resync" in t)  # subscribed: its groups are joined
    return client


def retitle(guest: Any, title: str) -> None:
    guest.dom().setMetadata(libvirt.VIR_DOMAIN_METADATA_TITLE, title, None, None, 0)


async def change_and_collect(guest: Any, clients: list[WsClient]) -> list[list[str]]:
    """Retitle the guest with each of TITLES (libvirt API, directly); the event
    ids each client then received."""
    for title in TITLES:
        await asyncio.to_thread(retitle, guest, title)
        await asyncio.sleep(0.05)
    got = await asyncio.gather(*(c.drain(quiet=1.5) for c in clients))
    for frames in got:
        # Each push shows the state re-read after its event: the titles in order.
        shown = [next(t for t in TITLES if f">{t}<" in f.text) for f in frames]
        assert shown == TITLES
    return [[event_id(f.text) for f in frames] for frames in got]


def watching(process: VmdashProcess) -> bool:
    return process.logged("events: watching local")


def test_each_event_reaches_a_client_on_each_web_process_exactly_once(
    deployment: Any, redis_url: str, make_guest: Any
) -> None:
    d: Deployment = deployment(REDIS_URL=redis_url)
    events = d.events()
    webs = [d.web("--no-events"), d.web("--no-events")]
    guest = make_guest()
    uuid = guest.dom().UUIDString()
    wait_until(lambda: watching(events), 30, "the events process to watch libvirtd")

    async def scenario() -> list[list[str]]:
        clients = [await listen(web, uuid) for web in webs]
        try:
            return await change_and_collect(guest, clients)
        finally:
            for client in clients:
                await client.close()

    ids = asyncio.run(scenario())
    assert len(ids[0]) == len(TITLES) and len(set(ids[0])) == len(TITLES)  # once each
    assert ids[1] == ids[0]  # the same events, from the one events process
    for web in webs:
        assert not web.logged("events service")  # no web process ran a service of its own


def test_a_second_events_process_stands_by_and_takes_over(
    deployment: Any, redis_url: str, make_guest: Any
) -> None:
    d: Deployment = deployment(REDIS_URL=redis_url)
    web = d.web()  # starts an events process beside it, as `make run` does
    wait_until(lambda: watching(web), 30, "the events process of the web process")
    standby = d.events()
    wait_until(lambda: standby.logged("standing by"), 30, "the second process to stand by")
    guest = make_guest()
    uuid = guest.dom().UUIDString()

    async def once() -> list[str]:
        client = await listen(web, uuid)
        try:
            return (await change_and_collect(guest, [client]))[0]
        finally:
            await client.close()

    ids = asyncio.run(once())
    assert len(set(ids)) == len(ids) == len(TITLES)  # two processes, still once each

    web.stop()  # and its events process with it: the lock is released
    started = time.monotonic()
    wait_until(lambda: watching(standby), 30, "the standby to take over")
    assert time.monotonic() - started < 15
    web2 = d.web("--no-events")
    ids = asyncio.run(_once_on(web2, guest, uuid))
    assert len(set(ids)) == len(ids) == len(TITLES)


async def _once_on(web: VmdashProcess, guest: Any, uuid: str) -> list[str]:
    client = await listen(web, uuid)
    try:
        return (await change_and_collect(guest, [client]))[0]
    finally:
        await client.close()
