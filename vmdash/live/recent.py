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

from channels.layers import get_channel_layer

from vmdash.live.messages import ALL

log = logging.getLogger(__name__)

# Channel-layer group memberships expire (a day by default); renew well before.
_REJOIN_EVERY = 3600.0


class Recorder:
    def __init__(self) -> None:
        self.listening_since: float | None = None
        self.last_at: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and self._loop is loop and not self._task.done():
            return
        self.listening_since = None
        self._loop = loop
        self._task = loop.create_task(self._run(), name="vmdash-live-recorder")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        channel = await layer.new_channel("vmdash-recorder.")
        joined = 0.0
        try:
            while True:
                if time.monotonic() - joined > _REJOIN_EVERY:
                    await layer.group_add(ALL, channel)
                    joined = time.monotonic()
                    if self.listening_since is None:
                        self.listening_since = time.time()
                try:
                    message = await asyncio.wait_for(layer.receive(channel), _REJOIN_EVERY)
                except TimeoutError:
                    continue
                host = message.get("host")
                if isinstance(host, str):
                    self.last_at[host] = time.time()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the live recorder stopped")
            self.listening_since = None
        finally:
            with contextlib.suppress(Exception):
                await layer.group_discard(ALL, channel)

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
