"""Who is connected to which console, and the audit records of opening and closing.

Both the proxy's children (graphical) and the serial consumer (web process)
write here. A connection that dies without saying so (a killed process) stops
counting as present once its heartbeat is older than PRESENCE_TIMEOUT.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from vmdash.console.models import ConsoleSession
from vmdash.models import AuditEntry

log = logging.getLogger("vmdash.audit")

HEARTBEAT = timedelta(seconds=30)
PRESENCE_TIMEOUT = timedelta(seconds=90)


def _describe(session: ConsoleSession) -> str:
    kind = ConsoleSession.Kind(session.kind).label
    return f"{kind}{' (view only)' if session.view_only else ''}"


def _audit(session: ConsoleSession, action: str, outcome: str, message: str) -> None:
    AuditEntry.objects.create(
        user_id=session.user_id,
        username=session.username,
        host=session.host,
        object_type="vm",
        object_name=session.vm_name,
        object_uuid=session.vm_uuid,
        action=action,
        outcome=outcome,
        message=message[:2000],
        remote_addr=session.remote_addr,
    )
    log.info(
        "%s %s %s/%s: %s %s",
        session.username,
        action,
        session.host,
        session.vm_name,
        outcome,
        message,
    )


def open_session(
    *,
    kind: str,
    user: AbstractBaseUser | None,
    user_id: int | None = None,
    username: str,
    host: str,
    vm_name: str,
    vm_uuid: str,
    view_only: bool,
    remote_addr: str | None,
) -> ConsoleSession:
    """Record that a console connection opened (a session row and an audit entry)."""
    session = ConsoleSession.objects.create(
        kind=kind,
        user_id=user.pk if user is not None else user_id,
        username=username,
        host=host,
        vm_name=vm_name,
        vm_uuid=vm_uuid,
        view_only=view_only,
        remote_addr=remote_addr or None,
    )
    _audit(session, "console-open", AuditEntry.Outcome.OK, _describe(session))
    return session


def touch(session: ConsoleSession) -> None:
    ConsoleSession.objects.filter(pk=session.pk).update(last_seen=timezone.now())


def close_session(session: ConsoleSession, reason: str = "") -> None:
    """Record that the connection closed, with how long it lasted."""
    now = timezone.now()
    updated = ConsoleSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
        ended_at=now, last_seen=now, end_reason=reason[:100]
    )
    if not updated:
        return
    session.ended_at = now
    seconds = session.duration.total_seconds()
    why = f"; {reason}" if reason else ""
    _audit(
        session,
        "console-close",
        AuditEntry.Outcome.OK,
        f"{_describe(session)} closed after {seconds:.1f} s{why}",
    )


def close_stale(kind: str, reason: str) -> int:
    """Close every open session of `kind` (the process that held them is gone)."""
    stale = list(ConsoleSession.objects.filter(kind=kind, ended_at__isnull=True))
    for session in stale:
        close_session(session, reason)
    return len(stale)


def present(host: str, vm_name: str) -> QuerySet[ConsoleSession]:
    """The connections to this VM's consoles that are open now."""
    alive = timezone.now() - PRESENCE_TIMEOUT
    return ConsoleSession.objects.filter(
        Q(host=host, vm_name=vm_name, ended_at__isnull=True, last_seen__gte=alive)
    ).select_related("user")
