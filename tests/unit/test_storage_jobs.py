"""Jobs: a thread each, progress, cancel, one audit entry with the outcome."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import audit_entries
from vmdash import jobs
from vmdash.audit import Actor
from vmdash.virt.errors import InvalidState, OperationFailed
from vmdash.virt.refs import VolumeRef

pytestmark = pytest.mark.django_db(transaction=True)
REF = VolumeRef("lab", "images", "disk")
ACTOR = Actor(None, "alice", "127.0.0.1", "web")


def _wait(job: jobs.Job) -> None:
    deadline = time.monotonic() + 10
    while not job.finished and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # the audit entry is written right after the state


def test_a_job_reports_progress_and_ends_done_with_one_entry() -> None:
    go = threading.Event()

    def work(job: jobs.Job) -> VolumeRef:
        job.report(0.5, "half")
        go.wait(5)
        return VolumeRef("lab", "images", "disk-copy")

    job = jobs.start(ACTOR, "volume-clone", REF, work, label="clone")
    deadline = time.monotonic() + 5
    while job.percent != 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job.percent == 50 and job.state == jobs.JobState.RUNNING and jobs.get(job.id) is job
    go.set()
    _wait(job)
    assert job.state == jobs.JobState.DONE and job.percent == 100
    entry = audit_entries().get(action="volume-clone")
    assert entry.outcome == "ok" and entry.object_name == "images/disk-copy"


def test_a_failed_job_says_why_in_the_page_and_the_audit() -> None:
    def work(job: jobs.Job) -> None:
        raise OperationFailed("the disk is full")

    job = jobs.start(ACTOR, "volume-clone", REF, work)
    _wait(job)
    assert job.state == jobs.JobState.FAILED and job.message == "the disk is full"
    assert audit_entries().get(action="volume-clone").outcome == "error"


def test_a_cancelled_job_ends_cancelled() -> None:
    def work(job: jobs.Job) -> None:
        while not job.cancelled:
            time.sleep(0.01)
        raise InvalidState("cancelled and removed")

    job = jobs.start(ACTOR, "volume-clone", REF, work)
    job.cancel()
    _wait(job)
    assert job.state == jobs.JobState.CANCELLED
    assert audit_entries().get(action="volume-clone").message == "cancelled and removed"
