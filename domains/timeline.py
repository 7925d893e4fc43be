"""A VM's timeline: what vmdash did to it, what libvirt saw happen, who watched it.

Three sources, merged newest first:

- the audit trail (vmdash/audit.py): actions, errors and refusals, by host
  and UUID (refused POSTs name the VM by name only: matched by name too);
- the libvirt events the events service published for the VM, stored by
  the sink below (`DomainEvent`): libvirt keeps no history of its own;
- console sessions (vmdash/console/models.py): who, when, how long, view only.

libvirt does not say who caused an event. An event that follows a vmdash
action of the matching kind on the same VM, within that action's window, is
the echo of that action: the timeline shows one line ("Started by alice
(vmdash)"), not two. An event nothing in vmdash explains is labelled as what
it is: "Shut down by the guest", "Definition changed outside vmdash".

The merge (`merge`) is pure: rows in, labelled lines out; the view and the
live region read the rows (`read_page`) and render the same partial.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as _t
from django.views.decorators.http import require_GET

from domains.models import DomainEvent
from vmdash import door
from vmdash.live.regions import ObjectRegion, register
from vmdash.live.sinks import register_sink
from vmdash.policy import Action, can
from vmdash.render import wants_partial
from vmdash.virt import domains as virt_domains
from vmdash.virt.domains import OPS, DomainSummary, Op
from vmdash.virt.events import Change, Event, ObjectEvent, ObjectKind, read_domain
from vmdash.virt.refs import DomainRef, HostRef

log = logging.getLogger(__name__)

PAGE_SIZE = 50
# What the timeline keeps of libvirt's events (job-completed tells nothing new).
KEPT = frozenset(Change) - {Change.JOB_COMPLETED, Change.CREATED, Change.DELETED}
PRUNE_EVERY = 3600.0  # seconds between two prunes by age, at most
_last_prune = {"at": 0.0}

# --- the sink: runs in the events process, once per published event ---------


@register_sink
def store(event: Event) -> None:
    """Keep a VM's event for its timeline (worker thread of the events service)."""
    if not isinstance(event, ObjectEvent) or event.kind != ObjectKind.DOMAIN:
        return
    if event.change not in KEPT or not event.uuid:
        return
    DomainEvent.objects.create(
        at=datetime.fromtimestamp(event.at or time.time(), tz=UTC),
        host=event.host[:50],
        uuid=event.uuid,
        name=event.name[:255],
        change=event.change.value,
        detail=event.detail[:30],
        info=event.info[:100],
    )
    if time.monotonic() - _last_prune["at"] > PRUNE_EVERY:
        _last_prune["at"] = time.monotonic()
        prune(settings.VMDASH_TIMELINE_DAYS)


def prune(days: int) -> int:
    """Forget events older than `days` days (0: keep them all); how many went."""
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    count, _kinds = DomainEvent.objects.filter(at__lt=cutoff).delete()
    if count:
        log.info("timeline: %d libvirt events older than %d days removed", count, days)
    return count


# --- the rows the merge reads --------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """A libvirt event, as stored."""

    at: datetime
    change: str
    detail: str = ""
    info: str = ""
    name: str = ""


@dataclass(frozen=True)
class Done:
    """An audit entry about the VM."""

    at: datetime
    action: str
    outcome: str
    username: str
    message: str = ""
    via: str = "web"


@dataclass(frozen=True)
class Watched:
    """A console session."""

    at: datetime
    username: str
    kind: str  # "vnc" | "serial"
    view_only: bool = False
    ended_at: datetime | None = None
    end_reason: str = ""


@dataclass(frozen=True)
class Line:
    """One line of the timeline, labelled for a person."""

    at: datetime
    text: str
    source: str  # "vmdash" | "outside" | "guest" | "libvirt" | "console"
    outcome: str = "ok"  # ok | error | denied (vmdash's actions) | alert (a crash, an I/O error)
    actor: str = ""
    message: str = ""
    seen: tuple[str, ...] = ()  # the libvirt events this line accounts for


# --- echoes: which vmdash action explains which libvirt event ------------------

_LIFECYCLE_ECHOES: dict[str, tuple[frozenset[tuple[str, str]], float]] = {
    # action: ({(change, detail or "*")}, seconds after the action it may come)
    Op.START: (
        frozenset({(Change.STARTED, "*"), (Change.RESUMED, "*")}),
        10,
    ),
    Op.SHUTDOWN: (
        frozenset({(Change.SHUTDOWN, "*"), (Change.STOPPED, "shutdown")}),
        180,  # the guest takes its time after the ACPI request
    ),
    Op.REBOOT: (frozenset({(Change.REBOOTED, "*"), (Change.SHUTDOWN, "*")}), 180),
    Op.FORCE_OFF: (frozenset({(Change.STOPPED, "destroyed")}), 10),
    Op.PAUSE: (frozenset({(Change.SUSPENDED, "paused")}), 10),
    Op.RESUME: (frozenset({(Change.RESUMED, "*")}), 10),
    Op.SAVE: (frozenset({(Change.SUSPENDED, "*"), (Change.STOPPED, "saved")}), 10),
    Op.DELETE: (frozenset({(Change.UNDEFINED, "*"), (Change.STOPPED, "destroyed")}), 10),
}
# Events that change the definition: explained by any successful vmdash action
# on the VM close to them that may redefine it (an edit, a tag, a rename).
_DEFINITION = frozenset(
    {Change.DEFINED, Change.METADATA_CHANGED, Change.DEVICE_ADDED, Change.DEVICE_REMOVED}
)
DEFINITION_WINDOW = 10.0
# The action is audited when libvirt has answered: its events come before it,
# by as long as the operation took (a save writes the memory out first).
LEAD = 30.0
# Audit actions that are not told as lines of their own here.
_NOT_LINES = frozenset({"console-open", "console-close"})  # the sessions tell them
# ... and those that never redefine the VM (its life cycle, its consoles).
_NOT_CHANGES = _NOT_LINES | {"console-denied"} | {op.value for op in Op}


def _fits(event: Seen, done: Done) -> float | None:
    """How far `event` is from `done` (seconds), if it may be its echo; else None."""
    if done.outcome != "ok":
        return None
    offset = (event.at - done.at).total_seconds()  # > 0: the event came after
    if event.change in _DEFINITION and done.action not in _NOT_CHANGES:
        return abs(offset) if abs(offset) <= DEFINITION_WINDOW else None
    if done.action not in _LIFECYCLE_ECHOES:
        return None
    kinds, after = _LIFECYCLE_ECHOES[done.action]
    matches = (event.change, event.detail) in kinds or (event.change, "*") in kinds
    return abs(offset) if matches and -LEAD <= offset <= after else None


def echoes(audits: Sequence[Done], events: Sequence[Seen]) -> dict[int, int]:
    """event index -> the index of the vmdash action it echoes.

    Closest pairs first; a life-cycle action explains at most one event of
    each change (one start is one STARTED: a start with virsh a moment
    before stays a line of its own), a redefining one every definition event
    close to it.
    """
    pairs = sorted(
        (distance, e, a)
        for e, event in enumerate(events)
        for a, done in enumerate(audits)
        if (distance := _fits(event, done)) is not None
    )
    found: dict[int, int] = {}
    claimed: set[tuple[int, str]] = set()
    for _distance, e, a in pairs:
        change = events[e].change
        if e in found or (change not in _DEFINITION and (a, change) in claimed):
            continue
        found[e] = a
        claimed.add((a, change))
    return found


# --- companions: several libvirt events that tell one happening -----------------

COMPANION_WINDOW = 5.0


def _fold(events: Sequence[Seen]) -> list[tuple[Seen, list[Seen]]]:
    """Events grouped into happenings: (the one that tells it, the others).

    STOPPED after SHUTDOWN (guest or host tells who), RESUMED right after
    STARTED, SUSPENDED right before a save, the UNDEFINED half of a rename,
    the metadata event of a redefine, repeated DEFINED of one change.
    """
    ordered = sorted(events, key=lambda e: e.at)
    groups: list[tuple[Seen, list[Seen]]] = []
    for event in ordered:
        lead = _joins(event, groups)
        if lead is None:
            groups.append((event, []))
        else:
            head, others = groups[lead]
            if _outranks(event, head):
                groups[lead] = (event, [head, *others])
            else:
                others.append(event)
    return groups


_RANK: dict[str, int] = {
    Change.STOPPED: 3,
    Change.STARTED: 3,
    Change.DEFINED: 2,
    Change.UNDEFINED: 1,
}


def _outranks(event: Seen, head: Seen) -> bool:
    return _RANK.get(event.change, 0) > _RANK.get(head.change, 0)


_PAIRS = {
    frozenset({Change.SHUTDOWN, Change.STOPPED}),
    frozenset({Change.STARTED, Change.RESUMED}),
    frozenset({Change.SUSPENDED, Change.STOPPED}),
    frozenset({Change.UNDEFINED, Change.DEFINED}),
    frozenset({Change.METADATA_CHANGED, Change.DEFINED}),
    frozenset({Change.DEFINED}),
    frozenset({Change.METADATA_CHANGED}),
}


def _pair(a: Seen, b: Seen) -> bool:
    """Do `a` and `b` tell one happening (if close enough)?"""
    kinds = frozenset({a.change, b.change})
    if kinds == {Change.SUSPENDED, Change.STOPPED}:  # only a save: pause, write, stop
        return "saved" in (a.detail, b.detail)
    return kinds in _PAIRS


def _joins(event: Seen, groups: list[tuple[Seen, list[Seen]]]) -> int | None:
    for index in range(len(groups) - 1, max(-1, len(groups) - 4), -1):
        head, others = groups[index]
        if (event.at - max(e.at for e in [head, *others])).total_seconds() > COMPANION_WINDOW:
            return None
        if any(_pair(event, e) for e in [head, *others]):
            return index
    return None


# --- labels ------------------------------------------------------------------


def _verb(action: str) -> str:
    try:
        return str(OPS[Op(action)].verb)
    except ValueError:
        return action.replace("-", " ")


def _done_text(done: Done, seen: Sequence[Seen]) -> str:
    user = done.username or _("someone")
    if done.outcome == "denied":
        return _("%(user)s was refused: %(action)s") % {"user": user, "action": _verb(done.action)}
    if done.outcome == "error":
        return _("%(user)s could not %(action)s the VM") % {
            "user": user,
            "action": _verb(done.action),
        }
    texts = {
        Op.START: _("Started by %(user)s (vmdash)"),
        Op.REBOOT: _("Rebooted by %(user)s (vmdash)"),
        Op.FORCE_OFF: _("Forced off by %(user)s (vmdash)"),
        Op.PAUSE: _("Paused by %(user)s (vmdash)"),
        Op.RESUME: _("Resumed by %(user)s (vmdash)"),
        Op.SAVE: _("Saved (hibernated) by %(user)s (vmdash)"),
        Op.DISCARD_SAVE: _("Saved state discarded by %(user)s (vmdash)"),
        Op.AUTOSTART_ON: _("Autostart turned on by %(user)s (vmdash)"),
        Op.AUTOSTART_OFF: _("Autostart turned off by %(user)s (vmdash)"),
        Op.DELETE: _("Deleted by %(user)s (vmdash)"),
        "console-denied": _("Console refused to %(user)s"),
    }
    if done.action == Op.SHUTDOWN:
        stopped = any(e.change == Change.STOPPED for e in seen)
        text = _("Shut down by %(user)s (vmdash)") if stopped else None
        text = text or _("Shutdown requested by %(user)s (vmdash); the guest has not stopped")
    else:
        text = texts.get(done.action)
    if text is None:  # an action of another page (an edit, a grant, a tag)
        what = done.action.replace("-", " ").capitalize()
        return _("%(action)s by %(user)s (vmdash)") % {"action": what, "user": user}
    return text % {"user": user}


def _seen_text(event: Seen, others: Sequence[Seen]) -> tuple[str, str]:
    """(label, source) of a happening nothing in vmdash explains."""
    change, detail = event.change, event.detail
    if change == Change.STOPPED and detail == "shutdown":
        if any(o.change == Change.SHUTDOWN and o.detail == "host" for o in others):
            return _("Stopped by the host (QEMU was told to quit)"), "libvirt"
        return _("Shut down by the guest"), "guest"
    if change == Change.DEFINED and detail == "renamed":
        return _("Renamed to %(name)s outside vmdash") % {"name": event.name}, "outside"
    if change == Change.METADATA_CHANGED:
        what = {"description": _("Description"), "title": _("Title")}.get(event.info)
        text = _("%(what)s changed outside vmdash") % {"what": what or _("Metadata")}
        return text, "outside"
    if change in (Change.DEVICE_ADDED, Change.DEVICE_REMOVED):
        text = (
            _("Device %(alias)s added outside vmdash")
            if change == Change.DEVICE_ADDED
            else _("Device %(alias)s removed (outside vmdash or by the guest)")
        )
        return text % {"alias": event.info or "?"}, "outside"
    key = (change, detail)
    label = _EVENT_TEXTS.get(key) or _EVENT_TEXTS.get((change, "*"))
    if label is None:
        return f"{change} {detail}".strip().capitalize(), "libvirt"
    text, source = label
    return _(text), source


_OUT = "outside"
_EVENT_TEXTS: dict[tuple[str, str], tuple[str, str]] = {
    (Change.STARTED, "restored"): (_t("Restored from its saved state outside vmdash"), _OUT),
    (Change.STARTED, "from snapshot"): (_t("Reverted to a snapshot outside vmdash"), _OUT),
    (Change.STARTED, "migrated"): (_t("Arrived here by migration"), "libvirt"),
    (Change.STARTED, "wakeup"): (_t("Woke up"), "guest"),
    (Change.STARTED, "*"): (_t("Started outside vmdash (virsh, autostart or another tool)"), _OUT),
    (Change.STOPPED, "destroyed"): (_t("Forced off outside vmdash (virsh or another tool)"), _OUT),
    (Change.STOPPED, "crashed"): (_t("Crashed: the QEMU process ended"), "libvirt"),
    (Change.STOPPED, "saved"): (_t("Saved (hibernated) outside vmdash"), _OUT),
    (Change.STOPPED, "failed"): (_t("Stopped: QEMU failed"), "libvirt"),
    (Change.STOPPED, "migrated"): (_t("Migrated away"), "libvirt"),
    (Change.STOPPED, "from snapshot"): (_t("Reverted to a snapshot outside vmdash"), _OUT),
    (Change.STOPPED, "*"): (_t("Stopped"), "libvirt"),
    (Change.SHUTDOWN, "*"): (_t("The guest is shutting down"), "guest"),
    (Change.SUSPENDED, "paused"): (_t("Paused outside vmdash"), _OUT),
    (Change.SUSPENDED, "ioerror"): (_t("Paused by a disk I/O error"), "libvirt"),
    (Change.SUSPENDED, "watchdog"): (_t("Paused by its watchdog"), "libvirt"),
    (Change.SUSPENDED, "*"): (_t("Paused"), "libvirt"),
    (Change.RESUMED, "*"): (_t("Resumed outside vmdash"), _OUT),
    (Change.PMSUSPENDED, "*"): (_t("Suspended to sleep by the guest"), "guest"),
    (Change.CRASHED, "panicked"): (_t("The guest panicked"), "guest"),
    (Change.CRASHED, "*"): (_t("The guest crashed"), "guest"),
    (Change.REBOOTED, "*"): (_t("Rebooted (by the guest or outside vmdash)"), "guest"),
    (Change.DEFINED, "added"): (_t("Defined outside vmdash (virsh or another tool)"), _OUT),
    (Change.DEFINED, "from snapshot"): (_t("Definition restored from a snapshot"), _OUT),
    (Change.DEFINED, "*"): (
        _t("Definition changed outside vmdash (virsh or another tool)"),
        _OUT,
    ),
    (Change.UNDEFINED, "renamed"): (_t("Renamed outside vmdash"), _OUT),
    (Change.UNDEFINED, "*"): (_t("Deleted outside vmdash"), _OUT),
}


def _seen_label(event: Seen) -> str:
    return f"{event.change} ({event.detail})" if event.detail else event.change


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return _("%(n)d s") % {"n": max(0, round(seconds))}
    if seconds < 3600:
        return _("%(n)d min") % {"n": round(seconds / 60)}
    hours, minutes = divmod(round(seconds / 60), 60)
    return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}


def _watched_line(session: Watched, now: datetime) -> Line:
    kind = _("Serial console") if session.kind == "serial" else _("Console")
    user = session.username or _("someone")
    if session.ended_at is None:
        text = _("%(kind)s opened by %(user)s, still open") % {"kind": kind, "user": user}
    else:
        length = duration_text((session.ended_at - session.at).total_seconds())
        text = _("%(kind)s opened by %(user)s, %(length)s") % {
            "kind": kind,
            "user": user,
            "length": length,
        }
    if session.view_only:
        text = _("%(text)s (view only)") % {"text": text}
    reason = _("closed: %(why)s") % {"why": session.end_reason} if session.end_reason else ""
    return Line(session.at, text, "console", actor=session.username, message=reason)


# --- the merge -----------------------------------------------------------------

# What went wrong without anyone asking: shown as a problem, not as "done".
_TROUBLE = frozenset(
    {
        (Change.STOPPED, "crashed"),
        (Change.STOPPED, "failed"),
        (Change.SUSPENDED, "ioerror"),
        (Change.SUSPENDED, "watchdog"),
        (Change.SUSPENDED, "api error"),
        (Change.CRASHED, "*"),
    }
)


def _is_trouble(event: Seen) -> bool:
    return (event.change, event.detail) in _TROUBLE or (event.change, "*") in _TROUBLE


def _when(event: Seen) -> datetime:
    return event.at


def merge(
    audits: Sequence[Done],
    events: Sequence[Seen],
    sessions: Sequence[Watched] = (),
    now: datetime | None = None,
) -> list[Line]:
    """The lines, newest first: vmdash's actions with the events they caused,
    the events nothing in vmdash explains, the console sessions."""
    now = now or timezone.now()
    found = echoes(audits, events)
    explained: dict[int, list[Seen]] = {}
    for e, a in found.items():
        explained.setdefault(a, []).append(events[e])
    alone = [event for e, event in enumerate(events) if e not in found]
    lines = [
        Line(
            done.at,
            _done_text(done, explained.get(index, [])),
            "vmdash",
            done.outcome,
            done.username,
            done.message if done.outcome != "ok" else "",
            tuple(_seen_label(e) for e in sorted(explained.get(index, []), key=_when)),
        )
        for index, done in enumerate(audits)
        if done.action not in _NOT_LINES
    ]
    for head, others in _fold(alone):
        text, source = _seen_text(head, others)
        seen = tuple(_seen_label(e) for e in sorted([head, *others], key=_when))
        outcome = "alert" if _is_trouble(head) else "ok"
        lines.append(Line(head.at, text, source, outcome, seen=seen))
    lines += [_watched_line(s, now) for s in sessions]
    return sorted(lines, key=lambda line: line.at, reverse=True)


# --- reading a page of it ------------------------------------------------------

_MOST_AFTER = max(after for _kinds, after in _LIFECYCLE_ECHOES.values())


@dataclass(frozen=True)
class Page:
    ref: DomainRef
    lines: list[Line]
    older: datetime | None  # the next page: lines before this moment
    before: datetime | None = None  # this page: lines before this moment (None: the newest)


def _audit_rows(ref: DomainRef) -> Any:
    from vmdash.models import AuditEntry

    by_name = Q(object_uuid="", object_name=ref.name, object_type=DomainRef.kind)
    return AuditEntry.objects.filter(Q(host=ref.host) & (Q(object_uuid=ref.uuid) | by_name))


def _done(rows: Iterable[Any]) -> list[Done]:
    return [Done(r.at, r.action, r.outcome, r.username, r.message, r.via) for r in rows]


def _seen(rows: Iterable[DomainEvent]) -> list[Seen]:
    return [Seen(r.at, r.change, r.detail, r.info, r.name) for r in rows]


def _watched(ref: DomainRef, before: datetime | None, limit: int) -> list[Watched]:
    from vmdash.console.models import ConsoleSession

    rows = ConsoleSession.objects.filter(
        Q(host=ref.host) & (Q(vm_uuid=ref.uuid) | Q(vm_uuid="", vm_name=ref.name))
    )
    if before is not None:
        rows = rows.filter(started_at__lt=before)
    return [
        Watched(r.started_at, r.username, r.kind, r.view_only, r.ended_at, r.end_reason)
        for r in rows.order_by("-started_at", "-id")[:limit]
    ]


def read_page(ref: DomainRef, before: datetime | None = None, size: int = PAGE_SIZE) -> Page:
    """One page of the timeline of the VM `ref` (it must carry its UUID)."""
    audit_rows = _audit_rows(ref).exclude(action__in=_NOT_LINES)
    event_rows = DomainEvent.objects.filter(host=ref.host, uuid=ref.uuid)
    if before is not None:
        audit_rows, event_rows = audit_rows.filter(at__lt=before), event_rows.filter(at__lt=before)
    audits = _done(audit_rows.order_by("-at", "-id")[:size])
    events = _seen(event_rows.order_by("-at", "-id")[: size * 4])
    sessions = _watched(ref, before, size)
    # Below the oldest row of a source that filled its quota, that source may
    # have more: lines older than that wait for the next page.
    full = [(rows, limit) for rows, limit in ((audits, size), (events, size * 4), (sessions, size))]
    horizon = max((rows[-1].at for rows, limit in full if len(rows) == limit), default=None)
    if events:  # every action that may explain these events, on this page or not
        first, last = min(e.at for e in events), max(e.at for e in events)
        around = _audit_rows(ref).filter(
            at__gte=first - timedelta(seconds=_MOST_AFTER), at__lte=last + timedelta(seconds=LEAD)
        )
        audits = _done(around.exclude(action__in=_NOT_LINES)) + audits
        audits = list({(d.at, d.action, d.username): d for d in audits}.values())
    lines = [
        line
        for line in merge(audits, events, sessions)
        if (before is None or line.at < before) and (horizon is None or line.at >= horizon)
    ]
    older = None
    if len(lines) > size:
        lines = lines[:size]
        older = lines[-1].at
    elif horizon is not None:
        older = min([horizon, *(line.at for line in lines[-1:])])
    return Page(ref, lines, older, before)


# --- the tab and its live region ---------------------------------------------


def _moment(value: str | None) -> datetime | None:
    """?before=<microseconds since the epoch>; anything else is the newest page."""
    if not value or not value.isdigit() or len(value) > 20:
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1_000_000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def moment_param(at: datetime) -> str:
    return str(round(at.timestamp() * 1_000_000))


def timeline_context(host: HostRef, d: DomainSummary, page: Page, live: bool) -> dict[str, Any]:
    """The tab's context, for the page, its htmx refresh and the live push."""
    return {
        "d": d,
        "host": host,
        "timeline": page,
        "older": moment_param(page.older) if page.older else "",
        "live": live,
    }


@require_GET
def domain_timeline(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """The Timeline tab. Whoever may see the VM sees its timeline, names
    included, as Proxmox shows a VM's task log to whoever may audit the VM
    (docs/timeline.md); remote addresses stay on the audit page."""
    who = door.who(request)
    host_ref, ref = door.domain(who, host, name, Action.VIEW)
    summary = virt_domains.get_summary(host_ref, name)
    page = read_page(ref, _moment(request.GET.get("before")))
    context = timeline_context(host_ref, summary, page, live=False)
    if wants_partial(request):
        return render(request, "domains/_timeline.html#lines", context)
    context.update(tab="timeline", can_operate=can(who, Action.OPERATE, ref))
    return render(request, "domains/detail.html", context)


@dataclass(frozen=True)
class LiveTimeline:
    """What the region re-reads on each event of the VM."""

    ref: DomainRef
    summary: DomainSummary
    page: Page


def read_live(host: HostRef, uuid: str) -> LiveTimeline | None:
    summary = read_domain(host, uuid)
    if summary is None:
        return None
    return LiveTimeline(summary.ref, summary, read_page(summary.ref))


register(
    ObjectRegion(
        name="domain-timeline",
        element_id="dom-timeline-{uuid}",
        partial="domains/_timeline.html#lines",
        read=read_live,
        context=lambda host, t, may_act: timeline_context(host, t.summary, t.page, live=True),
        act=None,
        tag="section",
    )
)
