"""A task that listens to the channel layer for as long as the process
serves, started by the first consumer on the running loop and restarted
after the layer hiccups (Redis gone a moment): what the recorder of recent
events (recent.py) and the tick relay (ticks.py) share."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class LayerListener:
    NAME = "vmdash-live-listener"  # the task's name
    WHAT = "a live listener"  # for the log line when the layer is lost

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and self._loop is loop and not self._task.done():
            return
        self._starting()
        self._loop = loop
        self._task = loop.create_task(self._run(), name=self.NAME)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - the layer hiccuped: listen again
                log.warning("%s lost the channel layer (%r); listening again", self.WHAT, err)
                self._lost()
                await asyncio.sleep(1.0)

    async def _listen(self) -> None:
        raise NotImplementedError

    def _starting(self) -> None:
        """Called before a (re)start on a loop."""

    def _lost(self) -> None:
        """Called when the layer failed, before listening again."""
