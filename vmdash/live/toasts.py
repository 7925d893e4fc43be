"""Say who changed what: "web1 was shut down by alice" / "... outside vmdash".

libvirt does not know who asked; the audit trail does. An event is matched
to a recent successful audit entry of a dashboard action that causes it
(same host and UUID). The entry is written right after libvirt answered, so
the event may arrive first: the lookup retries for a moment before it
concludes that the change came from outside vmdash.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from channels.db import database_sync_to_async

from vmdash.live.messages import LiveMessage
from vmdash.virt.events import Change

# Dashboard actions (AuditEntry.action) that make libvirt report a change.
ACTIONS: dict[str, set[str]] = {
    Change.STARTED: {"start"},
    Change.STOPPED: {"shutdown", "force-off", "save"},
    Change.SUSPENDED: {"pause", "save"},
    Change.RESUMED: {"resume"},
    Change.UNDEFINED: {"delete"},
    Change.DEFINED: {"define", "create", "edit", "rename"},
    Change.REBOOTED: {"reboot"},
}
# How long after a dashboard action its event may come (a guest takes a while
# to shut down after the ACPI request).
WINDOW = timedelta(seconds=120)
RETRIES = (0.0, 0.25, 0.5, 1.0)

# What the toast says, by change and detail; None: no toast for it.
_VERBS: dict[tuple[str, str], str | None] = {
    (Change.STARTED, ""): "was started",
    (Change.STARTED, "restored"): "was restored from its saved state",
    (Change.STARTED, "from snapshot"): "was reverted to a snapshot",
    (Change.STOPPED, ""): "was shut down",
    (Change.STOPPED, "destroyed"): "was forced off",
    (Change.STOPPED, "crashed"): "crashed",
    (Change.STOPPED, "saved"): "was saved (hibernated)",
    (Change.STOPPED, "failed"): "failed",
    (Change.STOPPED, "migrated"): "was migrated away",
    (Change.STOPPED, "from snapshot"): "was reverted to a snapshot",
    (Change.SUSPENDED, ""): "was paused",
    (Change.SUSPENDED, "ioerror"): "was paused on a disk I/O error",
    (Change.SUSPENDED, "watchdog"): "was paused by its watchdog",
    (Change.RESUMED, ""): "was resumed",
    (Change.UNDEFINED, ""): "was deleted",
    (Change.UNDEFINED, "renamed"): None,  # the DEFINED/renamed event tells it
    (Change.DEFINED, ""): "was defined",
    (Change.DEFINED, "updated"): "had its definition changed",
    (Change.DEFINED, "renamed"): "is the new name of a renamed VM",
    (Change.CRASHED, ""): "crashed",
    (Change.PMSUSPENDED, ""): "was suspended by its guest",
    (Change.REBOOTED, ""): "was rebooted",
}
# Changes nobody "does": no "by ..." and no "outside vmdash".
_UNATTRIBUTED = {
    (Change.STOPPED, "crashed"),
    (Change.STOPPED, "failed"),
    (Change.CRASHED, ""),
    (Change.PMSUSPENDED, ""),
    (Change.SUSPENDED, "ioerror"),
    (Change.SUSPENDED, "watchdog"),
}
_KIND_NOUN = {"domain": "", "network": "Network ", "pool": "Storage pool "}


# Networks and storage pools.
_OTHER_VERBS: dict[str, str] = {
    Change.DEFINED: "was defined",
    Change.UNDEFINED: "was removed",
    Change.STARTED: "was started",
    Change.STOPPED: "was stopped",
    Change.CREATED: "was built",
    Change.DELETED: "was deleted",
}


def verb(change: str, detail: str, kind: str = "domain") -> str | None:
    if kind != "domain":
        return _OTHER_VERBS.get(change)
    if (change, detail) in _VERBS:
        return _VERBS[(change, detail)]
    return _VERBS.get((change, ""))


_MAJOR = {Change.STARTED, Change.STOPPED, Change.DEFINED, Change.UNDEFINED, Change.CRASHED}


def rank(message: LiveMessage) -> int:
    """Which of several events of one change the toast tells: the major one."""
    return 2 if message["change"] in _MAJOR else 1


def toastable(message: LiveMessage) -> bool:
    kind = message["kind"]
    return kind != "host" and verb(message["change"], message["detail"], kind) is not None


def attributed(message: LiveMessage) -> bool:
    return (message["change"], message["detail"]) not in _UNATTRIBUTED and (
        (message["change"], "") not in _UNATTRIBUTED
    )


def _find_actor(host: str, uuid: str, change: str, at: float) -> str | None:
    from vmdash.models import AuditEntry

    actions = ACTIONS.get(change)
    if not actions or not uuid:
        return None
    since = datetime.fromtimestamp(at, tz=UTC) - WINDOW
    entry: str | None = (
        AuditEntry.objects.filter(
            host=host,
            object_uuid=uuid,
            outcome=AuditEntry.Outcome.OK,
            action__in=actions,
            at__gte=since,
        )
        .order_by("-at")
        .values_list("username", flat=True)
        .first()
    )
    return entry or None


async def find_actor(message: LiveMessage) -> str | None:
    """The user whose dashboard action caused this event, or None (outside vmdash)."""
    if not attributed(message) or message["change"] not in ACTIONS:
        return None
    for delay in RETRIES:
        if delay:
            await asyncio.sleep(delay)
        actor: str | None = await database_sync_to_async(_find_actor)(
            message["host"], message["uuid"], message["change"], message["at"]
        )
        if actor:
            return actor
    return None


def text(message: LiveMessage, actor: str | None, name: str = "") -> str:
    what = verb(message["change"], message["detail"], message["kind"]) or "changed"
    noun = _KIND_NOUN.get(message["kind"], "")
    subject = f"{noun}{name or message['name']}"
    if not attributed(message):
        return f"{subject} {what}."
    return f"{subject} {what} {f'by {actor}' if actor else 'outside vmdash'}."
