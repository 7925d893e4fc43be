"""/ws/events/: one WebSocket per open page, pushing rendered partials.

The page (static/js/live.js) subscribes with the regions it shows; the
consumer joins only the groups those need, for hosts the user may see. For
every event it asks the policy, re-reads through the region's reader (one
read per event and process, shared by all consumers: live/shared.py),
renders the region's partial for this user's rights and sends it as an htmx
out-of-band swap. Nothing about an object the user may not see is sent. The
regions themselves are declared by the apps (live/regions.py).

Close codes: 4401 = not logged in (or logged out, deactivated, password
changed since: vmdash/revoke.py tells at once; a re-check every 30 s is the
backstop); the page then stops retrying and says so.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.middleware.csrf import get_token
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from vmdash import door, policy, revoke
from vmdash.live import regions, ticks, toasts
from vmdash.live.messages import LiveMessage
from vmdash.live.push import push_request
from vmdash.live.recent import recorder
from vmdash.live.regions import (
    Happening,
    HostRegion,
    ObjectRegion,
    PageRegion,
    SeriesRegion,
    Subscription,
    cache_key,
)
from vmdash.live.service import ensure_embedded
from vmdash.live.shared import shared
from vmdash.policy import Action
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import HostRef

log = logging.getLogger(__name__)
T = TypeVar("T")

CLOSE_UNAUTHENTICATED = 4401
# How late an event may be heard after the page it concerns was rendered
# (the page read libvirt before it stamped its time; reads wait up to
# VMDASH_HOST_TIMEOUT).
RENDER_SLACK = 1.0
# Host regions and page regions are re-rendered at most this often.
DEBOUNCE = 0.05
# A resync that could not read a host (it just came back) tries again.
RESYNC_RETRIES = 5
RESYNC_RETRY_DELAY = 1.0
# How often the session and the user are checked again: the backstop behind
# the revocation message (a lost channel-layer message, a Redis restart).
REVALIDATE_EVERY = 30.0
# Each socket checks ahead, between events, after this share of REVALIDATE_EVERY
# (random, so that sockets opened together do not all check at once): 200
# sockets whose checks fell due on the same event made that event wait for
# some 800 queries in the one database thread (bench/events.py fan-out p95).
CHECK_AHEAD = (0.5, 0.9)
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
        self.down: dict[str, float] = {}  # host -> since (time.time())
        self.dirty_hosts: dict[str, str] = {}  # host -> id of the latest event
        self.dirty_pages: dict[str, tuple[PageRegion, str]] = {}
        self.flush_task: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        # object key -> (rank, message, name, repeats) gathered for one toast
        self.pending_toasts: dict[str, tuple[int, LiveMessage, str, int]] = {}
        self.tick_ok: dict[tuple[str, str, str], bool] = {}  # (host, key, name) -> may see
        self.checked_at = time.monotonic()
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        # Logout, deactivation, a new password: told at once (vmdash/revoke.py).
        await self.channel_layer.group_add(revoke.user_group(user.pk), self.channel_name)
        self.who = await database_sync_to_async(door.load_who)(user)
        self._watch_expiry()
        if REVALIDATE_EVERY > 0:
            self._spawn(self._check_ahead())
        self.csrf_token = _csrf_token(push_request(self.scope))
        ensure_embedded()

    async def disconnect(self, code: int) -> None:
        ticks.relay().watch(self, set())
        for task in [*self.tasks, self.flush_task]:
            if task is not None:
                task.cancel()
        await self._join(set())
        if self.user is not None:
            await self.channel_layer.group_discard(
                revoke.user_group(self.user.pk), self.channel_name
            )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None or not text_data:
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            return
        if isinstance(content, dict) and content.get("type") == "subscribe":
            await self._subscribe(content)

    async def vmdash_revoked(self, message: dict[str, Any]) -> None:
        if self.user is not None and revoke.is_revoked_for(message, self._session_key()):
            await self._shut()

    async def vmdash_rights(self, message: dict[str, Any]) -> None:
        """A grant was given, changed, taken back or ran out: from now on every
        event is judged by the new rights, and hosts no longer visible are left."""
        if self.user is None:
            return
        self.who = await database_sync_to_async(door.load_who_id)(self.user.pk)
        visible = await database_sync_to_async(regions.visible_hosts)(self.who)
        self.sub.visible = {h: r for h, r in self.sub.visible.items() if h in visible}
        self.sub.series = {h: s for h, s in self.sub.series.items() if h in visible}
        self.tick_ok = {}
        ticks.relay().watch(self, set(self.sub.series))
        await self._join(self.sub.groups())
        self._watch_expiry()

    def _watch_expiry(self) -> None:
        """Ask again when the next grant of this person ends (no message comes then)."""
        ends = self.who.next_expiry
        if ends is not None:
            delay = max(0.0, ends - time.time()) + 0.1
            asyncio.get_running_loop().call_later(
                delay, lambda: self._spawn(self.vmdash_rights({"why": "grant ended"}))
            )

    # Subscribing: the groups follow what the page shows.

    async def _subscribe(self, content: dict[str, Any]) -> None:
        visible = await database_sync_to_async(regions.visible_hosts)(self.who)
        sub = await _off_loop(Subscription.parse)(
            content.get("regions"), content.get("query"), visible
        )
        await self._join(sub.groups())
        self.sub = sub
        self.tick_ok = {}
        ticks.relay().watch(self, set(sub.series))
        down = recorder().down(sub.hosts())
        told = [self._hosts_down()] if sub.hosts() and (down or self.down) else []
        self.down = down
        if content.get("resync"):
            stale = sub.hosts()
        else:
            rendered_at = content.get("rendered_at")
            if isinstance(rendered_at, int | float):
                since = float(rendered_at) - RENDER_SLACK - _host_timeout()
                stale = recorder().changed_since(sub.hosts(), since)
            else:
                stale = set()
        if stale:
            await self._resync(stale, key=f"resync:{int(time.monotonic() * 2)}", told=told)
        else:
            await self._send("hosts", told)

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
        else:
            await self._on_object(message)

    def _missed_some(self, message: LiveMessage) -> bool:
        """A gap in a host's sequence: messages were dropped (a full channel)."""
        host = message["host"]
        if host not in self.sub.host_level():
            return False  # an object group sees only some of the host's messages
        last = self.seq.get(host)
        self.seq[host] = (message["epoch"], message["seq"])
        return last is not None and last[0] == message["epoch"] and message["seq"] > last[1] + 1

    async def _on_host(self, message: LiveMessage) -> None:
        host = message["host"]
        if host not in self.sub.hosts():
            return
        label = self.sub.visible[host].label
        if message["change"] == "up":
            await self._resync({host}, key=message["id"])
            if self.down.pop(host, None) is not None:
                back = regions.toast_html(_("Host %(host)s is back.") % {"host": label})
                await self._send(message["id"], [back, self._hosts_down()])
            return
        self.down.setdefault(host, message["at"])
        self._mark(message, shown=False, gone=False)
        text = _("Host %(host)s is unreachable; vmdash reconnects by itself.") % {"host": label}
        await self._send(message["id"], [regions.toast_html(text, "error"), self._hosts_down()])

    def _hosts_down(self) -> str:
        return regions.hosts_html(self.down, self.sub.visible)

    async def _on_object(self, message: LiveMessage) -> None:
        host, uuid, name = message["host"], message["uuid"], message["name"]
        href = self.sub.visible[host]
        shown = self.sub.objects.get((message["kind"], host, uuid), [])
        if not (shown or host in self.sub.host_level()):
            return
        # The policy decides before anything about this object is read or sent.
        if not policy.can(
            self.who, Action.VIEW, regions.ref_for(message["kind"], href, name, uuid)
        ):
            return
        parts: list[str] = []
        gone = False
        for region in shown:
            try:
                obj = await self._read(region, href, uuid, message["id"])
            except VirtError as err:
                log.info("live: cannot re-read %s on %s: %s", uuid, host, err)
                return  # the host's status message follows; it resyncs the page
            gone = gone or obj is None
            parts.append(await self._object_part(region, href, uuid, name, obj, message["id"]))
        self._mark(message, shown=bool(shown), gone=gone)
        await self._send(message["id"], parts)
        if toasts.toastable(message):
            self._queue_toast(message, "" if gone or not shown else _name(obj))

    async def _object_part(
        self, region: ObjectRegion, host: HostRef, uuid: str, name: str, obj: Any, key: str
    ) -> str:
        """The region as this user may see it, or its removal."""
        if obj is not None and not policy.can(self.who, region.action, obj.ref):
            obj = None  # renamed into something this user may not see: gone for them
        if obj is None:
            return await self._shared(
                (region.name, "gone", host.slug, uuid, key),
                lambda: regions.render_gone(region, host, uuid, name),
            )
        may_act = region.act is not None and policy.can(self.who, region.act, obj.ref)
        return await self._shared(
            (region.name, host.slug, uuid, key, may_act),
            lambda: regions.render_object(region, host, obj, may_act),
        )

    async def _shared(self, key: tuple[Any, ...], render: Callable[[], str]) -> str:
        """Rendered once per process for everyone with the same rights; then made
        this connection's own (its CSRF token)."""
        # One copy per language too (people/language.py gives the socket its page's).
        key = (*key, get_language())
        html = await shared().get(key, lambda: _off_loop(render)())
        return self._personal(html)

    def _personal(self, html: str) -> str:
        return html.replace(regions.CSRF_PLACEHOLDER, self.csrf_token)

    # The sampler's numbers (charts, load bars): relayed by live/ticks.py.

    async def tick(self, message: ticks.TickMessage) -> None:
        host = message["host"]
        shown = self.sub.series.get(host)
        if self.user is None or not shown or host not in self.sub.visible:
            return
        names, points = message["names"], message["points"]
        keys = {
            key
            for key, region in shown.items()
            if key in points and self._may_see_series(host, key, names.get(key, ""), region)
        }
        frame = ticks.tick_frame(message, keys)
        if frame:
            await self.send(text_data=frame)

    def _may_see_series(self, host: str, key: str, name: str, region: SeriesRegion) -> bool:
        """Asked once per object and name until the rights or the page change."""
        known = self.tick_ok.get((host, key, name))
        if known is None:
            href = self.sub.visible[host]
            if region.kind is None:
                ref: Any = href
            else:
                ref = regions.ref_for(region.kind.value, href, name, key)
            known = self.tick_ok[(host, key, name)] = policy.can(self.who, region.action, ref)
        return known

    # Host and page regions: coalesced, then re-rendered.

    def _mark(self, message: LiveMessage, *, shown: bool, gone: bool) -> None:
        host, change = message["host"], message["change"]
        if any(change in r.changes for r in self.sub.host_regions.get(host, [])):
            self.dirty_hosts[host] = message["id"]
        happening = Happening(message, self.sub.query, shown, gone)
        for page in self.sub.pages:
            if host in self.sub.page_hosts(page) and page.wants(happening):
                self.dirty_pages[page.name] = (page, message["id"])
        if self.dirty_hosts or self.dirty_pages:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self.flush_task is None or self.flush_task.done():
            self.flush_task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(DEBOUNCE)
        hosts, self.dirty_hosts = self.dirty_hosts, {}
        pages, self.dirty_pages = self.dirty_pages, {}
        parts = await self._host_parts(hosts)
        for page, key in pages.values():
            parts.append(await self._page_part(page, key))
        await self._send("flush", parts)

    async def _host_parts(self, dirty: dict[str, str]) -> list[str]:
        parts: list[str] = []
        for host, key in dirty.items():
            href = self.sub.visible[host]
            for region in self.sub.host_regions.get(host, []):
                if not policy.can(self.who, region.action, href):
                    continue
                if region.may_see is not None and not region.may_see(self.who, href):
                    continue
                value = await self._read_host(region, href, key)
                render = functools.partial(regions.render_host, region, href, value)
                parts.append(await self._shared((region.name, host, key), render))
        return parts

    async def _page_part(self, page: PageRegion, key: str) -> str:
        # Only hosts this user may see (Subscription.visible came from the policy).
        hosts = [self.sub.visible[h] for h in sorted(self.sub.page_hosts(page))]
        query = self.sub.query
        if page.personal:
            html = await database_sync_to_async(regions.render_page)(page, self.who, query, hosts)
            return self._personal(html)
        shown = tuple(h.slug for h in hosts)
        return await self._shared(
            (page.name, shown, key), lambda: regions.render_page(page, self.who, query, hosts)
        )

    # Resync: re-render everything the page shows on some hosts.

    async def _resync(
        self, hosts: set[str], key: str, attempt: int = 0, told: list[str] | None = None
    ) -> None:
        sub = self.sub
        parts: list[str] = list(told or [])
        unanswered: set[str] = set()
        for (_kind, host, uuid), shown in list(sub.objects.items()):
            if host not in hosts:
                continue
            href = sub.visible[host]
            for region in shown:
                if not policy.can(self.who, region.action, regions.ref_for(_kind, href, "", uuid)):
                    continue
                try:
                    obj = await self._read(region, href, uuid, key)
                except VirtError:
                    unanswered.add(host)
                    break
                parts.append(await self._object_part(region, href, uuid, "", obj, key))
        parts += await self._host_parts(
            {h: key for h in hosts if h in sub.host_regions and h in sub.visible}
        )
        for page in sub.pages:
            if sub.page_hosts(page) & hosts:
                parts.append(await self._page_part(page, key))
        await self._send(f"resync {' '.join(sorted(hosts))}", parts)
        if unanswered and attempt < RESYNC_RETRIES:
            # A host that just came back may not answer every connection yet.
            self._spawn(self._resync_later(unanswered, key, attempt + 1))

    async def _resync_later(self, hosts: set[str], key: str, attempt: int) -> None:
        await asyncio.sleep(RESYNC_RETRY_DELAY * attempt)
        await self._resync(hosts & self.sub.hosts(), f"{key}/retry{attempt}", attempt)

    # Reads shared by every consumer of this process.

    async def _read(self, region: ObjectRegion, host: HostRef, uuid: str, key: str) -> Any:
        read = region.read
        return await shared().get(
            cache_key(read, host.slug, uuid, key), lambda: _off_loop(read)(host, uuid)
        )

    async def _read_host(self, region: HostRegion, host: HostRef, key: str) -> Any:
        read = region.read
        return await shared().get(cache_key(read, host.slug, key), lambda: _off_loop(read)(host))

    # Toasts: changes made by someone else.

    def _queue_toast(self, message: LiveMessage, name: str = "") -> None:
        key = message["uuid"] or message["host"]
        rank = toasts.rank(message)
        pending = self.pending_toasts.get(key)
        if pending is None:
            self.pending_toasts[key] = (rank, message, name, 1)
            self._spawn(self._toast_after(key))
        elif _same_change(message, pending[1]):
            # The same thing again (a guest rebooting over and over, its
            # events arriving together on a busy machine): counted, not lost.
            self.pending_toasts[key] = (rank, message, name, pending[3] + 1)
        elif rank >= pending[0]:  # the major event of one change tells it
            self.pending_toasts[key] = (rank, message, name, 1)

    async def _toast_after(self, key: str) -> None:
        await asyncio.sleep(TOAST_GATHER)
        _rank, message, name, repeats = self.pending_toasts.pop(key)
        await self._toast(message, name, repeats)

    async def _toast(self, message: LiveMessage, name: str = "", repeats: int = 1) -> None:
        actor = await shared().get(("actor", message["id"]), lambda: toasts.find_actor(message))
        if actor is not None and actor == self.user.get_username():
            return  # they did it themselves and see the result
        text = toasts.text(message, actor, name)

        async def render() -> str:
            return regions.toast_html(text, count=repeats)

        # Rendered once per process, not once per socket (200 renders held the
        # loop ~25 ms, 0.3 s after each event: often during the next one).
        html = await shared().get(("toast", text, repeats, get_language()), render)
        await self._send(message["id"], [html])

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # Sending, and checking that the session still holds.

    async def _send(self, label: str, parts: Iterable[str]) -> None:
        """One frame per parsing context: htmx parses a frame that starts with
        a <tr> as table rows, and would mangle a <div> after it (and the
        reverse), so table rows go in a frame of their own."""
        parts = [p for p in parts if p]
        rows = [p for p in parts if _ROW_START.match(p)]
        others = [p for p in parts if not _ROW_START.match(p)]
        for frame in (rows, others):
            if frame and self.user is not None:
                await self.send(text_data=f"<!-- vmdash-live {label} -->\n" + "\n".join(frame))

    def _session_key(self) -> str | None:
        session: Any = self.scope.get("session")
        return session.session_key if session is not None else None

    async def _check_ahead(self) -> None:
        """Check the session before it falls due, so that no event waits for it
        (live_event still checks one that is overdue)."""
        while self.user is not None:
            await asyncio.sleep(REVALIDATE_EVERY * random.uniform(*CHECK_AHEAD))
            if self.user is None or not await self._still_valid():
                return

    async def _still_valid(self) -> bool:
        self.checked_at = time.monotonic()
        if await database_sync_to_async(revoke.session_holds)(self.user.pk, self._session_key()):
            self.who = await database_sync_to_async(door.load_who_id)(self.user.pk)
            return True
        await self._shut()
        return False

    async def _shut(self) -> None:
        user, self.user = self.user, None
        ticks.relay().watch(self, set())
        await self._join(set())
        await self.channel_layer.group_discard(revoke.user_group(user.pk), self.channel_name)
        await self.close(code=CLOSE_UNAUTHENTICATED)


_ROW_START = re.compile(r"\s*<(tr|td|th|tbody|thead|tfoot)[\s>]", re.IGNORECASE)


def _same_change(a: LiveMessage, b: LiveMessage) -> bool:
    """Two events that tell the same thing happened (twice), not two parts of one change."""
    return a["change"] == b["change"] and a["detail"] == b["detail"]


def _name(obj: Any) -> str:
    return str(getattr(obj, "name", "") or getattr(getattr(obj, "summary", None), "name", ""))


def _csrf_token(request: Any) -> str:
    """This connection's CSRF token, for the forms in pushed partials."""
    return get_token(request) if "CSRF_COOKIE" in request.META else ""


def _host_timeout() -> float:
    return float(settings.VMDASH_HOST_TIMEOUT)


__all__ = ["CLOSE_UNAUTHENTICATED", "EventsConsumer"]
