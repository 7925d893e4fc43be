"""Every route of the URLconf and of the WebSocket router goes through the door.

The routes are read from Django's resolver and from vmdash.routing, not
listed by hand: a new view or consumer that forgets to ask the policy makes
this file fail (bob, a user with no grants, would get a 200 or an open
socket). Routes open to every logged-in person are named below, with why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from vmdash.models import Host
from vmdash.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db

# Open to every logged-in person; what they list is filtered by the policy
# (tests/unit/test_permissions.py checks that bob sees nothing in them).
# me, me-password: their own page and password; me-two-factor*: their own second factor.
OPEN_TO_ALL = {"overview", "domain-list", "host-list", "me", "me-password"} | {
    "me-two-factor", "me-two-factor-confirm", "me-two-factor-codes", "me-two-factor-off"
}  # fmt: skip
# Django's own: auth and the admin (which has its own staff check).
DJANGO_PREFIXES = ("accounts/", "admin/")
VALUES = {"host": "lab", "name": "db", "op": "start", "tab": "overview"}


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            yield route, p.name or ""


def _fill(route: str, everything: str = "") -> str:
    """The route with a value for each part: VALUES, or `everything` for each <str:...>."""

    def value(m: re.Match[str]) -> str:
        if everything and m.group(1) == "str":
            return everything
        return VALUES.get(m.group(2), "x")

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


ROUTES = sorted(
    {(r, n) for r, n in _routes(get_resolver().url_patterns) if not r.startswith(DJANGO_PREFIXES)}
)
GUARDED = [(r, n) for r, n in ROUTES if n not in OPEN_TO_ALL]


def test_the_urlconf_was_read() -> None:
    names = {n for _r, n in ROUTES}
    assert {"domain-detail", "domain-start", "host-edit", "domain-console-ticket"} <= names


@pytest.mark.parametrize(("route", "name"), GUARDED, ids=[n or r for r, n in GUARDED])
def test_a_user_without_grants_is_refused_by_every_view(
    as_bob: Client, lab: Host, route: str, name: str
) -> None:
    url = _fill(route)
    for response in (as_bob.get(url), as_bob.post(url, {"confirm": "db"})):
        assert response.status_code in (403, 404, 405), (url, response.status_code)


@pytest.mark.parametrize(("route", "name"), ROUTES, ids=[n or r for r, n in ROUTES])
def test_a_name_libvirt_cannot_take_is_a_404_not_a_500(
    as_alice: Client, lab: Host, route: str, name: str
) -> None:
    if "<str:" not in route:
        return
    url = _fill(route, everything="db%00x")
    assert as_alice.get(url).status_code in (404, 405)
    assert as_alice.post(url, {"confirm": "db\x00x"}).status_code in (404, 405)


def _ws_routes() -> list[str]:
    return [str(p.pattern) for p in websocket_urlpatterns]


# Every WebSocket route, and what a user without grants gets from it.
WS_EXPECT = {
    "ws/events/": "open",  # per-event policy: tests/events/test_consumer.py
    "ws/hosts/<slug:host>/domains/<str:name>/serial/": "denied",
    "ws/hosts/<slug:host>/storage/<str:name>/upload/": "denied",
}


def test_every_websocket_route_is_classified() -> None:
    assert set(_ws_routes()) == set(WS_EXPECT)


async def _connect(user: User, path: str) -> tuple[bool, list[str]]:
    """Connect as `user`; (still open after a second, what the server said)."""
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    said: list[str] = []
    while connected and not await comm.receive_nothing(1):
        message = await comm.receive_output()
        if message["type"] == "websocket.close":
            connected = False
        elif message.get("text"):
            said.append(message["text"])
    await comm.disconnect()
    return connected, said


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("route", sorted(WS_EXPECT))
async def test_a_user_without_grants_gets_no_socket_to_an_object(
    bob: User, lab: Host, route: str
) -> None:
    path = _fill(route)
    stays_open, said = await _connect(bob, path)
    if WS_EXPECT[route] == "denied":
        assert not stays_open
        assert any("denied" in s for s in said), said
    else:
        assert stays_open and not said  # nothing is sent before a subscription


@pytest.mark.django_db(transaction=True)
async def test_a_nul_in_a_serial_console_name_is_refused_not_a_crash(
    alice: User, lab: Host
) -> None:
    stays_open, said = await _connect(alice, "/ws/hosts/lab/domains/db%00x/serial/")
    assert not stays_open
    assert any("denied" in s for s in said), said
