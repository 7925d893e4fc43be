"""Network rows and headers follow libvirt's network events (on the test driver).

Messages are published as the events service would; the consumer re-reads
the network by UUID and pushes its partial, with buttons only for those who
may manage networks.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from tests.events.conftest import Publisher
from vmdash.models import Host
from vmdash.virt.events import Change, ObjectEvent, ObjectKind
from vmdash.virt.networks import Op, run_op

pytestmark = pytest.mark.django_db(transaction=True)
LAN = "22222222-0000-4000-8000-000000000001"
QUIET = "22222222-0000-4000-8000-000000000002"


async def subscribe(comm: Any, region: str, uuid: str) -> None:
    regions = [{"region": region, "host": "world", "uuid": uuid}]
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "regions": regions, "query": ""}))
    await asyncio.sleep(0.1)


async def pushed_until(comm: Any, text: str) -> str:
    for _ in range(10):
        got = await comm.receive_from(timeout=5)
        if text in got:
            return str(got)
    raise AssertionError(f"nothing with {text!r} was pushed")


async def run(world: Host, name: str, op: Op) -> None:
    await sync_to_async(lambda: run_op(world.ref, name, op), thread_sensitive=False)()


async def test_a_row_follows_a_network_that_stopped(
    layer: Any, ws: Any, publisher: Publisher, world: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, "network-row", LAN)
    await run(world, "lan", Op.STOP)
    event = ObjectEvent("world", ObjectKind.NETWORK, LAN, "lan", Change.STOPPED, at=time.time())
    await publisher.publish(event)
    row = await pushed_until(comm, f'<tr id="net-{LAN}"')
    assert 'data-state="inactive"' in row and 'data-op="start"' in row


async def test_a_page_header_says_when_its_network_is_deleted(
    layer: Any, ws: Any, publisher: Publisher, world: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, "network-header", QUIET)
    await run(world, "quiet", Op.DELETE)  # its VM, db, is shut off
    event = ObjectEvent(
        "world", ObjectKind.NETWORK, QUIET, "quiet", Change.UNDEFINED, at=time.time()
    )
    await publisher.publish(event)
    gone = await pushed_until(comm, f'id="net-head-{QUIET}"')
    assert 'data-state="gone"' in gone and "no longer exists" in gone


async def test_a_network_defined_elsewhere_has_the_list_load_its_table_again(
    layer: Any, ws: Any, publisher: Publisher, world: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    regions = [{"region": "network-list-refresh", "host": "world"}]
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "regions": regions, "query": ""}))
    await asyncio.sleep(0.1)
    new = "22222222-0000-4000-8000-0000000000ff"
    event = ObjectEvent(
        "world", ObjectKind.NETWORK, new, "elsewhere", Change.DEFINED, at=time.time()
    )
    await publisher.publish(event)
    pushed = await pushed_until(comm, 'id="net-refresh-world"')
    assert 'hx-get="/hosts/world/networks/"' in pushed and 'hx-trigger="load"' in pushed
    assert "elsewhere" not in pushed  # the order to reload, not what the table holds
