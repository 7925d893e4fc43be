"""The serial console consumer on the real libvirtd: relaying, busy, take over, refusals."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User

from tests.console.conftest import ConsoleGuest, grant_console
from vmdash.console.consumers import CLOSE_DENIED, CLOSE_ENDED, CLOSE_UNAVAILABLE
from vmdash.console.models import ConsoleSession
from vmdash.models import AuditEntry, Host
from vmdash.routing import websocket_urlpatterns

pytestmark = [pytest.mark.libvirtd, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def local(db: None) -> Host:
    return Host.objects.create(slug="local", uri="qemu:///system")


@pytest.fixture
def dave(db: None) -> User:
    """A second superuser."""
    return User.objects.create_superuser("dave", password="dave-pw-1")


class Console:
    def __init__(self, comm: WebsocketCommunicator) -> None:
        self.comm = comm
        self.text = ""
        self.statuses: list[dict[str, Any]] = []
        self.close_code: int | None = None

    async def _next(self, timeout: float) -> None:
        message = await self.comm.receive_output(timeout)
        if message["type"] == "websocket.close":
            self.close_code = message.get("code")
            raise ConnectionError(f"closed {self.close_code}")
        if message.get("bytes") is not None:
            self.text += message["bytes"].decode(errors="replace")
        else:
            self.statuses.append(json.loads(message["text"]))

    async def status(self, timeout: float = 10) -> dict[str, Any]:
        seen = len(self.statuses)
        while len(self.statuses) == seen:
            await self._next(timeout)
        return self.statuses[-1]

    async def until(self, needle: str, timeout: float = 20) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while needle not in self.text:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{needle!r} not in {self.text[-500:]!r}")
            await self._next(left)

    async def send(self, text: str) -> None:
        await self.comm.send_to(bytes_data=text.encode())

    async def closed(self, timeout: float = 10) -> int | None:
        try:
            while True:
                await self._next(timeout)
        except ConnectionError:
            return self.close_code


async def open_console(user: Any, vm: str, query: str = "") -> Console:
    comm = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/hosts/local/domains/{vm}/serial/{query}"
    )
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    return Console(comm)


async def test_it_relays_the_serial_console_both_ways(
    local: Host, alice: User, running_a: ConsoleGuest
) -> None:
    console = await open_console(alice, running_a.name)
    assert (await console.status())["state"] == "connected"
    await console.send("\r")
    await console.until("vmdash-guest# ")
    await console.send("echo vmdash-$((6*7))\r")
    await console.until("vmdash-42")
    await console.comm.disconnect()

    session = await database_sync_to_async(ConsoleSession.objects.get)()
    assert (session.kind, session.username, session.vm_name) == ("serial", "alice", running_a.name)
    assert session.ended_at is not None
    actions = await database_sync_to_async(
        lambda: list(
            AuditEntry.objects.filter(object_name=running_a.name)
            .order_by("id")
            .values_list("action", "message")
        )
    )()
    assert [a for a, _ in actions] == ["console-open", "console-close"]
    assert actions[1][1].startswith("serial console closed after ")


async def test_a_second_viewer_is_told_it_is_busy_and_may_take_over(
    local: Host, alice: User, dave: User, running_a: ConsoleGuest
) -> None:
    first = await open_console(alice, running_a.name)
    assert (await first.status())["state"] == "connected"

    second = await open_console(dave, running_a.name)
    busy = await second.status()
    assert busy["state"] == "busy"
    assert "in use by alice" in busy["message"]
    assert await second.closed() == CLOSE_UNAVAILABLE

    third = await open_console(dave, running_a.name, "?force=1")
    assert (await third.status())["state"] == "connected"
    taken = await first.status()
    assert taken["state"] == "taken-over"
    assert "dave took over" in taken["message"]
    assert await first.closed() == CLOSE_ENDED
    await third.send("echo still-$((6*7))\r")
    await third.until("still-42")
    await third.comm.disconnect()


async def test_view_only_input_never_reaches_the_guest(
    local: Host, alice: User, running_a: ConsoleGuest
) -> None:
    watcher = await open_console(alice, running_a.name, "?view_only=1")
    status = await watcher.status()
    assert status["state"] == "connected" and status["view_only"] is True
    await watcher.send("echo vmdash-ro-$((6*7))\r")
    await asyncio.sleep(0.5)
    await watcher.comm.disconnect()

    typist = await open_console(alice, running_a.name)
    await typist.status()
    await typist.send("echo vmdash-rw-$((6*7))\r")
    await typist.until("vmdash-rw-42")
    await typist.comm.disconnect()
    assert "vmdash-ro-42" not in running_a.serial()


async def test_a_vm_without_a_serial_port_gets_a_clear_message(
    local: Host, alice: User, guest_bare: ConsoleGuest
) -> None:
    console = await open_console(alice, guest_bare.name)
    status = await console.status()
    assert status["state"] == "no-serial"
    assert "has no serial console" in status["message"]
    assert await console.closed() == CLOSE_UNAVAILABLE


async def test_a_vm_that_is_not_running_gets_a_clear_message(
    local: Host, alice: User, guest_off: ConsoleGuest
) -> None:
    console = await open_console(alice, guest_off.name)
    status = await console.status()
    assert status["state"] == "not-running"
    assert "is not running" in status["message"]


async def test_a_vm_that_stops_under_the_console_is_reported(
    local: Host, alice: User, running_b: ConsoleGuest
) -> None:
    console = await open_console(alice, running_b.name)
    assert (await console.status())["state"] == "connected"
    await asyncio.to_thread(running_b.stop)
    status = await console.status(timeout=20)
    assert status["state"] == "stopped"
    assert "The VM stopped" in status["message"]
    assert await console.closed() == CLOSE_ENDED


@pytest.mark.parametrize("who", ["nobody", "bob", "charlie"])
async def test_strangers_are_refused(
    local: Host, bob: User, charlie: User, running_a: ConsoleGuest, who: str
) -> None:
    user = {"nobody": AnonymousUser(), "bob": bob, "charlie": charlie}[who]
    console = await open_console(user, running_a.name)
    assert (await console.status())["state"] == "denied"
    assert await console.closed() == CLOSE_DENIED
    assert not await database_sync_to_async(ConsoleSession.objects.exists)()


async def test_a_view_only_grant_in_the_policy_alone_rules_the_serial_console(
    local: Host,
    bob: User,
    running_a: ConsoleGuest,
    guest_off: ConsoleGuest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grant_console(monkeypatch, "bob", running_a.name, full=False)
    watcher = await open_console(bob, running_a.name)  # asked for a full console
    status = await watcher.status()
    assert status["state"] == "connected" and status["view_only"] is True
    await watcher.comm.disconnect()
    session = await database_sync_to_async(ConsoleSession.objects.get)(username="bob")
    assert session.view_only and session.vm_uuid == running_a.dom().UUIDString()
    other = await open_console(bob, guest_off.name)
    assert (await other.status())["state"] == "denied"
