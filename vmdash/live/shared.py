"""One re-read per event and process, however many pages show the object.

When an event reaches 200 open pages of one web process, each consumer asks
for the same VM; the first asks libvirt, the others await its answer. The
answer is kept a few seconds under the event's id (a later event has a new
id, so nothing stale is ever served for it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Shared:
    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._entries: dict[Hashable, tuple[asyncio.Future[Any], float]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.computed = 0  # how many factories ran (tests, benchmarks)

    async def get(self, key: Hashable, factory: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests): futures of the old one are useless
            self._entries.clear()
            self._loop = loop
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > self.ttl:
            self._prune(now)
            future: asyncio.Future[Any] = asyncio.ensure_future(factory())
            self._entries[key] = (future, now)
            self.computed += 1
        else:
            future = entry[0]
        result: T = await asyncio.shield(future)
        return result

    def _prune(self, now: float) -> None:
        if len(self._entries) < 256:
            return
        for key, (future, at) in list(self._entries.items()):
            if future.done() and now - at > self.ttl:
                del self._entries[key]


_shared = Shared()


def shared() -> Shared:
    return _shared
