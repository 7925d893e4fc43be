"""Listeners that see every event the events service publishes, once.

The service runs in one process (the leader, with Redis); a sink registered
here is called there for each event, after the fan-out, so an app can keep a
record (the per-VM timeline) without the transport knowing about it. Apps
register from their `live` module, which `vmdash.live.regions.autodiscover`
imports.

A sink is a plain function called in a worker thread (it may use the ORM);
a failing sink is logged and never stops the fan-out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from django.db import DatabaseError, close_old_connections

from vmdash.virt.events import Event

log = logging.getLogger(__name__)

Sink = Callable[[Event], None]
_sinks: list[Sink] = []


def register_sink(sink: Sink) -> Sink:
    """Decorator or call: `sink(event)` runs for each published event."""
    if sink not in _sinks:
        _sinks.append(sink)
    return sink


def sinks() -> tuple[Sink, ...]:
    return tuple(_sinks)


def feed(event: Event) -> None:
    """Run every sink on `event` (from a worker thread).

    Like a request, each event starts and ends with the thread's stale or
    broken database connections closed: a PostgreSQL restart costs the sinks
    the events of that moment, not every event after it."""
    close_old_connections()
    try:
        for sink in _sinks:
            name = getattr(sink, "__name__", sink)
            try:
                sink(event)
            except DatabaseError as err:
                why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                log.warning("events: sink %s lost %r: the database does not answer (%s)",
                            name, event, why)  # fmt: skip
            except Exception:  # a sink's bug must not stop the events of everyone
                log.exception("events: sink %s failed on %r", name, event)
    finally:
        close_old_connections()


# Companions: long-running tasks that live as long as the events service
# (the stats sampler). `companion(service)` returns a coroutine; the service
# starts it when it starts and cancels it when it stops, so a companion runs
# in exactly the one process that publishes.
Companion = Callable[[Any], Coroutine[Any, Any, None]]
_companions: list[Companion] = []


def register_companion(companion: Companion) -> Companion:
    if companion not in _companions:
        _companions.append(companion)
    return companion


def companions() -> tuple[Companion, ...]:
    return tuple(_companions)
