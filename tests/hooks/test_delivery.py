"""Signing, backoff and the order of deliveries, against a real HTTP receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.hooks.receiver import Receiver
from vmdash.hooks import queue, sender
from vmdash.hooks.kinds import Kind
from vmdash.hooks.models import Delivery, Hook
from vmdash.hooks.sender import attempt, backoff, sign, verify

pytestmark = pytest.mark.django_db(transaction=True)


def make_hook(url: str, events: list[str] | None = None, **kwargs: Any) -> Hook:
    return Hook.objects.create(
        name=kwargs.pop("name", "ops"), url=url, events=events or [Kind.VM_STOPPED], **kwargs
    )


@pytest.fixture
async def running_sender() -> AsyncIterator[sender.Sender]:
    """The sender as the events service runs it, on this test's loop."""
    task = asyncio.create_task(sender.send_while_publishing(None))
    while sender.current() is None:
        await asyncio.sleep(0.01)
    found = sender.current()
    assert found is not None
    yield found
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_the_signature_is_the_hex_hmac_sha256_of_the_body() -> None:
    body = b'{"event":"ping"}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == f"sha256={expected}"
    assert verify("s3cret", body, f"sha256={expected}")
    assert not verify("other", body, f"sha256={expected}")
    assert not verify("s3cret", body + b" ", f"sha256={expected}")


def test_backoff_doubles_from_the_base_up_to_the_cap(settings: Any) -> None:
    settings.VMDASH_HOOK_RETRY_BASE = 1
    settings.VMDASH_HOOK_RETRY_CAP = 10
    assert [backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_a_delivery_is_posted_signed_and_logged(receiver: Receiver) -> None:
    hook = make_hook(receiver.url)
    delivery = queue.enqueue(Kind.VM_STOPPED, {"vm": "web1"})[0]
    attempt(delivery.pk)
    (got,) = receiver.wait_for(1)
    assert got.signed_by(hook.secret)
    assert got.headers["X-Vmdash-Event"] == "vm.stopped"
    assert got.headers["X-Vmdash-Delivery"] == str(delivery.pk)
    assert got.headers["Content-Type"] == "application/json"
    assert got.json == {
        "id": delivery.pk,
        "event": "vm.stopped",
        "created_at": delivery.created_at.isoformat(),
        "data": {"vm": "web1"},
    }
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.DELIVERED
    assert (delivery.attempts, delivery.status_code) == (1, 200)
    assert delivery.body_excerpt == "answered 200"
    assert delivery.response_ms is not None and delivery.delivered_at is not None


def test_a_failed_try_is_logged_and_waits_its_backoff(receiver: Receiver, settings: Any) -> None:
    settings.VMDASH_HOOK_RETRY_BASE = 30
    settings.VMDASH_HOOK_RETRY_CAP = 60
    make_hook(receiver.url)
    receiver.answer(500)
    delivery = queue.enqueue(Kind.VM_STOPPED, {"vm": "web1"})[0]
    attempt(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.PENDING
    assert (delivery.attempts, delivery.status_code, delivery.error) == (1, 500, "HTTP 500")
    assert delivery.body_excerpt == "answered 500"
    assert 29 < (delivery.next_try_at - delivery.created_at).total_seconds() < 40
    assert sender.due(set()) == ([], delivery.next_try_at)


def test_a_redirect_is_a_failure_not_a_place_to_post_to(receiver: Receiver) -> None:
    make_hook(receiver.url)
    receiver.answer(302)
    delivery = queue.enqueue(Kind.VM_STOPPED, {})[0]
    attempt(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.status_code) == (Delivery.State.PENDING, 302)
    assert len(receiver.got) == 1


def test_a_receiver_that_does_not_answer_is_an_error_in_the_log() -> None:
    make_hook("http://127.0.0.1:9/")  # discard: nothing listens
    delivery = queue.enqueue(Kind.VM_STOPPED, {})[0]
    attempt(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status_code is None and delivery.error
    assert delivery.state == Delivery.State.PENDING


def test_it_gives_up_after_the_last_attempt(receiver: Receiver, settings: Any) -> None:
    settings.VMDASH_HOOK_ATTEMPTS = 2
    make_hook(receiver.url)
    receiver.answer(500, 503)
    delivery = queue.enqueue(Kind.VM_STOPPED, {})[0]
    attempt(delivery.pk)
    attempt(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.status_code) == (
        Delivery.State.FAILED,
        2,
        503,
    )
    attempt(delivery.pk)  # given up: not tried again
    assert len(receiver.got) == 2


async def test_a_receiver_that_fails_twice_gets_it_on_the_third_try(
    receiver: Receiver, running_sender: sender.Sender
) -> None:
    hook = await sync_to_async(make_hook)(receiver.url)
    receiver.answer(500, 500)
    delivery = (await sync_to_async(queue.enqueue)(Kind.VM_STOPPED, {"vm": "web1"}))[0]
    got = await asyncio.to_thread(receiver.wait_for, 3)
    assert [g.status for g in got] == [500, 500, 200]
    assert [g.headers["X-Vmdash-Attempt"] for g in got] == ["1", "2", "3"]
    assert len({g.body for g in got}) == 1 and all(g.signed_by(hook.secret) for g in got)
    # backoff: 0.05 s, then 0.1 s
    assert got[1].at - got[0].at >= 0.04 and got[2].at - got[1].at >= 0.09
    await asyncio.sleep(0.1)  # the sender writes the outcome after the answer
    await sync_to_async(delivery.refresh_from_db)()
    assert (delivery.state, delivery.attempts) == (Delivery.State.DELIVERED, 3)


async def test_a_later_delivery_waits_until_the_earlier_one_is_delivered(
    receiver: Receiver, running_sender: sender.Sender
) -> None:
    await sync_to_async(make_hook)(receiver.url)
    receiver.answer(500, 500)
    first = (await sync_to_async(queue.enqueue)(Kind.VM_STOPPED, {"n": 1}))[0]
    second = (await sync_to_async(queue.enqueue)(Kind.VM_STOPPED, {"n": 2}))[0]
    third = (await sync_to_async(queue.enqueue)(Kind.VM_STOPPED, {"n": 3}))[0]
    got = await asyncio.to_thread(receiver.wait_for, 5)
    order = [(g.json["id"], g.status) for g in got]
    assert order == [
        (first.pk, 500),
        (first.pk, 500),
        (first.pk, 200),
        (second.pk, 200),
        (third.pk, 200),
    ]


async def test_a_given_up_delivery_lets_the_next_one_go(
    receiver: Receiver, running_sender: sender.Sender, settings: Any
) -> None:
    settings.VMDASH_HOOK_ATTEMPTS = 2
    await sync_to_async(make_hook)(receiver.url)
    receiver.answer(500, 500)
    first = (await sync_to_async(queue.enqueue)(Kind.VM_STOPPED, {"n": 1}))[0]
    second = (await sync_to_async(queue.enqueue)(Kind.VM_STOPPED, {"n": 2}))[0]
    got = await asyncio.to_thread(receiver.wait_for, 3)
    assert [(g.json["id"], g.status) for g in got] == [
        (first.pk, 500),
        (first.pk, 500),
        (second.pk, 200),
    ]


async def test_a_slow_receiver_holds_up_no_other_hook(
    receiver: Receiver, running_sender: sender.Sender
) -> None:
    slow = await sync_to_async(make_hook)("http://127.0.0.1:9/", name="down")
    quick = await sync_to_async(make_hook)(receiver.url, name="up")
    await sync_to_async(queue.enqueue)(Kind.VM_STOPPED, {"n": 1}, [slow])
    await sync_to_async(queue.enqueue)(Kind.VM_STOPPED, {"n": 2}, [quick])
    (got,) = await asyncio.to_thread(receiver.wait_for, 1)
    assert got.json["data"] == {"n": 2}
    assert json.loads(got.body)["event"] == "vm.stopped"


async def test_a_disabled_hook_keeps_its_deliveries_until_enabled(
    receiver: Receiver, running_sender: sender.Sender
) -> None:
    hook = await sync_to_async(make_hook)(receiver.url)
    await sync_to_async(queue.enqueue)(Kind.VM_STOPPED, {"n": 1}, [hook])
    hook.enabled = False
    await sync_to_async(hook.save)()
    # (the sender may have been quicker than the save: then it was delivered)
    await asyncio.sleep(0.5)
    before = len(receiver.got)
    await sync_to_async(queue.enqueue)(Kind.VM_STOPPED, {"n": 2}, [hook])
    await asyncio.sleep(0.5)
    assert len(receiver.got) == before
    hook.enabled = True
    await sync_to_async(hook.save)()
    got = await asyncio.to_thread(receiver.wait_for, 2)
    assert [g.json["data"]["n"] for g in got] == [1, 2]
