"""The events service: one HostWatcher per enabled host, publishing to the channel layer.

It runs in one place per deployment:

- embedded (the default, in-memory channel layer): inside the web process,
  started once by the first WebSocket that connects (`ensure_embedded`), on
  the server's own asyncio loop;
- external (with REDIS_URL): `manage.py vmdash_events`, its own process;
  every web process receives its messages through Redis. A Redis lock makes
  sure that only one such process publishes at a time (`run_as_leader`); a
  second one waits as a standby and takes over when the first goes away.

The service only says *that* something changed; the consumers re-read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from vmdash.live import sinks
from vmdash.live.messages import groups_for, to_message
from vmdash.live.regions import registry
from vmdash.virt.events import Event, HostStatus, HostWatcher
from vmdash.virt.refs import HostRef

log = logging.getLogger(__name__)


def enabled_hosts() -> list[HostRef]:
    from vmdash.models import Host

    return [h.ref for h in Host.objects.filter(enabled=True)]


class EventService:
    """Watch every enabled host; publish each event to its groups, in order."""

    def __init__(
        self,
        layer: BaseChannelLayer,
        *,
        load_hosts: Callable[[], list[HostRef]] = enabled_hosts,
        refresh_interval: float | None = None,
        min_backoff: float = 0.5,
        max_backoff: float | None = None,
    ) -> None:
        self.layer = layer
        self.load_hosts = load_hosts
        self.refresh_interval = refresh_interval or float(
            getattr(settings, "VMDASH_EVENTS_HOST_REFRESH", 5)
        )
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff or float(getattr(settings, "VMDASH_EVENTS_MAX_BACKOFF", 15))
        self.epoch = uuid.uuid4().hex[:8]
        self.watchers: dict[str, HostWatcher] = {}
        self.published = 0
        self._seq: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Event] | None = None
        self._publish_failed = False
        self._sink_tasks: set[asyncio.Future[None]] = set()

    async def run(self) -> None:
        """Run until cancelled: refresh the host list now and then, publish always."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        publisher = asyncio.create_task(self._publish_forever(), name="vmdash-events-publish")
        registry().discover()  # the apps' live modules register sinks and companions
        others = [asyncio.create_task(companion(self)) for companion in sinks.companions()]
        log.info("events service %s started", self.epoch)
        try:
            while True:
                try:
                    await self.refresh()
                except Exception:
                    log.exception("events: cannot read the host list")
                await asyncio.sleep(self.refresh_interval)
        finally:
            publisher.cancel()
            for task in others:
                task.cancel()
            for watcher in self.watchers.values():
                watcher.stop(timeout=0)
            self.watchers.clear()
            log.info("events service %s stopped", self.epoch)

    async def refresh(self) -> None:
        """Start watchers for new hosts, stop those for removed or changed ones."""
        # As a request: the database connection is checked before and after,
        # so a restarted PostgreSQL is met with a new one, not an error for ever.
        wanted = {h.slug: h for h in await database_sync_to_async(self.load_hosts)()}
        for slug, watcher in list(self.watchers.items()):
            if slug not in wanted or wanted[slug].uri != watcher.host.uri:
                watcher.stop(timeout=0)
                del self.watchers[slug]
        for slug, host in wanted.items():
            if slug not in self.watchers:
                watcher = HostWatcher(
                    host, self._sink, min_backoff=self.min_backoff, max_backoff=self.max_backoff
                )
                self.watchers[slug] = watcher
                watcher.start()

    def _sink(self, event: Event) -> None:
        """From libvirt's and the watchers' threads: hand over to the loop, never block."""
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: we are stopping
            loop.call_soon_threadsafe(queue.put_nowait, event)

    async def _publish_forever(self) -> None:
        assert self._queue is not None
        while True:
            event = await self._queue.get()
            if event.host not in self.watchers:
                continue  # a host removed a moment ago
            await self.publish(event)

    def _feed_sinks(self, event: Event) -> None:
        """Hand the event to the apps' sinks in a worker thread, after the fan-out."""
        if not sinks.sinks():
            return
        task = asyncio.ensure_future(sync_to_async(sinks.feed, thread_sensitive=False)(event))
        self._sink_tasks.add(task)
        task.add_done_callback(self._sink_tasks.discard)

    async def publish(self, event: Event) -> None:
        seq = self._seq.get(event.host, 0) + 1
        self._seq[event.host] = seq
        message = to_message(event, self.epoch, seq)
        message["sent"] = time.time()
        try:
            for group in groups_for(message):
                await self.layer.group_send(group, dict(message))
        except Exception:
            if not self._publish_failed:
                log.exception("events: cannot publish to the channel layer")
            self._publish_failed = True
            return
        self.published += 1
        self._feed_sinks(event)
        if self._publish_failed:
            self._publish_failed = False
            log.info("events: the channel layer is back; every page resyncs")
            for slug, watcher in self.watchers.items():
                if watcher.connected.is_set() and slug != event.host:
                    await self.publish(HostStatus(slug, True, "", time.time()))
            await self.publish(HostStatus(event.host, True, "", time.time()))


# Embedded mode: one service per process, on the server's loop.

_embedded: dict[str, Any] = {"task": None, "loop": None}


def ensure_embedded() -> None:
    """Start the in-process service once (from async code on the server's loop).

    Daphne has no ASGI lifespan, so the first WebSocket starts it; a page
    before that has nothing to push to anyway. Also starts this process's
    recorder of recent events (both modes).
    """
    from vmdash.live.recent import recorder

    loop = asyncio.get_running_loop()
    recorder().ensure_running()
    if getattr(settings, "VMDASH_EVENTS", "embedded") != "embedded":
        return
    task = _embedded["task"]
    if task is not None and _embedded["loop"] is loop and not task.done():
        return
    if task is not None and task.done() and not task.cancelled() and task.exception():
        log.error("the embedded events service had stopped: %r; restarting", task.exception())
    layer = get_channel_layer()
    if layer is None:
        log.error("no channel layer is configured: live updates are off")
        return
    service = EventService(layer)
    _embedded.update(task=loop.create_task(service.run(), name="vmdash-events"), loop=loop)
    _embedded["service"] = service


def embedded_service() -> EventService | None:
    task = _embedded["task"]
    if task is None or task.done():
        return None
    service: EventService = _embedded["service"]
    return service


async def stop_embedded() -> None:
    task = _embedded["task"]
    _embedded.update(task=None, loop=None, service=None)
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# External mode: the leader among `vmdash_events` processes publishes.

LEADER_KEY = "vmdash:events:leader"
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


async def run_as_leader(
    redis_url: str,
    make_service: Callable[[], EventService],
    *,
    ttl: float = 10.0,
    key: str = LEADER_KEY,
) -> None:
    """Run a service while holding the Redis lock `key`; wait as a standby otherwise.

    The lock expires `ttl` seconds after its holder stops renewing it, so a
    standby takes over within about `ttl` of a crash, and at once after a
    clean stop (the lock is released).
    """
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client: Any = aioredis.from_url(redis_url)
    token = uuid.uuid4().hex
    said_standby = False
    try:
        while True:
            try:
                got = await client.set(key, token, nx=True, px=int(ttl * 1000))
            except RedisError as err:
                log.warning("events: Redis does not answer (%s); retrying", err)
                await asyncio.sleep(ttl / 3)
                continue
            if not got:
                if not said_standby:
                    log.info("events: another vmdash_events process publishes; standing by")
                    said_standby = True
                await asyncio.sleep(ttl / 3)
                continue
            said_standby = False
            log.info("events: this process publishes the events (lock %s)", key)
            task = asyncio.create_task(make_service().run(), name="vmdash-events")
            try:
                while not task.done():
                    await asyncio.wait({task}, timeout=ttl / 3)
                    try:
                        renewed = await client.eval(_RENEW, 1, key, token, int(ttl * 1000))
                    except RedisError as err:
                        log.warning("events: cannot renew the lock (%s)", err)
                        renewed = 0
                    if not renewed:
                        log.warning("events: lost the lock; standing by")
                        break
            finally:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if not task.cancelled() and (failure := task.exception()) is not None:
                raise failure
    finally:
        with contextlib.suppress(RedisError):
            await client.eval(_RELEASE, 1, key, token)
        await client.aclose()
