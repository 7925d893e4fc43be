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
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import pgettext, pgettext_lazy

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

# What the toast says, by change and detail; None: no toast for it. The verbs
# carry their kind as context: Russian agrees them with the noun (the VM and
# the network are feminine there, the pool masculine).
Text = str | Promise
_VERBS: dict[tuple[str, str], Text | None] = {
    (Change.STARTED, ""): pgettext_lazy("vm", "was started"),
    (Change.STARTED, "restored"): pgettext_lazy("vm", "was restored from its saved state"),
    (Change.STARTED, "from snapshot"): pgettext_lazy("vm", "was reverted to a snapshot"),
    (Change.STOPPED, ""): pgettext_lazy("vm", "was shut down"),
    (Change.STOPPED, "destroyed"): pgettext_lazy("vm", "was forced off"),
    (Change.STOPPED, "crashed"): pgettext_lazy("vm", "crashed"),
    (Change.STOPPED, "saved"): pgettext_lazy("vm", "was saved (hibernated)"),
    (Change.STOPPED, "failed"): pgettext_lazy("vm", "failed"),
    (Change.STOPPED, "migrated"): pgettext_lazy("vm", "was migrated away"),
    (Change.STOPPED, "from snapshot"): pgettext_lazy("vm", "was reverted to a snapshot"),
    (Change.SUSPENDED, ""): pgettext_lazy("vm", "was paused"),
    (Change.SUSPENDED, "ioerror"): pgettext_lazy("vm", "was paused on a disk I/O error"),
    (Change.SUSPENDED, "watchdog"): pgettext_lazy("vm", "was paused by its watchdog"),
    (Change.RESUMED, ""): pgettext_lazy("vm", "was resumed"),
    (Change.UNDEFINED, ""): pgettext_lazy("vm", "was deleted"),
    (Change.UNDEFINED, "renamed"): None,  # the DEFINED/renamed event tells it
    (Change.DEFINED, ""): pgettext_lazy("vm", "was defined"),
    (Change.DEFINED, "updated"): pgettext_lazy("vm", "had its definition changed"),
    (Change.DEFINED, "renamed"): pgettext_lazy("vm", "is the new name of a renamed VM"),
    (Change.CRASHED, ""): pgettext_lazy("vm", "crashed"),
    (Change.PMSUSPENDED, ""): pgettext_lazy("vm", "was suspended by its guest"),
    (Change.REBOOTED, ""): pgettext_lazy("vm", "was rebooted"),
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
# The subject of the sentence, by kind.
_SUBJECTS: dict[str, Text] = {
    "domain": pgettext_lazy("toast subject", "%(name)s"),
    "network": pgettext_lazy("toast subject", "Network %(name)s"),
    "pool": pgettext_lazy("toast subject", "Storage pool %(name)s"),
}

# Networks and storage pools.
_OTHER_VERBS: dict[str, dict[str, Text]] = {
    "network": {
        Change.DEFINED: pgettext_lazy("network", "was defined"),
        Change.UNDEFINED: pgettext_lazy("network", "was removed"),
        Change.STARTED: pgettext_lazy("network", "was started"),
        Change.STOPPED: pgettext_lazy("network", "was stopped"),
    },
    "pool": {
        Change.DEFINED: pgettext_lazy("pool", "was defined"),
        Change.UNDEFINED: pgettext_lazy("pool", "was removed"),
        Change.STARTED: pgettext_lazy("pool", "was started"),
        Change.STOPPED: pgettext_lazy("pool", "was stopped"),
        Change.CREATED: pgettext_lazy("pool", "was built"),
        Change.DELETED: pgettext_lazy("pool", "was deleted"),
    },
}


def verb(change: str, detail: str, kind: str = "domain") -> Text | None:
    if kind != "domain":
        return _OTHER_VERBS.get(kind, {}).get(change)
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
    """The toast's sentence, in the active language (the socket's page's)."""
    what = verb(message["change"], message["detail"], message["kind"]) or pgettext("vm", "changed")
    subject = _SUBJECTS.get(message["kind"], _SUBJECTS["domain"]) % {
        "name": name or message["name"]
    }
    parts = {"subject": subject, "what": what, "actor": actor}
    if not attributed(message):
        return _("%(subject)s %(what)s.") % parts
    if actor:
        return _("%(subject)s %(what)s by %(actor)s.") % parts
    return _("%(subject)s %(what)s outside vmdash.") % parts
