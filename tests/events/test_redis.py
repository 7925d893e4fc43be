"""The Redis deployment: web processes and an events process that share one
real redis-server (Debian's, on a free loopback port) and the real libvirtd."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.browser.conftest import ADMIN, free_port
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
        # Each push shows the state re-read after its event: never an older title
        # than the push before, and the last one at the end. (On a loaded host
        # the re-read after "title 1" may already find "title 2".)
        shown = [TITLES.index(next(t for t in TITLES if f">{t}<" in f.text)) for f in frames]
        assert shown == sorted(shown) and shown[-1] == len(TITLES) - 1, shown
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


class Redis:
    """Debian's redis-server on one port that can be killed and started again
    (a Redis that dies and comes back keeps its address)."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: self._pong(), 10, "redis-server to answer")

    def _pong(self) -> bool:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
        )
        return out.stdout.strip() == "PONG"

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    server = Redis(tmp_path)
    server.start()
    yield server
    server.kill()


def _get(web: VmdashProcess, cookies: dict[str, str], path: str) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{web.url}{path}", headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_redis_dying_mid_run_leaves_the_pages_and_the_live_stream_comes_back(
    deployment: Any, redis: Redis, make_guest: Any
) -> None:
    d: Deployment = deployment(REDIS_URL=redis.url)
    web = d.web()
    wait_until(lambda: watching(web), 30, "the events process of the web process")
    guest = make_guest()
    uuid = guest.dom().UUIDString()
    cookies = login_cookies(web.url, *ADMIN)

    async def before() -> WsClient:
        return await listen(web, uuid)

    async def closes(client: WsClient) -> int | None:
        """The open live connection ends (the page then says "reconnecting")."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if await client.receive(deadline - time.monotonic()) is None:
                    return client.close_code
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                return client.close_code
        raise AssertionError("the live connection stayed open without its channel layer")

    loop = asyncio.new_event_loop()
    try:
        client = loop.run_until_complete(before())
        redis.kill()
        # Pages still say what libvirt says; nothing answers 500. (A list that
        # says a host did not answer is read again; its alert is in the failure
        # message. Once it was another worker's VM vanishing mid-list, fixed in
        # virt/domains.list_domains.)
        status, body = _get(web, cookies, "/domains/")
        deadline = time.monotonic() + 20
        while "host-unreachable" in body and time.monotonic() < deadline:
            status, body = _get(web, cookies, "/domains/")
        alerts = re.findall(r'role="alert"><span>([^<]*)', body)
        assert status == 200 and f'id="dom-{uuid}"' in body and guest.name in body, alerts
        assert 'data-state="shutoff"' in body.split(f'id="dom-{uuid}"', 1)[1].split("</tr>")[0]
        for path in ("/", "/hosts/local/", f"/hosts/local/domains/{guest.name}/"):
            assert _get(web, cookies, path)[0] == 200, path
        assert _get(web, cookies, "/hosts/local/stats/?range=10m")[0] in (200, 503)
        loop.run_until_complete(closes(client))

        redis.start()

        async def back() -> list[str]:
            deadline = time.monotonic() + 30
            while True:
                try:
                    again = await listen(web, uuid)
                    break
                except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                    assert time.monotonic() < deadline, "the live stream never came back"
                    await asyncio.sleep(1)
            try:
                return (await change_and_collect(guest, [again]))[0]
            finally:
                await again.close()

        ids = loop.run_until_complete(back())
        assert len(set(ids)) == len(ids) >= 1  # events flow again, each once
    finally:
        loop.close()


def test_a_killed_events_process_is_replaced_by_the_standby_within_the_locks_time(
    deployment: Any, redis_url: str, make_guest: Any
) -> None:
    """SIGKILL leaves the publisher's lock in Redis: the standby takes it when
    it expires (10 s), and each event still reaches a page once."""
    d: Deployment = deployment(REDIS_URL=redis_url)
    first = d.events()
    wait_until(lambda: watching(first), 30, "the first events process")
    standby = d.events()
    wait_until(lambda: standby.logged("standing by"), 30, "the second process to stand by")
    web = d.web("--no-events")
    guest = make_guest()
    uuid = guest.dom().UUIDString()
    assert first.proc is not None
    first.proc.kill()
    first.proc.wait(10)
    killed = time.monotonic()
    wait_until(lambda: watching(standby), 30, "the standby to take over")
    assert time.monotonic() - killed < 15  # the lock's 10 s and a renewal period at most
    ids = asyncio.run(_once_on(web, guest, uuid))
    assert len(set(ids)) == len(ids) == len(TITLES)
