"""/ws/events/: one WebSocket per open page, pushing rendered partials.

The page (static/js/live.js) subscribes with the regions it shows; the
consumer joins only the groups those need, for hosts the user may see. For
every event it asks the policy, re-reads the object through vmdash.virt (one
read per event and process, shared by all consumers: live/shared.py), renders
the same partials as the page, for this user, and sends them as htmx
out-of-band swaps. Nothing about an object the user may not see is sent.

Close codes: 4401 = not logged in (or logged out since); the page then stops
retrying and says so.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from vmdash import door, policy, revoke
from vmdash.live import regions, toasts
from vmdash.live.messages import LiveMessage
from vmdash.live.push import push_request
from vmdash.live.recent import recorder
from vmdash.live.regions import Renderer, Subscription, delete_row
from vmdash.live.service import ensure_embedded
from vmdash.live.shared import shared
from vmdash.policy import Action
from vmdash.virt.domains import DomainSummary
from vmdash.virt.errors import VirtError
from vmdash.virt.events import MEMBERSHIP, STATE, Change, read_domain
from vmdash.virt.hosts import HostInfo, PerHost, each_host, host_info
from vmdash.virt.refs import DomainRef, HostRef

log = logging.getLogger(__name__)
T = TypeVar("T")

CLOSE_UNAUTHENTICATED = 4401
# How late an event may be heard after the page it concerns was rendered
# (the page read libvirt before it stamped its time; reads wait up to
# VMDASH_HOST_TIMEOUT).
RENDER_SLACK = 1.0
# Host cards, counts and the table are re-rendered at most this often.
DEBOUNCE = 0.05
# A resync that could not read a host (it just came back) tries again.
RESYNC_RETRIES = 5
RESYNC_RETRY_DELAY = 1.0
# How often the session and the user are checked again (logout elsewhere).
REVALIDATE_EVERY = 30.0
# One change often comes as several events (a start is RESUMED then STARTED,
# a force-off SHUTDOWN then STOPPED): toasts wait this long and say the main one.
TOAST_GATHER = 0.3


def _off_loop(fn: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """libvirt and template work, in a worker thread (not the one for the ORM)."""
    return sync_to_async(fn, thread_sensitive=False)


class EventsConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    async def connect(self) -> None:
        self.user: Any = None
        self.who = policy.ANONYMOUS
        self.sub = Subscription()
        self.joined: set[str] = set()
        self.seen: deque[str] = deque(maxlen=512)
        self.seq: dict[str, tuple[str, int]] = {}
        self.down: set[str] = set()
        self.dirty_hosts: dict[str, str] = {}  # host -> id of the latest event
        self.dirty_table = False
        self.flush_task: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.pending_toasts: dict[str, tuple[int, LiveMessage, str]] = {}
        self.checked_at = time.monotonic()
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.who = await database_sync_to_async(door.load_who)(user)
        self.renderer = Renderer(push_request(self.scope))
        ensure_embedded()

    async def disconnect(self, code: int) -> None:
        for task in [*self.tasks, self.flush_task]:
            if task is not None:
                task.cancel()
        await self._join(set())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None or not text_data:
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            return
        if isinstance(content, dict) and content.get("type") == "subscribe":
            await self._subscribe(content)

    # Subscribing: the groups follow what the page shows.

    async def _subscribe(self, content: dict[str, Any]) -> None:
        visible = await database_sync_to_async(regions.visible_hosts)(self.who)
        sub = Subscription.parse(content.get("regions"), content.get("query"), visible)
        await self._join(sub.groups())
        self.sub = sub
        if content.get("resync"):
            stale = sub.hosts()
        else:
            rendered_at = content.get("rendered_at")
            if isinstance(rendered_at, int | float):
                since = float(rendered_at) - RENDER_SLACK - regions.host_timeout()
                stale = recorder().changed_since(sub.hosts(), since)
            else:
                stale = set()
        if stale:
            await self._resync(stale, key=f"resync:{int(time.monotonic() * 2)}")

    async def _join(self, groups: set[str]) -> None:
        for group in self.joined - groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in groups - self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = set(groups)

    # Events from the service.

    async def live_event(self, message: LiveMessage) -> None:
        if self.user is None or message["id"] in self.seen:
            return
        self.seen.append(message["id"])
        if time.monotonic() - self.checked_at > REVALIDATE_EVERY and not await self._still_valid():
            return
        host = message["host"]
        if host not in self.sub.visible:
            return
        if self._missed_some(message):
            await self._resync({host}, key=message["id"])
        if message["kind"] == "host":
            await self._on_host(message)
        elif message["kind"] == "domain":
            await self._on_domain(message)
        elif (
            self._shows_host(host)
            and toasts.toastable(message)
            and policy.can(self.who, Action.VIEW, self.sub.visible[host])
        ):
            # Networks and pools have no pages yet, nor refs of their own: the
            # host's visibility decides, and the page says it in a toast.
            self._queue_toast(message)

    def _missed_some(self, message: LiveMessage) -> bool:
        """A gap in a host's sequence: messages were dropped (a full channel)."""
        host = message["host"]
        if host not in self.sub.host_level():
            return False  # an object group sees only some of the host's messages
        last = self.seq.get(host)
        self.seq[host] = (message["epoch"], message["seq"])
        return last is not None and last[0] == message["epoch"] and message["seq"] > last[1] + 1

    def _shows_host(self, host: str) -> bool:
        return host in self.sub.hosts()

    async def _on_host(self, message: LiveMessage) -> None:
        host = message["host"]
        if not self._shows_host(host):
            return
        if message["change"] == "up":
            await self._resync({host}, key=message["id"])
            if host in self.down:
                self.down.discard(host)
                await self._send(message["id"], [self._host_toast(host, "is back.")])
        else:
            self.down.add(host)
            self._mark_host(host, message["id"])
            if host in self.sub.table_hosts():
                self.dirty_table = True  # the table says which host does not answer
                self._schedule_flush()
            await self._send(
                message["id"],
                [self._host_toast(host, "is unreachable; vmdash reconnects by itself.", "error")],
            )

    def _host_toast(self, host: str, what: str, level: str = "info") -> str:
        return regions.toast_html(f"Host {self.sub.visible[host].label} {what}", level)

    async def _on_domain(self, message: LiveMessage) -> None:
        host, uuid, change = message["host"], message["uuid"], message["change"]
        href = self.sub.visible[host]
        row, head = uuid in self.sub.rows, uuid in self.sub.headers
        in_table = host in self.sub.table_hosts()
        host_level = host in self.sub.host_level()
        if not (row or head or host_level):
            return
        # The policy decides before anything about this VM is read or sent.
        if not policy.can(self.who, Action.VIEW, DomainRef(host, message["name"], uuid)):
            return
        summary: DomainSummary | None = None
        if row or head or (in_table and change in MEMBERSHIP):
            try:
                summary = await self._read(href, uuid, message["id"])
            except VirtError as err:
                log.info("live: cannot re-read %s on %s: %s", uuid, host, err)
                return  # the host's status message follows; it resyncs the page
        parts = await self._domain_parts(
            href, uuid, message["name"], summary, row, head, message["id"]
        )
        if in_table and self._joins_table(message, summary, row):
            self.dirty_table = True
            self._schedule_flush()
        if host_level and change in STATE:
            self._mark_host(host, message["id"])
        if parts:
            await self._send(message["id"], parts)
        if toasts.toastable(message):
            self._queue_toast(message, summary.name if summary else "")

    async def _domain_parts(
        self,
        host: HostRef,
        uuid: str,
        name: str,
        summary: DomainSummary | None,
        row: bool,
        head: bool,
        key: str,
    ) -> list[str]:
        """The VM's row and header as this user may see them, or their removal."""
        parts = []
        if summary is not None and not policy.can(self.who, Action.VIEW, summary.ref):
            summary = None  # renamed into something this user may not see: gone for them
        operate = summary is not None and policy.can(self.who, Action.OPERATE, summary.ref)
        if row:
            if summary is not None:
                d = summary
                parts.append(
                    await self._shared(
                        ("row", host.slug, uuid, key, operate),
                        lambda: regions.row_html(d, operate),
                    )
                )
            elif not self.sub.table:
                parts.append(delete_row(uuid))
        if head:
            if summary is not None:
                d = summary
                parts.append(
                    await self._shared(
                        ("header", host.slug, uuid, key, operate),
                        lambda: regions.header_html(host, d, operate),
                    )
                )
            else:
                parts.append(
                    await self._shared(
                        ("gone", host.slug, uuid, key), lambda: regions.gone_html(host, uuid, name)
                    )
                )
        return parts

    async def _shared(self, key: tuple[Any, ...], render: Callable[[], str]) -> str:
        """Rendered once per process for everyone with the same rights; then made
        this connection's own (its CSRF token)."""
        html = await shared().get(key, lambda: _off_loop(render)())
        return self.renderer.personal(html)

    def _joins_table(self, message: LiveMessage, summary: DomainSummary | None, row: bool) -> bool:
        """Does the table need a full re-render (a VM came, went, or left the filter)?"""
        change = message["change"]
        if row:
            return summary is None  # gone: the count and the pages shift
        if self.sub.state_filter and change in STATE:
            return True
        if change == Change.DEFINED:
            return message["detail"] != "updated"
        if change == Change.STARTED:  # a new transient VM
            return summary is not None and not summary.persistent
        return change == Change.UNDEFINED

    # Host cards, counts and the table: coalesced, then re-rendered.

    def _mark_host(self, host: str, event_id: str) -> None:
        if host in self.sub.cards or host in self.sub.facts or self.sub.totals:
            self.dirty_hosts[host] = event_id
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self.flush_task is None or self.flush_task.done():
            self.flush_task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(DEBOUNCE)
        dirty, self.dirty_hosts = self.dirty_hosts, {}
        table, self.dirty_table = self.dirty_table, False
        parts: list[str] = []
        if table:
            parts.append(await database_sync_to_async(self.renderer.table)(self.sub.query))
        parts += await self._host_regions(dirty)
        if parts:
            await self._send("flush", parts)

    async def _host_regions(self, dirty: dict[str, str]) -> list[str]:
        parts: list[str] = []
        for host, key in dirty.items():
            href = self.sub.visible[host]
            if (host in self.sub.cards or host in self.sub.facts) and policy.can(
                self.user, Action.VIEW, href
            ):
                result: PerHost[HostInfo] = await self._host_info(href, key)
                if host in self.sub.cards:
                    card = functools.partial(regions.host_card_html, result)
                    parts.append(await self._shared(("card", host, key), card))
                if host in self.sub.facts:
                    facts = functools.partial(regions.host_facts_html, result)
                    parts.append(await self._shared(("facts", host, key), facts))
        if self.sub.totals and dirty:
            key = "|".join(sorted(dirty.values()))
            counts = await self._totals(key)
            shown = tuple(sorted(self.sub.visible))  # only hosts this user may see
            parts.append(
                await self._shared(("totals", shown, key), lambda: regions.totals_html(counts))
            )
        return [p for p in parts if p]

    # Resync: re-render everything the page shows on some hosts.

    async def _resync(self, hosts: set[str], key: str, attempt: int = 0) -> None:
        sub = self.sub
        parts: list[str] = []
        unanswered: set[str] = set()
        if sub.table and sub.table_hosts() & hosts:
            parts.append(await database_sync_to_async(self.renderer.table)(sub.query))
        elif sub.rows:
            parts += await self._reread_all(sub.rows, hosts, key, unanswered, row=True)
        parts += await self._reread_all(sub.headers, hosts, key, unanswered, row=False)
        parts += await self._host_regions({h: key for h in hosts if h in sub.visible})
        await self._send(f"resync {' '.join(sorted(hosts))}", parts)
        if unanswered and attempt < RESYNC_RETRIES:
            # A host that just came back may not answer every connection yet.
            self._spawn(self._resync_later(unanswered, key, attempt + 1))

    async def _resync_later(self, hosts: set[str], key: str, attempt: int) -> None:
        await asyncio.sleep(RESYNC_RETRY_DELAY * attempt)
        await self._resync(hosts & self.sub.hosts(), f"{key}/retry{attempt}", attempt)

    async def _reread_all(
        self, shown: dict[str, str], hosts: set[str], key: str, unanswered: set[str], *, row: bool
    ) -> list[str]:
        parts: list[str] = []
        for uuid, host in shown.items():
            if host not in hosts or not policy.can(
                self.user, Action.VIEW, DomainRef(host, "", uuid)
            ):
                continue
            href = self.sub.visible[host]
            try:
                summary = await self._read(href, uuid, key)
            except VirtError:
                unanswered.add(host)
                continue
            parts += await self._domain_parts(href, uuid, "", summary, row, not row, key)
        return parts

    # Reads shared by every consumer of this process.

    async def _read(self, host: HostRef, uuid: str, key: str) -> DomainSummary | None:
        return await shared().get(
            ("domain", host.slug, uuid, key), lambda: _off_loop(read_domain)(host, uuid)
        )

    async def _host_info(self, host: HostRef, key: str) -> Any:
        return await shared().get(
            ("host", host.slug, key),
            lambda: _off_loop(each_host)([host], host_info, regions.host_timeout()),
        )

    async def _totals(self, key: str) -> Any:
        from vmdash.virt.domains import state_counts

        hosts = sorted(self.sub.visible.values(), key=lambda h: h.slug)
        results = await shared().get(
            ("totals", tuple(h.slug for h in hosts), key),
            lambda: _off_loop(each_host)(hosts, state_counts, regions.host_timeout()),
        )
        return results

    # Toasts: changes made by someone else.

    def _queue_toast(self, message: LiveMessage, name: str = "") -> None:
        key = message["uuid"] or message["host"]
        rank = toasts.rank(message)
        pending = self.pending_toasts.get(key)
        if pending is None:
            self.pending_toasts[key] = (rank, message, name)
            self._spawn(self._toast_after(key))
        elif rank >= pending[0]:
            self.pending_toasts[key] = (rank, message, name)

    async def _toast_after(self, key: str) -> None:
        await asyncio.sleep(TOAST_GATHER)
        _rank, message, name = self.pending_toasts.pop(key)
        await self._toast(message, name)

    async def _toast(self, message: LiveMessage, name: str = "") -> None:
        actor = await shared().get(("actor", message["id"]), lambda: toasts.find_actor(message))
        if actor is not None and actor == self.user.get_username():
            return  # they did it themselves and see the result
        await self._send(message["id"], [regions.toast_html(toasts.text(message, actor, name))])

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # Sending, and checking that the session still holds.

    async def _send(self, label: str, parts: Iterable[str]) -> None:
        parts = [p for p in parts if p]
        if parts:
            await self.send(text_data=f"<!-- vmdash-live {label} -->\n" + "\n".join(parts))

    async def _still_valid(self) -> bool:
        self.checked_at = time.monotonic()
        if await database_sync_to_async(_session_holds)(self.scope, self.user):
            self.who = await database_sync_to_async(door.load_who_id)(self.user.pk)
            return True
        self.user = None
        await self._join(set())
        await self.close(code=CLOSE_UNAUTHENTICATED)
        return False


def _session_holds(scope: dict[str, Any], user: Any) -> bool:
    """Still logged in (session not flushed, same password) and still an active account?"""
    session: Any = scope.get("session")
    return revoke.session_holds(user.pk, session.session_key if session is not None else None)


__all__ = ["CLOSE_UNAUTHENTICATED", "EventsConsumer"]
