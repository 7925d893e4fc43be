"""Events become Delivery rows here; the sender (sender.py) posts them.

Everything here runs in a worker thread of the events service (the sink and
the checks) or in a request ("send test"): it only writes rows and wakes
the sender, never posts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

import vmdash.virt.domains as virt_domains
from vmdash.hooks import sender
from vmdash.hooks.kinds import Kind, host_kind, vm_kind
from vmdash.hooks.models import Delivery, Hook, Occurrence
from vmdash.models import Host as HostModel
from vmdash.virt.errors import VirtError
from vmdash.virt.events import Event, HostStatus, ObjectEvent


def hooks_for(kind: str) -> list[Hook]:
    return [h for h in Hook.objects.filter(enabled=True) if kind in h.events]


def enqueue(kind: str, data: dict[str, Any], hooks: Iterable[Hook] | None = None) -> list[Delivery]:
    """Queue `kind` for `hooks` (default: every enabled hook that chose it)."""
    targets = list(hooks) if hooks is not None else hooks_for(kind)
    now = timezone.now()
    made = [
        Delivery.objects.create(hook=h, kind=kind, payload=data, next_try_at=now) for h in targets
    ]
    if made:
        sender.wake()
    return made


def first_time(hook: Hook, key: str) -> bool:
    """Note that `hook` was told about `key`; False if it had been already."""
    try:
        with transaction.atomic():
            Occurrence.objects.create(hook=hook, key=key[:200])
    except IntegrityError:
        return False
    return True


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).isoformat() if at else timezone.now().isoformat()


def _tagged(event: ObjectEvent, hooks: list[Hook]) -> list[Hook]:
    """The hooks that want this VM: all, or those whose tag it carries (read once)."""
    if not any(h.vm_tag for h in hooks):
        return hooks
    tags: frozenset[str] = frozenset()
    host = HostModel.objects.filter(slug=event.host).first()
    if host is not None:
        try:
            tags = virt_domains.tags_by_uuid(host.ref, event.uuid) or frozenset()
        except VirtError:
            tags = frozenset()  # gone or unreachable: no tag can be told
    return [h for h in hooks if not h.vm_tag or h.vm_tag in tags]


def on_event(event: Event) -> None:
    """The events service's sink: a VM's or host's event, for the hooks that want it."""
    if isinstance(event, ObjectEvent):
        kind = vm_kind(event)
        targets = _tagged(event, hooks_for(kind)) if kind is not None else []
        if kind is not None and targets:
            data = {
                "host": event.host,
                "vm": event.name,
                "uuid": event.uuid,
                "change": event.change.value,
                "detail": event.detail,
                "at": _iso(event.at),
            }
            enqueue(kind, data, targets)
    elif isinstance(event, HostStatus):
        on_host_status(event)


def on_host_status(event: HostStatus) -> None:
    """Unreachable once per outage; back only after an outage the hook heard of.

    The watcher says "up" each time it connects (also when the service starts);
    the Occurrence of the outage tells a return from a first connection."""
    kind = host_kind(event)
    key = f"host-down:{event.host}"
    data = {"host": event.host, "message": event.message, "at": _iso(event.at)}
    wanting = [
        h
        for h in Hook.objects.filter(enabled=True)
        if {Kind.HOST_UNREACHABLE, Kind.HOST_BACK} & set(h.events)
    ]
    told: list[Hook] = []
    for hook in wanting:
        if kind == Kind.HOST_UNREACHABLE:
            if first_time(hook, key) and Kind.HOST_UNREACHABLE in hook.events:
                told.append(hook)
        else:
            gone, _kinds = Occurrence.objects.filter(hook=hook, key=key).delete()
            if gone and Kind.HOST_BACK in hook.events:
                told.append(hook)
    if told and kind is not None:
        enqueue(kind, data, told)


def send_test(hook: Hook, username: str) -> Delivery:
    """A "ping" for this hook alone, delivered by the sender like any event."""
    data = {"hook": hook.name, "by": username, "message": "a test from vmdash"}
    return enqueue(Kind.PING, data, [hook])[0]
