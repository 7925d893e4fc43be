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

from tests.conftest import TESTNODE_URI
from tests.unit.test_grants import dora, erin, frank
from vmdash.models import Host
from vmdash.routing import websocket_urlpatterns
from vmdash.virt.connection import pool as connections

__all__ = ["dora", "erin", "frank"]  # personas (tests/unit/test_grants.py), used by name

pytestmark = pytest.mark.django_db

# Open to every logged-in person; what they list is filtered by the policy
# (tests/unit/test_permissions.py checks that bob sees nothing in them).
# me, me-password: their own page and password; me-two-factor*: their own second factor.
# me-language: Django's set_language, only a cookie.
OPEN_TO_ALL = {"overview", "domain-list", "host-list", "me", "me-password", "me-language"} | {
    "me-two-factor", "me-two-factor-confirm", "me-two-factor-codes", "me-two-factor-off"
}  # fmt: skip
# The API (api/): its schema and docs page describe code, no object; its
# lists are filtered like the pages' (tests/api/test_door.py walks every API
# operation for five personas, with valid bodies).
OPEN_TO_ALL |= {"api-schema", "api-docs", "api-root", "host_list", "vm_list"}
# me-token-add: one's own API token (people/tokens.py); bounded by one's own rights.
OPEN_TO_ALL |= {"me-token-add"}
# Django's own: auth and the admin (which has its own staff check).
DJANGO_PREFIXES = ("accounts/", "admin/")
VALUES = {
    "host": "lab",
    "name": "db",
    "op": "start",
    "tab": "overview",
    "volume": "disk",
    "pk": "1",
}


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
    # The Access tab of each object kind, and giving and taking back grants there.
    tabs = {
        f"access-{k}{a}" for k in ("host", "vm", "pool", "network") for a in ("", "-add", "-remove")
    }
    assert tabs <= {n for _r, n in GUARDED}


@pytest.fixture
def world(lab: Host) -> None:
    """A pool and a network named like the VM (`db`), and a volume in the pool, so that
    every <name> of every app names a real object: a view that skipped the door would
    answer 200, not libvirt's 404."""
    conn = connections().get(TESTNODE_URI)
    pool = conn.storagePoolDefineXML(
        "<pool type='dir'><name>db</name><target><path>/vmdash-t/db</path></target></pool>"
    )
    pool.create()
    pool.createXML(
        "<volume><name>disk</name><capacity>1048576</capacity>"
        "<target><format type='raw'/></target></volume>"
    )
    conn.networkDefineXML(
        "<network><name>db</name><bridge name='virbr-db'/>"
        "<ip address='10.77.0.1' prefix='24'/></network>"
    ).create()


def _refused(client: Client, route: str) -> None:
    url = _fill(route)
    for response in (client.get(url), client.post(url, {"confirm": "db"})):
        refused = (403, 404, 405)
        if route.startswith("api/v1/") and response.request["REQUEST_METHOD"] == "POST":
            refused += (400, 422)  # the API reads a JSON body before the view runs
        assert response.status_code in refused, (url, response.status_code)


@pytest.mark.parametrize(("route", "name"), GUARDED, ids=[n or r for r, n in GUARDED])
def test_a_user_without_grants_is_refused_by_every_view(
    as_bob: Client, world: None, route: str, name: str
) -> None:
    _refused(as_bob, route)


@pytest.mark.parametrize(("route", "name"), GUARDED, ids=[n or r for r, n in GUARDED])
def test_a_grant_that_ended_opens_no_view(frank: User, world: None, route: str, name: str) -> None:
    _refused(_client(frank), route)


NAMED = [(r, n) for r, n in GUARDED if "<str:name>" in r]


@pytest.mark.parametrize(("route", "name"), NAMED, ids=[n or r for r, n in NAMED])
def test_seeing_a_host_through_one_vm_opens_nothing_else_of_it(
    dora: User, world: None, route: str, name: str
) -> None:
    """dora views web1, so she sees host lab: not its VM db, pool db, network db."""
    _refused(_client(dora), route)


# Changes of storage, networks, hosts and access: an Operator of the host sees these
# objects and may change none of them.
NOT_AN_OPERATORS = [
    (r, n)
    for r, n in GUARDED
    if n.startswith(("pool-", "volume-", "network-", "host-", "access-", "grant-", "storage-"))
]


@pytest.mark.parametrize(("route", "name"), NOT_AN_OPERATORS, ids=[n for _r, n in NOT_AN_OPERATORS])
def test_an_operator_of_the_host_changes_no_storage_network_host_or_grant(
    erin: User, world: None, route: str, name: str
) -> None:
    """erin sees pool db and network db (Operator on host lab): a door that asked
    only for VIEW where it should ask more lets her POST; it must not."""
    response = _client(erin).post(_fill(route), {"confirm": "db"})
    assert response.status_code in (403, 404, 405), (route, response.status_code)


def _client(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


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
