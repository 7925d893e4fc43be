"""The events WebSocket ends when the login behind it ends (issue 7 §3): a
logout, or an administrator deactivating the account, closes the socket with
4401 within seconds, not at the next 30-second check. A real vmdash (Daphne)
and a real WebSocket over loopback."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.events.wsclient import WsClient
from tests.security.conftest import ADMIN, Browserless
from tests.servers import Vmdash

CLOSED_WITHIN = 5.0


async def _closed_after(client: WsClient, act: object) -> float:
    """Seconds from `act()` until the server closed the socket with 4401."""
    await client.subscribe([{"region": "domain-table"}])
    await client.drain(quiet=0.5)
    started = time.monotonic()
    deadline = started + CLOSED_WITHIN + 1

    async def until_closed() -> None:
        while client.close_code is None and time.monotonic() < deadline:
            try:
                await client.receive(timeout=deadline - time.monotonic())
            except TimeoutError:
                break

    # Read while the logout runs: the close frame can come before the logout's
    # response, and a reader that waits for that response may find only the
    # reset of a close it never answered (asyncio then drops the frame).
    reading = asyncio.create_task(until_closed())
    await asyncio.to_thread(act)  # type: ignore[arg-type]
    await reading
    assert client.close_code == 4401, f"still open (close code {client.close_code})"
    return time.monotonic() - started


def _cookies(person: Browserless) -> dict[str, str]:
    return {c.name: c.value or "" for c in person.jar}


async def test_a_logout_closes_the_events_socket_within_seconds(person: Browserless) -> None:
    assert person.login(*ADMIN) == 302
    client = await WsClient.connect(person.srv.url, _cookies(person))
    try:
        took = await _closed_after(client, lambda: person.request("/accounts/logout/", {}))
    finally:
        await client.close()
    assert took < CLOSED_WITHIN


async def test_deactivating_an_account_closes_its_events_socket_within_seconds(
    vmdash_demo: Vmdash,
) -> None:
    name = f"eve{int(time.time() * 1000) % 100000}"
    vmdash_demo.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_superuser({name!r}, password='eve-pw-123456')",
    )
    eve, admin = Browserless(vmdash_demo), Browserless(vmdash_demo)
    assert eve.login(name, "eve-pw-123456") == 302
    assert admin.login(*ADMIN) == 302
    client = await WsClient.connect(vmdash_demo.url, _cookies(eve))
    try:
        took = await _closed_after(client, lambda: admin.request(f"/users/{name}/active/", {}))
    finally:
        await client.close()
    assert took < CLOSED_WITHIN


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
