"""Fixtures for the real libvirtd (qemu:///system) and the real test guest.

Nothing here skips: if libvirtd does not answer, the test fails and says
how to start it. Every object made here is named vmdash-t-... and removed;
leftovers from a crashed run are removed when the session starts.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from tests.guest import GUEST_BANNER, ensure_guest, guest_domain_xml, kvm_usable

SYSTEM_URI = "qemu:///system"
PREFIX = "vmdash-t-"
SERIAL_LOG_DIR = Path("/var/log/libvirt/qemu")


def _quiet(_ctx: object, _err: object) -> None:
    pass


def remove_leftovers(conn: libvirt.virConnect) -> None:
    for dom in conn.listAllDomains():
        if dom.name().startswith(PREFIX):
            remove_domain(dom)


def remove_domain(dom: libvirt.virDomain) -> None:
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError:
        pass
    try:
        dom.undefineFlags(
            libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        )
    except libvirt.libvirtError:
        pass


def _sweep() -> None:
    """Remove vmdash-t-* guests, if libvirtd answers (a unit-only run may have none).

    VMDASH_TEST_NO_SWEEP=1 leaves them: for a unit run beside another run that
    has guests of its own (two people on one machine)."""
    if os.environ.get("VMDASH_TEST_NO_SWEEP") == "1":
        return
    libvirt.registerErrorHandler(_quiet, None)
    try:
        conn = libvirt.open(SYSTEM_URI)
    except libvirt.libvirtError:
        return
    try:
        remove_leftovers(conn)
    finally:
        conn.close()


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    # Here, not in a fixture: a fixture set up in the middle of the session
    # would remove the guests that module-scoped fixtures made before it.
    # Under xdist only the controller sweeps, before the workers start and
    # after they have all finished: a worker would remove the other's guests.
    if not _is_xdist_worker(session.config):
        _sweep()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _is_xdist_worker(session.config):
        _sweep()


class _LiveConnection:
    """The session's raw connection, opened again when libvirtd was restarted
    under it (tests/integration/test_libvirtd_restart.py does that): a call
    that finds the socket gone reopens it and is made once more."""

    def __init__(self, conn: libvirt.virConnect) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._conn, name)
        if not callable(attr):
            return attr

        def call(*args: object, **kwargs: object) -> object:
            try:
                return getattr(self._conn, name)(*args, **kwargs)
            except libvirt.libvirtError as err:
                if err.get_error_code() not in _GONE and "socket is closed" not in str(err):
                    raise
                self._conn = libvirt.open(SYSTEM_URI)
                return getattr(self._conn, name)(*args, **kwargs)

        return call


_GONE = {libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_INVALID_CONN}


@pytest.fixture(scope="session")
def system_conn() -> Iterator[libvirt.virConnect]:
    """A raw libvirt connection to the real libvirtd, to check what vmdash did."""
    libvirt.registerErrorHandler(_quiet, None)
    try:
        conn = _LiveConnection(libvirt.open(SYSTEM_URI))
    except libvirt.libvirtError as err:
        pytest.fail(
            f"libvirtd does not answer on {SYSTEM_URI} ({err}). "
            "Start it with scripts/ensure-libvirtd (make test does).",
            pytrace=False,
        )
    yield conn
    try:
        conn.close()
    except libvirt.libvirtError:
        pass


def fresh_conn() -> libvirt.virConnect:
    """A new raw connection (after a libvirtd restart the session one is dead)."""
    return libvirt.open(SYSTEM_URI)


@pytest.fixture(scope="session")
def guest_files() -> Path:
    return ensure_guest()


@dataclass
class Guest:
    name: str
    serial_log: Path

    def dom(self) -> libvirt.virDomain:
        return fresh_conn().lookupByName(self.name)

    def state(self) -> int:
        return int(self.dom().state()[0])

    def serial(self) -> str:
        try:
            return self.serial_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_banner(self, timeout: float = 60) -> None:
        wait_until(lambda: GUEST_BANNER in self.serial(), timeout, f"{self.name} banner")


# QEMU, started a moment after another guest was destroyed, sometimes dies here
# within ~50 ms and says nothing (no "char device redirected" line, no signal
# logged, no OOM): libvirt then reports only this. Seen about once per full
# run on this machine kind, on guests of both workers; a second start works.
_SILENT_DEATH = (
    "process exited while connecting to monitor",
    "qemu unexpectedly closed the monitor",
)


def _qemu_log_tail(name: str) -> list[str]:
    try:
        lines = (SERIAL_LOG_DIR / f"{name}.log").read_text(errors="replace").splitlines()
    except OSError as missing:
        return [str(missing)]
    starts = [i for i, line in enumerate(lines) if "starting up libvirt" in line]
    tail = lines[starts[-1] + 1 :] if starts else lines[-6:]
    command = ("-", "LC_ALL", "/usr/bin")  # the command line libvirt logs
    return [line for line in tail if not line.startswith(command) and "=" not in line[:20]]


def start_domain(dom: libvirt.virDomain) -> None:
    """dom.create(); once more if QEMU died silently at start (see above, with a
    warning in the run's summary); otherwise why not: the end of QEMU's own log
    and what the kernel said of killed processes."""
    import warnings

    for attempt in (1, 2):
        try:
            dom.create()
            return
        except libvirt.libvirtError as e:
            said = _qemu_log_tail(dom.name())
            silent = any(m in str(e) for m in _SILENT_DEATH) and not any(
                "qemu-system" in line for line in said
            )
            if silent and attempt == 1:
                warnings.warn(
                    f"{dom.name()}: QEMU died silently at start ({e}); started again", stacklevel=2
                )
                time.sleep(1)
                continue
            kernel = subprocess.run(["dmesg"], capture_output=True, text=True).stdout.splitlines()
            killed = [line for line in kernel if "Killed process" in line or "oom" in line][-3:]
            raise AssertionError(
                f"{dom.name()} did not start: {e}; its QEMU log says: {' | '.join(said[-6:])}"
                f"; kernel: {' | '.join(killed) or 'no OOM kill'}"
            ) from e


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def make_guest(
    system_conn: libvirt.virConnect, guest_files: Path
) -> Iterator[Callable[..., Guest]]:
    """Define (not start) a real test guest; removed after the test."""
    made: list[str] = []

    def make(suffix: str = "", **kwargs: object) -> Guest:
        name = f"{PREFIX}{suffix or uuid.uuid4().hex[:8]}"
        log = SERIAL_LOG_DIR / f"{name}-serial.log"
        xml = guest_domain_xml(
            name,
            kernel=guest_files / "vmlinuz",
            initrd=guest_files / "initrd.img",
            domain_type="kvm" if kvm_usable() else "qemu",
            serial_log=log,
            **kwargs,  # type: ignore[arg-type]
        )
        fresh_conn().defineXML(xml)
        made.append(name)
        return Guest(name, log)

    yield make
    conn = fresh_conn()
    for name in made:
        try:
            remove_domain(conn.lookupByName(name))
        except libvirt.libvirtError:
            pass
        (SERIAL_LOG_DIR / f"{name}-serial.log").unlink(missing_ok=True)


def libvirtd_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def stop_libvirtd() -> None:
    for pid in libvirtd_pids():
        subprocess.run(["kill", str(pid)], check=False)
    wait_until(lambda: not libvirtd_pids(), 30, "libvirtd to stop")


def start_libvirtd() -> None:
    repo = Path(__file__).resolve().parent.parent
    subprocess.run([str(repo / "scripts" / "ensure-libvirtd")], check=True)
