"""One sampler per host, beside the events service: one bulk read per tick.

Each tick starts a read of every host the events service watches whose
previous read has finished: a slow or silent host skips ticks and never
delays the others (its read waits in a worker thread, at most the
connection pool's timeout). Registered as a companion of the events
service (vmdash/live/sinks.py), so it runs in the one process that
publishes, and stops with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings

from stats.history import Put, history
from stats.shared import SharedHistory, shared
from vmdash.live.sinks import register_companion
from vmdash.live.ticks import publish_tick, tick_message
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import HostRef
from vmdash.virt.stats import read_counters

log = logging.getLogger(__name__)


def interval() -> float:
    return float(getattr(settings, "VMDASH_STATS_INTERVAL", 2.0))


class Sampler:
    def __init__(self, hosts: Any, every: float, layer: Any = None) -> None:
        self.hosts = hosts  # () -> list[HostRef]
        self.every = every
        self.layer = layer  # the channel layer the ticks go out on (live/ticks.py)
        self.busy: set[str] = set()
        self.ticks = 0
        self.skipped = 0

    async def run(self) -> None:
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                self.tick(tasks)
                await asyncio.sleep(self.every)
        finally:
            for task in tasks:
                task.cancel()

    def tick(self, tasks: set[asyncio.Task[None]]) -> None:
        self.ticks += 1
        for host in self.hosts():
            if host.slug in self.busy:
                self.skipped += 1
                continue
            self.busy.add(host.slug)
            task = asyncio.create_task(self.read(host))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def read(self, host: HostRef) -> None:
        try:
            counters = await asyncio.to_thread(read_counters, host)
        except VirtError as err:
            why = str(err)
            history().failed(host.slug, why)
            await self._share(lambda store: store.failed(host.slug, why))
        else:
            puts = history().add(counters)
            gone, history().forgotten = history().forgotten, []
            await self._share(lambda store: _copy(store, host.slug, puts, gone))
            await self._push(host.slug, counters.at, puts)
        finally:
            self.busy.discard(host.slug)

    async def _push(self, host: str, at: float, puts: list[Put]) -> None:
        """The tick to the pages that draw it (a lost one is redrawn by the next)."""
        if self.layer is None or not puts:
            return
        points = {put.key: [put.at, *put.values] for put in puts}
        names = {put.key: put.name for put in puts}
        try:
            await publish_tick(self.layer, tick_message(host, at, self.every, points, names))
        except Exception as err:  # noqa: BLE001 - the layer's own errors, whichever layer
            log.warning("stats: could not push a tick (%r)", err)

    async def _share(self, write: Callable[[SharedHistory], None]) -> None:
        """With Redis: the same in the shared history, from a worker thread."""
        if not settings.REDIS_URL:
            return
        from redis.exceptions import RedisError

        try:
            await asyncio.to_thread(write, shared(settings.REDIS_URL, self.every))
        except RedisError as err:  # the next tick writes again; nothing to undo
            log.warning("stats: could not copy a tick to Redis (%s)", err)


def _copy(store: SharedHistory, host: str, puts: list[Put], gone: list[tuple[str, str]]) -> None:
    store.write(host, puts)
    for gone_host in {h for h, _ in gone}:
        store.forget(gone_host, [k for h, k in gone if h == gone_host])


@register_companion
async def sample_while_publishing(service: Any) -> None:
    """The events service's companion: sample the hosts it watches."""
    every = interval()
    if every <= 0:
        return

    def hosts() -> list[HostRef]:
        return [watcher.host for watcher in service.watchers.values()]

    log.info("stats: sampling every %g s", every)
    await Sampler(hosts, every, getattr(service, "layer", None)).run()
