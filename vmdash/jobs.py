"""Long operations as jobs: one thread each, progress the page can follow, cancel,
cleanup, and one audit entry with the outcome.

A job lives in this process (its thread and its progress); the page polls
`get(job_id)` through a view, so no state is mirrored in the database. The
work function receives the Job: it calls `job.report(fraction, note)` and
checks `job.cancelled` between steps; what it made and must take back on
failure or cancel, it takes back itself (it knows what it made). The entry
written at the end names the object the work returned, or the ref the job
started with.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from vmdash.audit import Actor, Outcome, record
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import HostRef, ObjectRef

log = logging.getLogger(__name__)
KEEP_FINISHED = 600.0  # seconds a finished job stays readable by its page


class JobState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class Job:
    id: str
    action: str
    ref: HostRef | ObjectRef
    actor: Actor
    label: str = ""
    state: JobState = JobState.RUNNING
    fraction: float = 0.0
    note: str = ""
    message: str = ""
    result: Any = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def report(self, fraction: float, note: str = "") -> None:
        self.fraction = max(0.0, min(1.0, fraction))
        if note:
            self.note = note

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        return self.state != JobState.RUNNING

    @property
    def percent(self) -> int:
        return int(self.fraction * 100)

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started


_lock = threading.Lock()
_jobs: dict[str, Job] = {}


def start(
    actor: Actor,
    action: str,
    ref: HostRef | ObjectRef,
    work: Callable[[Job], Any],
    label: str = "",
) -> Job:
    """Run `work(job)` on a thread of its own; the Job to follow."""
    job = Job(uuid.uuid4().hex, action, ref, actor, label)
    with _lock:
        _forget_old()
        _jobs[job.id] = job
    threading.Thread(target=_run, args=(job, work), name=f"job {action}", daemon=True).start()
    return job


def _run(job: Job, work: Callable[[Job], Any]) -> None:
    try:
        job.result = work(job)
    except VirtError as err:
        job.state = JobState.CANCELLED if job.cancelled else JobState.FAILED
        job.message = str(err)
    else:
        job.state, job.fraction = JobState.DONE, 1.0
    finally:
        job.ended = time.monotonic()
        if job.state == JobState.RUNNING:  # something not ours broke: say so, log it
            job.state, job.message = JobState.FAILED, "The job stopped unexpectedly."
            log.error("job %s %s ended with an unexpected error", job.action, job.id)
        _audit(job)


def _audit(job: Job) -> None:
    from django.db import close_old_connections

    named = job.result if isinstance(job.result, type(job.ref)) else job.ref
    outcome = Outcome.OK if job.state == JobState.DONE else Outcome.ERROR
    message = job.message or f"{job.label} ({job.seconds:.1f} s)".strip()
    try:
        record(job.actor, job.action, named, outcome, message)
    finally:
        close_old_connections()  # this thread's database connection


def get(job_id: str) -> Job | None:
    with _lock:
        return _jobs.get(job_id)


def _forget_old() -> None:
    now = time.monotonic()
    for key in [k for k, j in _jobs.items() if j.ended and now - j.ended > KEEP_FINISHED]:
        del _jobs[key]
