"""What this web process heard lately: when each host last had an event.

A page is rendered, then its WebSocket subscribes a moment later; an event in
between would be lost. The page sends the time it was rendered, and the
consumer asks the recorder whether anything happened on the page's hosts
since then: only then does it resync (re-render) what the page shows.

The recorder listens on the `vmdash.all` group, so it hears every message
whichever process publishes it (embedded service or `vmdash_events`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from channels.layers import get_channel_layer

from vmdash.live.listener import LayerListener
from vmdash.live.messages import ALL

log = logging.getLogger(__name__)

# Channel-layer group memberships expire (a day by default); renew well before.
_REJOIN_EVERY = 3600.0


class Recorder(LayerListener):
    NAME = "vmdash-live-recorder"
    WHAT = "the live recorder"

    def __init__(self) -> None:
        super().__init__()
        self.listening_since: float | None = None
        self.last_at: dict[str, float] = {}
        self.down_at: dict[str, float] = {}  # hosts the events service says are down, since

    def _starting(self) -> None:
        self.listening_since = None

    def _lost(self) -> None:
        self.listening_since = None  # pages resync until it listens again

    async def _listen(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            await asyncio.Event().wait()  # no layer: nothing to hear, ever
            return
        # The default prefix: channels-redis polls one Redis key per process
        # for all its channels; a channel of another prefix would hold that
        # poll (one lock) on a key of its own and starve the consumers.
        channel = await layer.new_channel()
        await layer.group_add(ALL, channel)
        if self.listening_since is None:
            self.listening_since = time.time()
        rejoin = asyncio.create_task(self._rejoin(layer, channel))
        try:
            # A plain await: asyncio.wait_for (Python 3.11) can swallow a
            # cancellation that arrives with a message, and never stop.
            while True:
                message = await layer.receive(channel)
                self.heard(message)
        finally:
            rejoin.cancel()
            with contextlib.suppress(Exception):
                await layer.group_discard(ALL, channel)

    def heard(self, message: dict[str, Any]) -> None:
        host = message.get("host")
        if not isinstance(host, str):
            return
        self.last_at[host] = time.time()
        if message.get("kind") == "host" and message.get("change") == "down":
            self.down_at.setdefault(host, float(message.get("at") or time.time()))
        elif message.get("kind") == "host":
            self.down_at.pop(host, None)

    def down(self, hosts: set[str]) -> dict[str, float]:
        """The hosts among `hosts` that are down as far as this process heard, and since when."""
        return {h: at for h, at in self.down_at.items() if h in hosts}

    def down_since(self, host: str) -> datetime | None:
        at = self.down_at.get(host)
        return datetime.fromtimestamp(at, tz=UTC) if at is not None else None

    @staticmethod
    async def _rejoin(layer: Any, channel: str) -> None:
        while True:
            await asyncio.sleep(_REJOIN_EVERY)
            await layer.group_add(ALL, channel)

    def changed_since(self, hosts: set[str], since: float) -> set[str]:
        """The hosts among `hosts` that may have changed since `since` (time.time()).

        All of them when the recorder was not listening yet at that time.
        """
        if self.listening_since is None or self.listening_since > since:
            return set(hosts)
        return {h for h in hosts if self.last_at.get(h, 0.0) >= since}


_recorder = Recorder()


def recorder() -> Recorder:
    return _recorder
