"""One owner for libvirt connections: one per host URI, opened lazily,
dropped when the hypervisor goes away and reopened on the next call.

libvirt connections are thread-safe, so one connection serves every thread.
A host that just failed is not retried before `reconnect_interval` seconds:
pages then show it as unreachable at once instead of waiting on it again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import libvirt

from vmdash.virt.errors import HostUnavailable, VirtError, is_connection_lost, translate

log = logging.getLogger(__name__)
T = TypeVar("T")

_loop_lock = threading.Lock()
_loop_started = False


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; ours are raised instead."""


def ensure_event_loop() -> None:
    """Register libvirt's default event loop and run it on a daemon thread, once.

    It must exist before connections open: close callbacks, keepalive on
    remote hosts and domain events are all delivered through it.
    """
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        libvirt.registerErrorHandler(_quiet, None)
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                try:
                    libvirt.virEventRunDefaultImpl()
                except libvirt.libvirtError:
                    log.exception("libvirt event loop iteration failed")
                    time.sleep(0.1)

        threading.Thread(target=run, name="libvirt-event-loop", daemon=True).start()
        _loop_started = True


def is_remote(uri: str) -> bool:
    scheme = uri.split(":", 1)[0]
    return "+" in scheme and not scheme.endswith("+unix")


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    conn: libvirt.virConnect | None = None
    failed_at: float = 0.0
    error: HostUnavailable | None = None
    generation: int = 0


class ConnectionPool:
    def __init__(self, reconnect_interval: float = 2.0, connect_timeout: float = 5.0) -> None:
        self.reconnect_interval = reconnect_interval
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def _entry(self, uri: str) -> _Entry:
        with self._lock:
            return self._entries.setdefault(uri, _Entry())

    def get(self, uri: str) -> libvirt.virConnect:
        """The open connection to `uri` (virConnectOpen); raises HostUnavailable.

        A host that does not answer within `connect_timeout` seconds (a
        silent network, an SSH prompt) fails the caller then; nobody waits
        longer on it, also not behind another caller's attempt.
        """
        entry = self._entry(uri)
        if not entry.lock.acquire(timeout=self.connect_timeout):
            raise HostUnavailable(
                f"Cannot connect to {uri}: no answer within {self.connect_timeout:g} s."
            )
        try:
            if entry.conn is not None:
                return entry.conn
            if entry.error is not None and time.monotonic() - entry.failed_at < (
                self.reconnect_interval
            ):
                raise entry.error
            ensure_event_loop()
            try:
                conn = self._open(uri)
            except HostUnavailable as err:
                entry.failed_at, entry.error = time.monotonic(), err
                raise
            entry.conn, entry.error, entry.generation = conn, None, entry.generation + 1
            generation = entry.generation
        finally:
            entry.lock.release()
        try:
            conn.registerCloseCallback(self._on_close, (uri, generation))
            if is_remote(uri):
                conn.setKeepAlive(5, 3)
        except libvirt.libvirtError:
            log.warning("cannot watch the connection to %s for closing", uri)
        log.info("connected to %s", uri)
        return conn

    def _open(self, uri: str) -> libvirt.virConnect:
        """libvirt.open on a helper thread, waited for at most connect_timeout."""
        done = threading.Event()
        outcome: dict[str, object] = {}

        def opener() -> None:
            try:
                outcome["conn"] = libvirt.open(uri)
            except libvirt.libvirtError as err:
                outcome["error"] = err
            done.set()

        threading.Thread(target=opener, name=f"libvirt-open {uri}", daemon=True).start()
        if not done.wait(self.connect_timeout):

            def close_when_done() -> None:  # the late connection is nobody's
                done.wait()
                late = outcome.get("conn")
                if isinstance(late, libvirt.virConnect):
                    late.close()

            threading.Thread(target=close_when_done, daemon=True).start()
            raise HostUnavailable(
                f"Cannot connect to {uri}: no answer within {self.connect_timeout:g} s."
            )
        err = outcome.get("error")
        if isinstance(err, libvirt.libvirtError):
            raise HostUnavailable(
                f"Cannot connect to {uri}: {err.get_error_message() or err}",
                code=err.get_error_code(),
            )
        conn = outcome["conn"]
        assert isinstance(conn, libvirt.virConnect)
        return conn

    def _on_close(self, _conn: libvirt.virConnect, reason: int, opaque: tuple[str, int]) -> None:
        uri, generation = opaque
        log.warning("connection to %s closed (reason %s)", uri, reason)
        self.drop(uri, generation)

    def drop(self, uri: str, generation: int | None = None) -> None:
        """Forget the connection to `uri` so that the next call reopens it."""
        entry = self._entry(uri)
        with entry.lock:
            if entry.conn is None or (generation is not None and generation != entry.generation):
                return
            conn, entry.conn = entry.conn, None
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    def call(self, uri: str, fn: Callable[[libvirt.virConnect], T], doing: str = "") -> T:
        """Run `fn(conn)`; a lost connection is reopened and `fn` tried once more.

        libvirt errors come out as VirtError kinds prefixed with `doing`.
        """
        for attempt in (1, 2):
            conn = self.get(uri)
            try:
                return fn(conn)
            except libvirt.libvirtError as err:
                if is_connection_lost(err):
                    self.drop(uri)
                    if attempt == 1:
                        continue
                    raise HostUnavailable(
                        f"Lost the connection to {uri}: {err.get_error_message()}",
                        code=err.get_error_code(),
                    ) from None
                raise translate(err, doing) from None
        raise AssertionError("unreachable")

    def close_all(self) -> None:
        with self._lock:
            uris = list(self._entries)
        for uri in uris:
            self.drop(uri)
        with self._lock:
            self._entries.clear()


_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()


def pool() -> ConnectionPool:
    """The process-wide pool, created on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ConnectionPool(*_timings())
        return _pool


def reset_pool() -> None:
    """Close every connection and forget failures (tests, settings changes)."""
    global _pool
    with _pool_lock:
        old, _pool = _pool, None
    if old is not None:
        old.close_all()


def _timings() -> tuple[float, float]:
    """(reconnect interval, connect timeout) from Django's settings, if any."""
    from django.conf import settings

    if not settings.configured:  # the benchmarks use this package without Django
        return 2.0, 5.0
    return (
        float(getattr(settings, "VMDASH_RECONNECT_INTERVAL", 2)),
        float(getattr(settings, "VMDASH_HOST_TIMEOUT", 5)),
    )


def probe(uri: str) -> str:
    """Open `uri` on a fresh connection and return its hostname; for forms.

    Raises HostUnavailable with libvirt's reason when it cannot.
    """
    ensure_event_loop()
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as err:
        raise HostUnavailable(
            f"Cannot connect to {uri}: {err.get_error_message() or err}",
            code=err.get_error_code(),
        ) from None
    try:
        return str(conn.getHostname())
    except libvirt.libvirtError as err:
        raise translate(err, f"Connected to {uri} but cannot ask it anything") from None
    finally:
        conn.close()


__all__ = ["ConnectionPool", "VirtError", "pool", "probe", "reset_pool"]
