"""The events service as the events process runs it, on the test's loop:
its watchers, the apps' sinks and companions (the hooks' sender among them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from channels.layers import InMemoryChannelLayer

from vmdash.hooks import sender
from vmdash.live.service import EventService
from vmdash.virt.refs import HostRef


@asynccontextmanager
async def events_service(hosts: Callable[[], list[HostRef]]) -> AsyncIterator[EventService]:
    service = EventService(InMemoryChannelLayer(), load_hosts=hosts, refresh_interval=0.5)
    task = asyncio.create_task(service.run(), name="vmdash-events-under-test")
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not (
            sender.current() is not None
            and service.watchers
            and all(w.connected.is_set() for w in service.watchers.values())
        ):
            assert not task.done(), task
            assert loop.time() < deadline, "the events service did not connect"
            await asyncio.sleep(0.05)
        yield service
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
