"""Fixtures shared by every test: personas, a test-driver host, a fresh pool.

Unit tests run on libvirt's test driver with a private world per test
(tests/data/testnode.xml). Integration and browser tests use the real
libvirtd: their fixtures live in tests/realhost.py and fail loudly when it
does not answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import expect

from vmdash.models import Host
from vmdash.virt.connection import reset_pool

pytest_plugins = ["tests.realhost", "tests.console.fixtures"]

DATA = Path(__file__).parent / "data"
TESTNODE_URI = f"test://{DATA / 'testnode.xml'}"
WEIRD_NAME = 'it\'s <b>& "ünï cödé"'


# With pytest-xdist (`make test` runs two workers), tests that share a
# session's real parts run on one worker: each folder of real-libvirtd tests
# is a group, and so is every test that uses the console tests' server and
# guests (whose session fixture removes its leftovers when it starts).
# Unit tests on the test driver go wherever a worker is free. Tests that
# restart libvirtd cannot share it with anyone: `make test` runs them after
# the others, alone (marker `restarts_libvirtd`).
# What a browser test expects to see, it waits for up to 15 s (Playwright's
# default is 5): on two cores, with guests booting under TCG and the API's
# property-based run beside it, a live update took longer than 5 s twice (ci31).
# A page that never shows it still fails; one that shows it fast is not slowed.
expect.set_options(timeout=15_000)

CONSOLE_FIXTURES = frozenset({"console_server", "guest_maker", "guest_a", "running_a"})
LOOP_GUARD = "_no_foreign_running_loop"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups off the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(root).parts[0]
        fixtures = set(getattr(item, "fixturenames", ()))
        module = getattr(item, "module", None)
        # Guests made with the console tests' define_guest share their prefix,
        # which the console fixtures sweep: same group.
        if fixtures & CONSOLE_FIXTURES or hasattr(module, "define_guest"):
            item.add_marker(pytest.mark.xdist_group("console"))
        elif folder != "unit" and not folder.endswith(".py"):
            item.add_marker(pytest.mark.xdist_group(folder))
        _loop_guard_first(item)


def _loop_guard_first(item: pytest.Item) -> None:
    """Set `_no_foreign_running_loop` up before every other fixture of the
    test (and so tear it down after them). pytest-django's own autouse
    fixtures (`_django_db_marker` for @pytest.mark.django_db) come first
    otherwise: after a browser test on the same worker they would open and
    roll back the database while Playwright's loop still shows as running,
    Django would refuse (SynchronousOnlyOperation), and every later test of
    that worker would meet the rows left behind."""
    names = getattr(item, "fixturenames", None)
    if names is None or LOOP_GUARD not in names:
        return
    if not isinstance(names, list):  # a pytest that no longer hands out its own list
        pytest.exit(
            f"cannot put {LOOP_GUARD} first: {type(item).__name__}.fixturenames is a "
            f"{type(names).__name__}, not a list; see _loop_guard_first in tests/conftest.py",
            returncode=3,
        )
    names.remove(LOOP_GUARD)
    names.insert(0, LOOP_GUARD)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """Stop at once if xdist's groups did not take (the worker appends
    "@group" to every grouped id): the folders' session fixtures would then
    run on both workers and sweep each other's guests, pools and networks,
    which fails tests far from the cause."""
    if node.config.getvalue("dist") != "loadgroup":
        return
    lost = [i for i in ids if not i.startswith("tests/unit/") and i.count("/") > 1 and "@" not in i]
    if lost:
        pytest.exit(
            f"--dist loadgroup did not group {len(lost)} tests (first: {lost[0]}): "
            "this pytest-xdist does not work with this pytest; see the pin in pyproject.toml",
            returncode=3,
        )


# Seconds spent per xdist group and per worker (setup, call and teardown): the
# run lasts as long as its busiest worker, and a group never leaves its worker.
_GROUP_SECONDS: dict[str, float] = {}
_WORKER_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    grouped = re.search(r"@([\w.-]+)$", report.nodeid)  # xdist appends "@group"
    group = grouped.group(1) if grouped else "(no group)"
    _GROUP_SECONDS[group] = _GROUP_SECONDS.get(group, 0.0) + report.duration
    node = getattr(report, "node", None)  # set on the xdist controller
    if node is not None:
        worker = str(node.gateway.id)
        _WORKER_SECONDS[worker] = _WORKER_SECONDS.get(worker, 0.0) + report.duration


def _say_where_the_time_went(terminalreporter: Any) -> None:
    def line(seconds: dict[str, float]) -> str:
        ranked = sorted(seconds.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{name} {total:.0f} s" for name, total in ranked)

    if _GROUP_SECONDS:
        terminalreporter.write_line(f"time per group: {line(_GROUP_SECONDS)}")
    if _WORKER_SECONDS:
        terminalreporter.write_line(f"time per worker: {line(_WORKER_SECONDS)}")


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Last lines of the run: where the time went, then each failure's nodeid
    and its `E` lines, short.

    A CI log is often read from its end only; the tracebacks above it can be
    long enough to push the reasons out of view."""
    _say_where_the_time_went(terminalreporter)
    reports = [*terminalreporter.stats.get("failed", ()), *terminalreporter.stats.get("error", ())]
    if not reports:
        return
    terminalreporter.write_sep("=", "why each failed, in short")
    for report in reports:
        reasons = [
            line[1:].strip()[:200]
            for line in str(getattr(report, "longreprtext", "")).splitlines()
            if line.startswith("E ")
        ]
        terminalreporter.write_line(f"{report.when:>8} {report.nodeid}")
        for line in reasons[:4] or ["(no E line)"]:
            terminalreporter.write_line(f"         {line}")
    _say_how_libvirtd_fared(terminalreporter)


def _say_how_libvirtd_fared(terminalreporter: Any) -> None:
    """The daemons that ran (pid and start time: a restart, or two at once, shows
    here) and libvirtd's last errors: what a CI log needs when objects vanished."""
    import subprocess

    ps = subprocess.run(
        ["ps", "-o", "pid,lstart,args", "-C", "libvirtd,virtlogd"], capture_output=True, text=True
    )
    terminalreporter.write_sep("-", "libvirtd now")
    for line in ps.stdout.splitlines():
        terminalreporter.write_line(f"  {line[:160]}")
    log = Path("/var/log/libvirt/libvirtd.log")
    if log.exists():
        lines = log.read_text(errors="replace").splitlines()
        errors = [line for line in lines if ": error :" in line]
        for line in errors[-12:]:
            terminalreporter.write_line(f"  {line[:240]}")


@pytest.fixture(autouse=True)
def _fresh_connections() -> Iterator[None]:
    """Every test opens its own connections: a fresh test-driver world."""
    reset_pool()
    yield
    reset_pool()


@pytest.fixture(autouse=True)
def _no_foreign_running_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let asyncio run here even after a browser test of this session.

    Playwright's sync API (the session-wide `browser` fixture) runs its loop
    in a greenlet of the main thread, and that loop stays marked as "running"
    in the thread between calls: asyncio.run() and pytest-asyncio would then
    refuse to start ours. Tests that do not drive the browser hide it while
    they run and put it back after.
    """
    import asyncio.events

    foreign = asyncio.events._get_running_loop()
    if foreign is None or "browser" in request.fixturenames:
        yield
        return
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(foreign)


@pytest.fixture(autouse=True)
def _default_language_after() -> Iterator[None]:
    """A request in Russian activates Russian for its thread, and Django's
    LocaleMiddleware leaves it so: a later test of that worker that calls code
    outside a request would read Russian (seen once, in random order)."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def testnode_uri() -> str:
    return TESTNODE_URI


@pytest.fixture
def lab(db: None) -> Host:
    """An enabled host on the test driver: web1 running, db shut off, one paused."""
    return Host.objects.create(slug="lab", name="Lab", uri=TESTNODE_URI)


@pytest.fixture
def alice(db: None) -> User:
    """The superuser: may do everything without a grant."""
    return User.objects.create_superuser("alice", password="alice-pw-1")


@pytest.fixture
def bob(db: None) -> User:
    """A plain user with no grants: sees nothing."""
    return User.objects.create_user("bob", password="bob-pw-1")


@pytest.fixture
def charlie(db: None) -> User:
    """A superuser account that was deactivated: it may do nothing at all."""
    return User.objects.create_user(
        "charlie", password="charlie-pw-1", is_superuser=True, is_active=False
    )


@pytest.fixture
def as_alice(alice: User) -> Client:
    c = Client()
    c.force_login(alice)
    return c


@pytest.fixture
def as_bob(bob: User) -> Client:
    c = Client()
    c.force_login(bob)
    return c


def audit_entries() -> Any:
    """The audit trail without logins and logouts (every test client logs in)."""
    from vmdash.models import AuditEntry

    return AuditEntry.objects.exclude(object_type="user")
