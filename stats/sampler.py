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
from typing import Any

from django.conf import settings

from stats.history import history
from vmdash.live.sinks import register_companion
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import HostRef
from vmdash.virt.stats import read_counters

log = logging.getLogger(__name__)


def interval() -> float:
    return float(getattr(settings, "VMDASH_STATS_INTERVAL", 2.0))


class Sampler:
    def __init__(self, hosts: Any, every: float) -> None:
        self.hosts = hosts  # () -> list[HostRef]
        self.every = every
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
            history().failed(host.slug, str(err))
        else:
            history().add(counters)
        finally:
            self.busy.discard(host.slug)


@register_companion
async def sample_while_publishing(service: Any) -> None:
    """The events service's companion: sample the hosts it watches."""
    every = interval()
    if every <= 0:
        return

    def hosts() -> list[HostRef]:
        return [watcher.host for watcher in service.watchers.values()]

    log.info("stats: sampling every %g s", every)
    await Sampler(hosts, every).run()
