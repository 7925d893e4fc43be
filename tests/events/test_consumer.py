"""The /ws/events/ consumer on libvirt's test driver: who may listen, what is
sent to whom, and how a page resyncs. Messages are published by the test as
the events service would; the state comes from the host, re-read."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client

from tests.conftest import TESTNODE_URI
from tests.events.conftest import Publisher
from vmdash import policy
from vmdash.live.consumer import CLOSE_UNAUTHENTICATED
from vmdash.models import AuditEntry, Host
from vmdash.virt.connection import pool
from vmdash.virt.events import Change, ObjectEvent, ObjectKind

pytestmark = pytest.mark.django_db(transaction=True)

WEB1 = "11111111-0000-4000-8000-000000000001"
DB = "11111111-0000-4000-8000-000000000002"
ODD = "11111111-0000-4000-8000-000000000003"
NET = "33333333-0000-4000-8000-000000000001"


def row(uuid: str) -> dict[str, str]:
    return {"region": "domain-row", "host": "lab", "uuid": uuid}


def header(uuid: str) -> dict[str, str]:
    return {"region": "domain-header", "host": "lab", "uuid": uuid}


TABLE = {"region": "domain-table"}


async def subscribe(comm: Any, *regions: dict[str, str], **extra: Any) -> None:
    await comm.send_to(
        text_data=json.dumps({"type": "subscribe", "regions": list(regions), "query": "", **extra})
    )
    await asyncio.sleep(0.1)  # the consumer joins its groups


async def on_host(fn: Any) -> Any:
    """Change the test driver's world through the pool's connection (the one
    the consumer re-reads through)."""
    return await sync_to_async(lambda: fn(pool().get(TESTNODE_URI)), thread_sensitive=False)()


async def test_it_refuses_a_visitor_who_is_not_logged_in(layer: Any, ws: Any) -> None:
    comm = await ws(None)
    closed = await comm.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}


async def test_it_refuses_a_deactivated_account(layer: Any, ws: Any, charlie: User) -> None:
    client = Client()
    await sync_to_async(client.force_login)(charlie)
    comm = await ws(client)
    closed = await comm.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}


async def test_it_pushes_the_row_of_a_vm_that_changed(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, row(WEB1))
    await on_host(lambda c: c.lookupByUUIDString(WEB1).suspend())
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    pushed = await comm.receive_from(timeout=5)
    assert f'<tr id="dom-{WEB1}"' in pushed
    assert 'data-state="paused"' in pushed
    assert 'data-op="resume"' in pushed and 'data-op="pause"' not in pushed


async def test_it_pushes_the_detail_header_and_says_when_the_vm_is_deleted(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, header(DB))
    await on_host(lambda c: c.lookupByUUIDString(DB).create())
    await publisher.domain("lab", DB, "db", Change.STARTED, "booted")
    pushed = await comm.receive_from(timeout=5)
    assert f'id="dom-head-{DB}"' in pushed and 'data-state="running"' in pushed

    await on_host(lambda c: c.lookupByUUIDString(DB).destroy())
    await on_host(lambda c: c.lookupByUUIDString(DB).undefine())
    await publisher.domain("lab", DB, "db", Change.UNDEFINED, "removed")
    pushed = await comm.receive_from(timeout=5)
    assert f'id="dom-head-{DB}"' in pushed
    assert "deleted" in pushed and "no longer exists" in pushed


async def test_it_sends_nothing_about_a_vm_the_policy_hides(
    layer: Any,
    ws: Any,
    publisher: Publisher,
    lab: Host,
    as_alice: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[str, str]] = []
    allowed = policy.can

    def can(user: Any, action: policy.Action, ref: Any = None) -> bool:
        if getattr(ref, "uuid", "") == DB or getattr(ref, "name", "") == "db":
            asked.append((user.username, str(action)))
            return False
        return allowed(user, action, ref)

    monkeypatch.setattr(policy, "can", can)
    comm = await ws(as_alice)
    await subscribe(comm, TABLE, row(WEB1), row(DB))
    await on_host(lambda c: c.lookupByUUIDString(DB).create())
    await publisher.domain("lab", DB, "db", Change.STARTED, "booted")
    assert await comm.receive_nothing(timeout=1.5)  # no row, no toast
    assert ("alice", "view") in asked  # the policy was asked, per user

    await on_host(lambda c: c.lookupByUUIDString(WEB1).suspend())
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    pushed = await comm.receive_from(timeout=5)
    assert f"dom-{WEB1}" in pushed and DB not in pushed and "db" not in pushed.split("-->")[0]


async def test_a_user_without_any_grant_hears_nothing(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, bob: User
) -> None:
    client = Client()
    await sync_to_async(client.force_login)(bob)
    comm = await ws(client)
    await subscribe(comm, TABLE, row(WEB1), header(WEB1), resync=True)
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    await publisher.host("lab", up=True)
    assert await comm.receive_nothing(timeout=1.5)


async def test_it_resyncs_what_the_page_shows_after_a_reconnect(
    layer: Any, ws: Any, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, row(WEB1), header(DB))
    await comm.disconnect()
    # Meanwhile, with nobody listening:
    await on_host(lambda c: c.lookupByUUIDString(WEB1).suspend())
    await on_host(lambda c: c.lookupByUUIDString(DB).create())

    again = await ws(as_alice)
    await subscribe(again, row(WEB1), header(DB), resync=True)
    rows, rest = await again.receive_from(timeout=5), await again.receive_from(timeout=5)
    assert rows.startswith("<!-- vmdash-live resync lab -->")
    assert rest.startswith("<!-- vmdash-live resync lab -->")
    pushed = rows + rest
    assert f'id="dom-{WEB1}"' in pushed and 'data-state="paused"' in pushed
    assert f'id="dom-head-{DB}"' in pushed and 'data-state="running"' in pushed


async def test_it_resyncs_when_the_host_comes_back(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, row(WEB1))
    await publisher.host("lab", up=False)
    down = await comm.receive_from(timeout=5)
    assert "Host Lab is unreachable" in down

    await on_host(lambda c: c.lookupByUUIDString(WEB1).suspend())
    await publisher.host("lab", up=True)
    pushed = await comm.receive_from(timeout=5)
    assert pushed.startswith("<!-- vmdash-live resync lab -->") and 'data-state="paused"' in pushed
    back = await comm.receive_from(timeout=5)
    assert "Host Lab is back" in back


async def test_it_resyncs_when_messages_were_lost(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, TABLE, row(WEB1))
    await publisher.domain("lab", WEB1, "web1", Change.METADATA_CHANGED)
    await comm.receive_from(timeout=5)
    await on_host(lambda c: c.lookupByUUIDString(DB).create())
    # Two messages never arrived (a full channel): the gap shows in the sequence.
    await publisher.domain("lab", WEB1, "web1", Change.METADATA_CHANGED, skip=2)
    pushed = await _until(comm, 'id="domain-table"')
    assert pushed.startswith("<!-- vmdash-live resync lab -->")
    assert 'data-name="db" data-state="running"' in pushed
    # htmx parses a frame that starts with a row as table rows: rows travel alone.
    assert not pushed.split("-->", 1)[1].lstrip().startswith("<tr")


async def test_a_page_rendered_before_an_event_it_missed_resyncs_on_subscribe(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    first = await ws(as_alice)  # starts this process's recorder
    await subscribe(first, row(ODD))
    await asyncio.sleep(0.1)
    rendered_at = time.time()
    await on_host(lambda c: c.lookupByUUIDString(WEB1).suspend())
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    await asyncio.sleep(0.2)

    late = await ws(as_alice)
    await subscribe(late, row(WEB1), rendered_at=rendered_at)
    pushed = await late.receive_from(timeout=5)
    assert pushed.startswith("<!-- vmdash-live resync lab -->") and 'data-state="paused"' in pushed


async def test_a_vm_defined_elsewhere_appears_and_a_deleted_one_disappears(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, TABLE, row(WEB1), row(DB), row(ODD))
    xml = (
        "<domain type='test'><name>newcomer</name>"
        "<uuid>22222222-0000-4000-8000-000000000009</uuid><memory>65536</memory>"
        "<os><type arch='x86_64'>hvm</type></os></domain>"
    )
    await on_host(lambda c: c.defineXML(xml))
    await publisher.domain(
        "lab", "22222222-0000-4000-8000-000000000009", "newcomer", Change.DEFINED, "added"
    )
    pushed = await _until(comm, 'id="domain-table"')
    assert 'data-name="newcomer"' in pushed and "4 VMs" in pushed

    await on_host(lambda c: c.lookupByUUIDString(DB).undefine())
    await publisher.domain("lab", DB, "db", Change.UNDEFINED, "removed")
    pushed = await _until(comm, 'id="domain-table"')
    assert 'data-name="db"' not in pushed and "3 VMs" in pushed


async def test_a_toast_names_who_made_the_change_or_says_outside_vmdash(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client, bob: User
) -> None:
    await sync_to_async(
        lambda: AuditEntry.objects.create(
            username="dave",
            host="lab",
            object_uuid=WEB1,
            object_name="web1",
            action="pause",
            outcome="ok",
        )
    )()
    comm = await ws(as_alice)
    await subscribe(comm, row(WEB1), row(DB))
    await on_host(lambda c: c.lookupByUUIDString(WEB1).suspend())
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    toast = await _until(comm, "data-live-toast")
    assert "web1 was paused by dave." in toast

    await on_host(lambda c: c.lookupByUUIDString(DB).create())
    await publisher.domain("lab", DB, "db", Change.STARTED, "booted")
    toast = await _until(comm, "data-live-toast", timeout=8)
    assert "db was started outside vmdash." in toast


async def test_reboots_heard_together_are_counted_in_one_toast_and_one_start_is_one(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    """A busy machine delivers a guest's repeated reboots in bursts: each one
    is counted (three), while the several events of one start tell it once."""
    comm = await ws(as_alice)
    await subscribe(comm, row(WEB1), row(DB))
    for _ in range(3):
        await publisher.domain("lab", WEB1, "web1", Change.REBOOTED)
    toast = await _until(comm, "data-live-toast")
    assert "web1 was rebooted outside vmdash." in toast
    assert 'data-count="3"' in toast and "×3" in toast

    await on_host(lambda c: c.lookupByUUIDString(DB).create())
    await publisher.domain("lab", DB, "db", Change.RESUMED, "unpaused")
    await publisher.domain("lab", DB, "db", Change.STARTED, "booted")
    toast = await _until(comm, "data-live-toast", timeout=8)
    assert "db was started outside vmdash." in toast and "data-count" not in toast


async def test_no_toast_for_what_the_user_did_themselves(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    await sync_to_async(
        lambda: AuditEntry.objects.create(
            username="alice",
            host="lab",
            object_uuid=WEB1,
            object_name="web1",
            action="pause",
            outcome="ok",
        )
    )()
    comm = await ws(as_alice)
    await subscribe(comm, row(WEB1))
    await on_host(lambda c: c.lookupByUUIDString(WEB1).suspend())
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    assert 'data-state="paused"' in await comm.receive_from(timeout=5)
    assert await comm.receive_nothing(timeout=2.5)


async def test_network_and_pool_changes_are_told_on_pages_of_their_host(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, TABLE)
    net = ObjectEvent("lab", ObjectKind.NETWORK, NET, "default", Change.STOPPED, at=time.time())
    await publisher.publish(net)
    assert "Network default was stopped outside vmdash." in await _until(comm, "toast")
    pool = ObjectEvent("lab", ObjectKind.POOL, NET, "images", Change.STARTED, at=time.time())
    await publisher.publish(pool)
    assert "Storage pool images was started outside vmdash." in await _until(comm, "toast")


async def test_it_ignores_what_it_does_not_understand(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await comm.send_to(text_data="not json")
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "regions": "nope"}))
    await subscribe(
        comm,
        {"region": "domain-row", "host": "elsewhere", "uuid": WEB1},
        {"region": "domain-row", "host": "lab", "uuid": "../../etc"},
        {"region": "no-such-region", "host": "lab"},
    )
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    assert await comm.receive_nothing(timeout=1)
    await subscribe(comm, row(WEB1))
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    assert f"dom-{WEB1}" in await comm.receive_from(timeout=5)


async def test_a_logged_out_session_is_closed_at_the_next_check(
    layer: Any,
    ws: Any,
    publisher: Publisher,
    lab: Host,
    as_alice: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vmdash.live import consumer

    monkeypatch.setattr(consumer, "REVALIDATE_EVERY", 0.0)
    comm = await ws(as_alice)
    await subscribe(comm, row(WEB1))
    await sync_to_async(as_alice.logout)()
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    closed = await comm.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}


async def test_a_session_that_ended_unannounced_is_closed_between_events(
    layer: Any,
    ws: Any,
    lab: Host,
    as_alice: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each socket checks ahead of time, so no event has to wait for the check,
    and a quiet socket whose revocation message was lost still closes."""
    from vmdash.live import consumer

    monkeypatch.setattr(consumer, "REVALIDATE_EVERY", 0.5)
    comm = await ws(as_alice)
    await subscribe(comm, row(WEB1))
    # The session goes without a revocation message (as if it were lost).
    key = as_alice.cookies["sessionid"].value
    await sync_to_async(lambda: Session.objects.filter(session_key=key).delete())()
    closed = await comm.receive_output(timeout=5)  # and no event comes
    assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}


async def _until(comm: Any, text: str, timeout: float = 15) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        pushed: str = await comm.receive_from(timeout=max(0.1, deadline - loop.time()))
        if text in pushed:
            return pushed


async def test_a_host_card_follows_a_vm_that_started(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(
        comm, {"region": "host-card", "host": "lab"}, {"region": "host-facts", "host": "lab"}
    )
    await on_host(lambda c: c.lookupByUUIDString(DB).create())
    await publisher.domain("lab", DB, "db", Change.STARTED, "booted")
    pushed = await _until(comm, 'id="host-lab"')
    card = pushed[pushed.index('id="host-lab"') :].split("</article>")[0]
    assert "connected" in card and "unreachable" not in card
    assert "running</span> 2" in card  # web1 and db run now
    assert 'id="host-facts-lab"' in pushed


async def test_a_state_totals_region_counts_again(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, {"region": "state-totals"})
    await on_host(lambda c: c.lookupByUUIDString(WEB1).suspend())
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    pushed = await _until(comm, 'id="state-totals"')
    assert 'state-paused">paused</span> 2' in pushed


async def test_the_vm_page_facts_follow_a_pause(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, header(WEB1), {"region": "domain-facts", "host": "lab", "uuid": WEB1})
    await on_host(lambda c: c.lookupByUUIDString(WEB1).suspend())
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    pushed = await comm.receive_from(timeout=5)
    facts = pushed[pushed.index(f'id="dom-facts-{WEB1}"') :]
    assert 'data-state="paused"' in facts and "running" not in facts.split("</dd>")[0]


async def test_a_host_that_went_down_is_told_in_the_header_and_the_table(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, TABLE)
    await publisher.host("lab", up=False)
    pushed = await comm.receive_from(timeout=5)
    assert 'id="live-hosts"' in pushed and 'data-count="1"' in pushed
    assert "1 host unreachable" in pushed
    await publisher.host("lab", up=True)
    back = await _until(comm, 'id="live-hosts"')
    assert 'data-count="0"' in back


async def test_a_logout_closes_the_socket_at_once(
    layer: Any, ws: Any, lab: Host, as_alice: Client
) -> None:
    comm = await ws(as_alice)
    await subscribe(comm, row(WEB1))
    await sync_to_async(as_alice.logout)()  # the revocation message, no waiting for a check
    closed = await comm.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
