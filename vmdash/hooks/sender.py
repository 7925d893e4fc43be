"""Posting deliveries: signed, retried with backoff, in order per hook.

Runs as a companion of the events service (live.py), so in the one process
that publishes events and never in a request thread. Each hook has at most
one delivery in flight, always its oldest pending one: a receiver sees a
hook's events in the order they happened, and a hook that does not answer
(up to the timeout per try) holds up no other hook.

Each try is a POST of the delivery's body (the same bytes every time) with
    X-Vmdash-Signature: sha256=<hex HMAC-SHA256 of the body with the hook's secret>
    X-Vmdash-Event: <kind>       X-Vmdash-Delivery: <id>       X-Vmdash-Attempt: <n>
A 2xx answer delivers it; anything else (another status, a redirect, no
answer) is retried after base·2^(n-1) seconds (capped), up to the setting's
number of attempts, then given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db.models import Min
from django.utils import timezone

log = logging.getLogger(__name__)

EXCERPT = 500  # characters of the answer kept in the log
READ_AT_MOST = 4096  # bytes of the answer read


def sign(secret: str, body: bytes) -> str:
    """The X-Vmdash-Signature value for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header)


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed try."""
    base = float(settings.VMDASH_HOOK_RETRY_BASE)
    cap = float(settings.VMDASH_HOOK_RETRY_CAP)
    return float(min(base * 2 ** max(attempts - 1, 0), cap))


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer at all
    ms: int
    excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (logged, retried), not a place to post to:
    urllib would follow it with a GET and no body."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """One POST (urllib); never raises for what the receiver or the network did."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    started = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        with _opener.open(request, timeout=timeout) as response:
            text = response.read(READ_AT_MOST).decode("utf-8", "replace")
            return Answer(int(response.status), took(), text[:EXCERPT])
    except urllib.error.HTTPError as err:
        with contextlib.suppress(OSError):
            text = err.read(READ_AT_MOST).decode("utf-8", "replace")
            return Answer(int(err.code), took(), text[:EXCERPT], f"HTTP {err.code}")
        return Answer(int(err.code), took(), "", f"HTTP {err.code}")
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return Answer(None, took(), "", str(reason)[:EXCERPT] or type(err).__name__)


def attempt(delivery_id: int) -> None:
    """Try one delivery once and write down what happened (worker thread)."""
    from vmdash.hooks.models import Delivery

    delivery = Delivery.objects.select_related("hook").filter(pk=delivery_id).first()
    if delivery is None or delivery.state != Delivery.State.PENDING:
        return
    hook = delivery.hook
    body = delivery.body()
    number = delivery.attempts + 1
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "vmdash-hooks",
        "X-Vmdash-Event": delivery.kind,
        "X-Vmdash-Delivery": str(delivery.pk),
        "X-Vmdash-Attempt": str(number),
        "X-Vmdash-Signature": sign(hook.secret, body),
    }
    answer = post(hook.url, body, headers, float(settings.VMDASH_HOOK_TIMEOUT))
    now = timezone.now()
    delivery.attempts = number
    delivery.status_code = answer.status
    delivery.response_ms = answer.ms
    delivery.body_excerpt = answer.excerpt
    delivery.error = "" if answer.ok else answer.error
    if answer.ok:
        delivery.state = Delivery.State.DELIVERED
        delivery.delivered_at = now
    elif number >= int(settings.VMDASH_HOOK_ATTEMPTS):
        delivery.state = Delivery.State.FAILED
        log.warning("hooks: gave up %s after %d tries: %s", delivery, number, answer.error)
    else:
        delivery.next_try_at = now + timedelta(seconds=backoff(number))
    delivery.save(
        update_fields=[
            "attempts",
            "status_code",
            "response_ms",
            "body_excerpt",
            "error",
            "state",
            "delivered_at",
            "next_try_at",
        ]
    )


def due(busy: set[int]) -> tuple[list[tuple[int, int]], datetime | None]:
    """Each idle enabled hook's oldest pending delivery: the ids due now, and
    when the next one that is not due yet will be."""
    from vmdash.hooks.models import Delivery

    heads = (
        Delivery.objects.filter(state=Delivery.State.PENDING, hook__enabled=True)
        .exclude(hook_id__in=busy)
        .values("hook_id")
        .annotate(first=Min("id"))
    )
    firsts = [h["first"] for h in heads]
    now = timezone.now()
    ready: list[tuple[int, int]] = []  # (delivery, hook)
    later: datetime | None = None
    rows = Delivery.objects.filter(pk__in=firsts).values_list("pk", "hook_id", "next_try_at")
    for pk, hook_id, when in rows:
        if when <= now:
            ready.append((pk, hook_id))
        elif later is None or when < later:
            later = when
    return sorted(ready), later


def as_request(fn: Any, *args: Any) -> Any:
    """As a request: database connections checked before and after."""
    close_old_connections()
    try:
        return fn(*args)
    finally:
        close_old_connections()


class Sender:
    """Posts what is due, one delivery in flight per hook."""

    def __init__(self, poll: float) -> None:
        self.poll = poll
        self.busy: dict[int, int] = {}  # hook id -> delivery id in flight
        self.sent = 0
        self._failing = False
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def wake(self) -> None:
        """From any thread: look at the queue now."""
        with contextlib.suppress(RuntimeError):  # the loop has closed
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                self._wake.clear()
                wait = self.poll
                try:
                    ready, later = await asyncio.to_thread(as_request, due, set(self.busy))
                    self._failing = False
                except Exception as err:  # noqa: BLE001 - the sender outlives a database outage
                    if not self._failing:  # once per outage, not every poll
                        log.warning("hooks: cannot read the queue (%r); retrying", err)
                    self._failing = True
                    ready, later = [], None
                for delivery_id, hook_id in ready:
                    if hook_id in self.busy:
                        continue
                    self.busy[hook_id] = delivery_id
                    task = asyncio.create_task(self._send(hook_id, delivery_id))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if later is not None:
                    wait = min(wait, max((later - timezone.now()).total_seconds(), 0.01))
                await self._sleep(wait)
        finally:
            for task in tasks:
                task.cancel()

    async def _sleep(self, seconds: float) -> None:
        """Until woken or `seconds` pass. Not asyncio.wait_for: on Python 3.11 it
        swallows a cancellation that comes as the wake does (gh-86296), and the
        service's stop then waited for ever for the sender (a test hung so)."""
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=seconds)
        finally:
            waiter.cancel()

    async def _send(self, hook_id: int, delivery_id: int) -> None:
        try:
            await asyncio.to_thread(as_request, attempt, delivery_id)
            self.sent += 1
        except DatabaseError as err:
            log.warning("hooks: cannot record delivery %s (%s)", delivery_id, err)
        except Exception:  # a bug in one delivery must not end the sender
            log.exception("hooks: delivery %s failed", delivery_id)
        finally:
            del self.busy[hook_id]
            self._wake.set()  # the hook's next delivery may go now


_running: dict[str, Sender | None] = {"sender": None}


def wake() -> None:
    """Tell this process's sender, if it runs here, that rows were queued."""
    sender = _running["sender"]
    if sender is not None:
        sender.wake()


def current() -> Sender | None:
    return _running["sender"]


async def send_while_publishing(_service: Any) -> None:
    """The events service's companion: deliver what the queue holds."""
    sender = Sender(float(settings.VMDASH_HOOK_POLL))
    _running["sender"] = sender
    try:
        await sender.run()
    finally:
        if _running["sender"] is sender:
            _running["sender"] = None
