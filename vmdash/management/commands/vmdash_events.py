"""Run the libvirt events service as its own process (Redis deployments).

One per deployment publishes: with REDIS_URL, a lock in Redis elects it, and
further `vmdash_events` processes wait as standbys. `manage.py vmdash_run`
starts one beside Daphne when VMDASH_EVENTS is "external" (the default with
REDIS_URL); see docs/live-events.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from vmdash.live.service import EventService, run_as_leader
from vmdash.startcheck import services_answer


class Command(BaseCommand):
    help = "Watch every enabled host's libvirt events and publish them to the channel layer."

    def handle(self, *args: Any, **options: Any) -> None:
        services_answer()
        layer = get_channel_layer()
        if layer is None:
            raise CommandError("No channel layer is configured (CHANNEL_LAYERS).")
        if not settings.REDIS_URL:
            self.stderr.write(
                "vmdash_events: without REDIS_URL the channel layer is in memory, so web "
                "processes cannot hear this one; the web process runs its own (embedded)."
            )
        self.stdout.write(f"vmdash_events: publishing through {type(layer).__name__}")
        asyncio.run(self._main())

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        layer = get_channel_layer()
        assert layer is not None
        if settings.REDIS_URL:
            work = run_as_leader(settings.REDIS_URL, lambda: EventService(layer))
        else:
            work = EventService(layer).run()
        task = asyncio.ensure_future(work)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.stdout.write("vmdash_events: stopped")
