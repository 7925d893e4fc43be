"""The sampler's numbers over /ws/events/ (issue 13): a tick reaches a page
only for the charts and load bars it shows, and only for what its user may
see. Ticks are sent as the stats sampler sends them (live/ticks.py's
publish_tick on the channel layer); the rights are real grants."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client

from tests.events.test_consumer import DB, WEB1, subscribe
from vmdash.access.models import Grant, Role
from vmdash.live.ticks import publish_tick, relay, tick_message
from vmdash.models import Host

pytestmark = pytest.mark.django_db(transaction=True)


async def watched(host: str = "lab", timeout: float = 10.0) -> None:
    """Until the subscription reached the relay (a loaded machine takes its time)."""
    deadline = time.monotonic() + timeout
    while not relay().watchers.get(host):
        assert time.monotonic() < deadline, "the page's charts never reached the relay"
        await asyncio.sleep(0.05)


async def unwatched(host: str = "lab", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while relay().watchers.get(host):
        assert time.monotonic() < deadline, "the page still follows the host's ticks"
        await asyncio.sleep(0.05)


def chart(uuid: str, region: str = "domain-chart") -> dict[str, str]:
    return {"region": region, "host": "lab", "uuid": uuid}


HOST_CHART = {"region": "host-chart", "host": "lab"}


async def tick(layer: Any, at: float = 1000.0) -> None:
    points = {WEB1: [at, 12.5, 1024.0], DB: [at, 80.0, 2048.0], "": [at, 40.0, 4096.0]}
    names = {WEB1: "web1", DB: "db", "": "lab"}
    await publish_tick(layer, tick_message("lab", at, 2.0, points, names))


async def frames(comm: Any, timeout: float = 1.5) -> list[dict[str, Any]]:
    """The tick frames sent until `timeout` passes without any (receive_nothing:
    a timed-out receive would cancel the consumer)."""
    got: list[dict[str, Any]] = []
    while not await comm.receive_nothing(timeout=timeout):
        text = await comm.receive_from()
        if text.startswith('{"vmdash-tick"'):
            got.append(json.loads(text))
    return got


@pytest.fixture
def as_dora(lab: Host) -> Client:
    """A Viewer of web1 alone."""
    dora = User.objects.create_user("dora", password="dora-pw-1")
    Grant.objects.create(
        role=Role.objects.get(slug="viewer"), user=dora, scope="vm", host="lab",
        object_uuid=WEB1, object_name="web1",
    )  # fmt: skip
    client = Client()
    client.force_login(dora)
    return client


async def test_a_page_with_charts_gets_the_points_of_what_it_shows(
    layer: Any, ws: Any, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, chart(WEB1), HOST_CHART)
    await watched()
    await tick(layer)
    [frame] = await frames(comm)
    assert frame["host"] == "lab" and frame["interval"] == 2.0
    assert frame["points"] == {WEB1: [1000.0, 12.5, 1024.0], "": [1000.0, 40.0, 4096.0]}


async def test_a_page_without_charts_or_bars_gets_no_ticks(
    layer: Any, ws: Any, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, {"region": "domain-row", "host": "lab", "uuid": WEB1})
    await asyncio.sleep(1.0)  # its subscription processed (it joins no relay: nothing to wait for)
    await tick(layer)
    assert await frames(comm) == []


async def test_a_viewer_of_one_vm_gets_its_points_and_none_of_the_others(
    layer: Any, ws: Any, lab: Host, as_dora: Client
) -> None:
    comm = await ws(as_dora)
    await subscribe(comm, chart(WEB1, "domain-load"), chart(DB, "domain-load"), HOST_CHART)
    await watched()
    await tick(layer)
    [frame] = await frames(comm)
    # Not db's. The host's own figures as the host's graphs page decides
    # (/hosts/lab/stats/, the door's VIEW on the host), whatever that is.
    host_page = await sync_to_async(as_dora.get)("/hosts/lab/stats/")
    assert set(frame["points"]) == {WEB1} | ({""} if host_page.status_code == 200 else set())


async def test_a_grant_taken_back_stops_the_points(
    layer: Any, ws: Any, lab: Host, as_dora: Client
) -> None:
    comm = await ws(as_dora)
    await subscribe(comm, chart(WEB1))
    await watched()
    await tick(layer, 1000.0)
    assert len(await frames(comm)) == 1
    await sync_to_async(lambda: Grant.objects.filter(user__username="dora").delete())()
    await unwatched()  # the consumer heard of the change: dora sees nothing of lab now
    await tick(layer, 1002.0)
    assert await frames(comm, timeout=2.5) == []


async def test_closed_pages_leave_the_relay(
    layer: Any, ws: Any, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, chart(WEB1))
    await watched()
    await comm.disconnect()
    assert not relay().watchers.get("lab")
