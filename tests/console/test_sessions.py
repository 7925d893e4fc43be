"""Console sessions whose process died: closed, with their console-close, when a server starts."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import audit_entries
from vmdash.console import sessions
from vmdash.console.models import ConsoleSession

pytestmark = pytest.mark.django_db


def owner_of(proc: subprocess.Popen[bytes]) -> str:
    machine = sessions.owner_id().split(":")[0]
    return f"{machine}:{proc.pid}:{sessions._start_time(proc.pid)}"


def owner_of_a_process_that_ended() -> str:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as proc:
        owner = owner_of(proc)
        proc.kill()
    return owner


def opened(owner: str, seen_ago: float = 0, **extra: object) -> ConsoleSession:
    now = timezone.now()
    return ConsoleSession.objects.create(
        kind=ConsoleSession.Kind.SERIAL,
        username="alice",
        host="local",
        vm_name="web1",
        owner=owner,
        started_at=now - timedelta(seconds=seen_ago + 5),
        last_seen=now - timedelta(seconds=seen_ago),
        **extra,
    )


def test_it_closes_the_sessions_of_a_process_that_is_gone() -> None:
    dead = opened(owner_of_a_process_that_ended())
    mine = opened(sessions.owner_id())
    assert sessions.close_dead() == 1
    dead.refresh_from_db()
    mine.refresh_from_db()
    assert dead.ended_at is not None and dead.end_reason == "server restarted"
    assert mine.ended_at is None
    (entry,) = audit_entries().filter(action="console-close")
    assert entry.message.endswith("; server restarted")
    assert (entry.via, entry.username, entry.object_name) == ("console", "alice", "web1")


def test_it_leaves_a_live_process_s_session_open() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        held = opened(owner_of(other))
        assert sessions.close_dead() == 0
        other.kill()
    held.refresh_from_db()
    assert held.ended_at is None


def test_it_closes_a_stale_session_of_another_machine_only_once_its_heartbeat_is_old() -> None:
    fresh = opened("elsewhere:123:456", seen_ago=10)
    stale = opened("elsewhere:124:456", seen_ago=sessions.PRESENCE_TIMEOUT.total_seconds() + 5)
    assert sessions.close_dead() == 1
    fresh.refresh_from_db()
    stale.refresh_from_db()
    assert fresh.ended_at is None and stale.ended_at is not None
