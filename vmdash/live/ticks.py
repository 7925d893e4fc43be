"""The sampler's numbers, pushed to the pages that draw them.

Each tick the stats sampler (in the one process that publishes) sends one
message per host to the `vmdash.ticks` group: every object's newest values.
Each web process listens there on one channel (the relay below), like the
recorder of events, so a tick crosses the channel layer once per process
whatever the number of pages; the relay hands each consumer whose page shows
a chart or a load bar of that host (a SeriesRegion, live/regions.py) the
values of its own objects, and the consumer asks the policy before it sends
them on as one JSON frame:

    {"vmdash-tick": 1, "host": "local", "at": 1764770000.5, "interval": 2.0,
     "points": {"<uuid>": [at, cpu, memory_used, …], "": [at, …]}}

("" is the host's own series; the values are stats/history.py's FIELDS.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypedDict

from channels.layers import get_channel_layer

from vmdash.live.listener import LayerListener

log = logging.getLogger(__name__)

TICKS = "vmdash.ticks"
TICK_TYPE = "live.tick"
_REJOIN_EVERY = 3600.0


class TickMessage(TypedDict):
    type: str  # TICK_TYPE
    host: str
    at: float
    interval: float
    points: dict[str, list[float | None]]  # key -> [at, *values]
    names: dict[str, str]  # key -> the object's name, for the policy


def tick_message(
    host: str,
    at: float,
    interval: float,
    points: Mapping[str, Sequence[float | None]],
    names: Mapping[str, str],
) -> TickMessage:
    return TickMessage(
        type=TICK_TYPE,
        host=host,
        at=at,
        interval=interval,
        points={k: [None if v is None else round(v, 2) for v in p] for k, p in points.items()},
        names=dict(names),
    )


def tick_frame(message: TickMessage, keys: set[str]) -> str:
    """What one page is sent: the points of the objects it shows and may see."""
    points = {k: p for k, p in message["points"].items() if k in keys}
    if not points:
        return ""
    frame = {
        "vmdash-tick": 1,
        "host": message["host"],
        "at": message["at"],
        "interval": message["interval"],
        "points": points,
    }
    return json.dumps(frame, separators=(",", ":"))


class Watcher(Protocol):
    async def tick(self, message: TickMessage) -> None: ...


class Relay(LayerListener):
    """This process's one listener on `vmdash.ticks`, and the pages it serves."""

    NAME = "vmdash-live-ticks"
    WHAT = "the tick relay"

    def __init__(self) -> None:
        super().__init__()
        # host -> consumers watching it; weak, so a consumer that was cancelled
        # without its disconnect (a server's close timeout) does not stay here
        self.watchers: dict[str, weakref.WeakSet[Watcher]] = {}
        self.relayed = 0

    def watch(self, watcher: Watcher, hosts: set[str]) -> None:
        """`watcher` follows exactly `hosts` from now on (none: it leaves)."""
        for host in list(self.watchers):
            if host not in hosts:
                self.watchers[host].discard(watcher)
                if not self.watchers[host]:
                    del self.watchers[host]
        for host in hosts:
            self.watchers.setdefault(host, weakref.WeakSet()).add(watcher)
        if hosts:
            self.ensure_running()

    async def _listen(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            await asyncio.Event().wait()
            return
        channel = await layer.new_channel()
        await layer.group_add(TICKS, channel)
        rejoin = asyncio.create_task(self._rejoin(layer, channel))
        try:
            while True:  # a plain await, as the recorder's (live/recent.py)
                message = await layer.receive(channel)
                await self.relay(message)
        finally:
            rejoin.cancel()
            with contextlib.suppress(Exception):
                await layer.group_discard(TICKS, channel)

    async def relay(self, message: Any) -> None:
        if not isinstance(message, dict) or message.get("type") != TICK_TYPE:
            return
        watchers = list(self.watchers.get(str(message.get("host")), ()))
        if not watchers:
            return
        self.relayed += 1
        results = await asyncio.gather(
            *(w.tick(message) for w in watchers),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, Exception):
                log.warning("live: a tick could not be sent: %r", result)

    @staticmethod
    async def _rejoin(layer: Any, channel: str) -> None:
        while True:
            await asyncio.sleep(_REJOIN_EVERY)
            await layer.group_add(TICKS, channel)


async def publish_tick(layer: Any, message: TickMessage) -> None:
    """From the sampler: one message per host and tick, for every web process."""
    await layer.group_send(TICKS, dict(message))


_relay = Relay()


def relay() -> Relay:
    return _relay
