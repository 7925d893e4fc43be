"""The webhooks' part of the events service (vmdash/live/sinks.py): a sink
that queues VM and host events, the sender and the periodic checks."""

from __future__ import annotations

from vmdash.hooks.checks import check_while_publishing
from vmdash.hooks.queue import on_event
from vmdash.hooks.sender import send_while_publishing
from vmdash.live.sinks import register_companion, register_sink

register_sink(on_event)
register_companion(send_while_publishing)
register_companion(check_while_publishing)
