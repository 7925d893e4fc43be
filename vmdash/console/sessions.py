"""Who is connected to which console, and the audit records of opening and closing.

Both the proxy's ticket desk (graphical) and the serial consumer (web process)
write here. Each session names the process that holds it (`owner`). A
connection that dies without saying so (a killed process) stops counting as
present once its heartbeat is older than PRESENCE_TIMEOUT, and `close_dead`
(run when the web process and the proxy start, and every minute by the desk)
writes its console-close.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from functools import cache

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from vmdash.audit import Actor, Outcome, record
from vmdash.console.models import ConsoleSession
from vmdash.virt.refs import DomainRef

log = logging.getLogger("vmdash.audit")

HEARTBEAT = timedelta(seconds=30)
PRESENCE_TIMEOUT = timedelta(seconds=90)
SERVER_RESTARTED = "server restarted"


def _describe(session: ConsoleSession) -> str:
    kind = ConsoleSession.Kind(session.kind).label
    return f"{kind}{' (view only)' if session.view_only else ''}"


def _audit(session: ConsoleSession, action: str, message: str) -> None:
    actor = Actor(session.user_id, session.username, session.remote_addr, via="console")
    ref = DomainRef(session.host, session.vm_name, session.vm_uuid)
    record(actor, action, ref, Outcome.OK, message)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (None: no such process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The command name (field 2) may hold spaces and parentheses: split after it.
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19].decode() if len(fields) > 19 else None


@cache
def owner_id() -> str:
    """This process, as sessions name their owner: machine, pid, start time (pids are reused)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or ''}"


def _owner_gone(owner: str) -> bool | None:
    """Is the owning process gone? None when it runs on another machine (we cannot tell)."""
    machine, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if machine != socket.gethostname() or not pid.isdigit():
        return None
    return _start_time(int(pid)) != started


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
        owner=owner_id(),
    )
    _audit(session, "console-open", _describe(session))
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
    _audit(session, "console-close", f"{_describe(session)} closed after {seconds:.1f} s{why}")


def close_dead(reason: str = SERVER_RESTARTED) -> int:
    """Close the open sessions whose process is gone, with their console-close.

    A session held on this machine is dead when its owner process is; one held
    elsewhere (or by an older vmdash that named no owner) when its heartbeat is
    older than PRESENCE_TIMEOUT, since every live holder touches it every HEARTBEAT.
    """
    stale_before = timezone.now() - PRESENCE_TIMEOUT
    dead = []
    for session in ConsoleSession.objects.filter(ended_at__isnull=True).exclude(owner=owner_id()):
        gone = _owner_gone(session.owner)
        if gone or (gone is None and session.last_seen < stale_before):
            dead.append(session)
    for session in dead:
        close_session(session, reason)
    if dead:
        log.info("closed %d console session(s) whose process is gone", len(dead))
    return len(dead)


def present(host: str, vm_name: str) -> QuerySet[ConsoleSession]:
    """The connections to this VM's consoles that are open now."""
    alive = timezone.now() - PRESENCE_TIMEOUT
    return ConsoleSession.objects.filter(
        Q(host=host, vm_name=vm_name, ended_at__isnull=True, last_seen__gte=alive)
    ).select_related("user")
