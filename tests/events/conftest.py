"""Fixtures for the live-events tests.

- `layer`: a fresh in-memory channel layer; the events service off, so a test
  publishes exactly the messages it means to (consumer tests).
- `ws`: opens /ws/events/ through the real ASGI application (origin check,
  session auth) as a given Django test client's user.
- `redis_url`: Debian's redis-server on a free loopback port, for this test.
- `vmdash_server`: a real vmdash (Daphne subprocess) with any environment,
  which a test may stop and start again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from tests.browser.conftest import ADMIN, REPO, browser, free_port, run_manage  # noqa: F401 - fixture
from tests.servers import migrate
from vmdash.live.messages import LiveMessage, groups_for, to_message
from vmdash.live.recent import recorder
from vmdash.live.service import stop_embedded
from vmdash.virt.events import Change, HostStatus, ObjectEvent, ObjectKind

ORIGIN = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


@pytest.fixture
async def layer(settings: Any) -> AsyncIterator[Any]:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.VMDASH_EVENTS = "off"
    yield get_channel_layer()
    await settle("the recorder", recorder().stop())
    await settle("the embedded events service", stop_embedded())


async def settle(what: str, work: Any, timeout: float = 10) -> None:
    """Await teardown work, but fail (with where it hangs) instead of hanging."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        for pending in asyncio.all_tasks():
            pending.print_stack()
        pytest.fail(f"stopping {what} hung for {timeout:g} s")
    task.result()


@pytest.fixture
async def ws() -> AsyncIterator[Callable[..., Any]]:
    """ws(client) -> a connected WebsocketCommunicator for that client's login."""
    opened: list[WebsocketCommunicator] = []

    async def open_(client: Client | None = None) -> WebsocketCommunicator:
        from vmdash.asgi import application

        headers = list(ORIGIN)
        if client is not None and "sessionid" in client.cookies:
            headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
        comm = WebsocketCommunicator(application, "/ws/events/", headers=headers)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        opened.append(comm)
        return comm

    yield open_
    for comm in opened:
        if not comm.future.done():
            await comm.send_input({"type": "websocket.disconnect", "code": 1000})
            await settle("a consumer", asyncio.shield(comm.future))


class Publisher:
    """Publishes messages as the events service would, numbering them per host."""

    def __init__(self, layer: Any, epoch: str = "test0001") -> None:
        self.layer = layer
        self.epoch = epoch
        self.seq: dict[str, int] = {}

    def message(self, event: ObjectEvent | HostStatus, skip: int = 0) -> LiveMessage:
        seq = self.seq.get(event.host, 0) + 1 + skip
        self.seq[event.host] = seq
        return to_message(event, self.epoch, seq)

    async def publish(self, event: ObjectEvent | HostStatus, skip: int = 0) -> LiveMessage:
        message = self.message(event, skip)
        for group in groups_for(message):
            await self.layer.group_send(group, dict(message))
        return message

    async def domain(
        self, host: str, uuid: str, name: str, change: Change, detail: str = "", skip: int = 0
    ) -> LiveMessage:
        event = ObjectEvent(host, ObjectKind.DOMAIN, uuid, name, change, detail, "", time.time())
        return await self.publish(event, skip)

    async def host(self, host: str, up: bool) -> LiveMessage:
        return await self.publish(HostStatus(host, up, "", time.time()))


@pytest.fixture
def publisher(layer: Any) -> Publisher:
    return Publisher(layer)


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """Debian's redis-server on a free loopback port, no persistence; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is missing: apt-get install redis-server")
    port = free_port()
    args = ["--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [binary, *args, "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            out = subprocess.run(
                ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "ping"],
                capture_output=True,
                text=True,
            )
            if out.stdout.strip() == "PONG":
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private redis-server for this test."""
    with redis_server(tmp_path) as url:
        yield url


@dataclass
class VmdashProcess:
    """One process of a vmdash deployment (web or events) that can stop and start."""

    args: list[str]
    env: dict[str, str]
    log: Path
    url: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", *self.args],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if self.url:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{self.url}/accounts/login/", timeout=2)
                    return
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"vmdash did not start:\n{self.log.read_text()}", pytrace=False)
                    time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def logged(self, text: str) -> bool:
        return text in self.log.read_text()


@dataclass
class Deployment:
    data: Path
    env: dict[str, str]
    processes: list[VmdashProcess] = field(default_factory=list)

    def manage(self, *args: str) -> str:
        return run_manage(self.env, *args)

    def web(self, *extra: str, port: int | None = None) -> VmdashProcess:
        port = port or free_port()
        name = f"web-{len(self.processes)}"
        process = VmdashProcess(
            ["vmdash_run", "--port", str(port), *extra],
            self.env,
            self.data / f"{name}.log",
            url=f"http://127.0.0.1:{port}",
        )
        self.processes.append(process)
        process.start()
        return process

    def events(self) -> VmdashProcess:
        name = f"events-{len(self.processes)}"
        process = VmdashProcess(["vmdash_events"], self.env, self.data / f"{name}.log")
        self.processes.append(process)
        process.start()
        return process


def new_deployment(data: Path, **env: str) -> Deployment:
    """A fresh vmdash installation in `data`: database, admin, host 'local'."""
    full = {
        **os.environ,
        "VMDASH_DATA_DIR": str(data),
        "VMDASH_HOSTS": "local=qemu:///system",
        "VMDASH_ADMIN_USER": ADMIN[0],
        "VMDASH_ADMIN_PASSWORD": ADMIN[1],
        "VMDASH_CONSOLE_PROXY": "0",
        "VMDASH_EVENTS_MAX_BACKOFF": "1",
        "DJANGO_SETTINGS_MODULE": "vmdash.settings",
        **env,
    }
    deployment = Deployment(data, full)
    migrate(deployment.env)
    deployment.manage("vmdash_setup")
    return deployment


@pytest.fixture
def deployment(
    tmp_path_factory: pytest.TempPathFactory, system_conn: object
) -> Iterator[Callable[..., Deployment]]:
    """deployment(**env) -> a fresh vmdash installation (database, admin, host
    'local' = the real libvirtd) whose processes the test starts."""
    made: list[Deployment] = []

    def make(**env: str) -> Deployment:
        deployment = new_deployment(tmp_path_factory.mktemp("vmdash-live"), **env)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        for process in deployment.processes:
            process.stop()
