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
from datetime import datetime
from typing import TypeVar

import libvirt

from vmdash.virt.errors import (
    HostUnavailable,
    InvalidInput,
    VirtError,
    is_connection_lost,
    translate,
)
from vmdash.virt.uris import check_uri

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


def _clock(wall: float) -> str:
    return datetime.fromtimestamp(wall).strftime("%H:%M:%S")


@dataclass
class _Pending:
    """One libvirt.open in flight on its own daemon thread."""

    started: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)
    done: threading.Event = field(default_factory=threading.Event)
    error: HostUnavailable | None = None


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    conn: libvirt.virConnect | None = None
    failed_at: float = 0.0
    error: HostUnavailable | None = None
    generation: int = 0
    pending: _Pending | None = None
    # Wall time of the open that outlived connect_timeout: until an open
    # succeeds, callers fail at once and reconnects run in the background.
    silent_since: float | None = None


class ConnectionPool:
    """At most one open per URI is ever in flight, and at most `max_pending`
    in all: a host that never answers costs one blocked daemon thread, not one
    per request, and no caller waits on it longer than `connect_timeout`."""

    def __init__(
        self,
        reconnect_interval: float = 2.0,
        connect_timeout: float = 5.0,
        *,
        join_grace: float = 0.25,
        max_pending: int = 16,
    ) -> None:
        self.reconnect_interval = reconnect_interval
        self.connect_timeout = connect_timeout
        self.join_grace = join_grace
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._slots = threading.BoundedSemaphore(max_pending)

    def _entry(self, uri: str) -> _Entry:
        with self._lock:
            return self._entries.setdefault(uri, _Entry())

    def get(self, uri: str) -> libvirt.virConnect:
        """The open connection to `uri` (virConnectOpen); raises HostUnavailable.

        The caller that starts an open waits for it at most `connect_timeout`
        seconds; a caller that finds one in flight waits `join_grace` at most,
        then fails with "connecting since"; after a timeout the host fails at
        once ("unreachable since") until a background open succeeds.
        """
        checked = _checked(uri)
        entry = self._entry(uri)
        with entry.lock:
            if entry.conn is not None:
                return entry.conn
            pending, mine = entry.pending, False
            if pending is None:
                pending, mine = self._maybe_start(checked, uri, entry), True
            if entry.silent_since is not None:
                raise self._silent_error(uri, entry)
        assert pending is not None
        left = pending.started + self.connect_timeout - time.monotonic()
        pending.done.wait(max(0.0, left if mine else min(left, self.join_grace)))
        with entry.lock:
            if entry.conn is not None:
                return entry.conn
            if pending.done.is_set():
                raise pending.error or self._silent_error(uri, entry)
            if not mine:
                raise HostUnavailable(
                    f"Cannot connect to {uri}: connecting since {_clock(pending.wall)}."
                )
            entry.silent_since, entry.failed_at = pending.wall, time.monotonic()
            entry.error = HostUnavailable(
                f"Cannot connect to {uri}: no answer within {self.connect_timeout:g} s."
            )
            raise entry.error

    def _maybe_start(self, checked: str, uri: str, entry: _Entry) -> _Pending | None:
        """Start an open unless the last failure is too recent (entry.lock held)."""
        if entry.error is not None and time.monotonic() - entry.failed_at < self.reconnect_interval:
            if entry.silent_since is not None:
                return None
            raise entry.error
        if not self._slots.acquire(blocking=False):
            raise HostUnavailable(
                f"Cannot connect to {uri} now: too many hosts are not answering; try again later."
            )
        ensure_event_loop()
        entry.pending = _Pending()
        threading.Thread(
            target=self._open,
            args=(checked, uri, entry, entry.pending),
            name=f"libvirt-open {uri}",
            daemon=True,
        ).start()
        return entry.pending

    def _silent_error(self, uri: str, entry: _Entry) -> HostUnavailable:
        since = _clock(entry.silent_since or time.time())
        why = f" ({entry.error.message})" if entry.error else ""
        return HostUnavailable(
            f"Host {uri} is unreachable since {since}{why}; vmdash reconnects in the background."
        )

    def _open(self, checked: str, uri: str, entry: _Entry, pending: _Pending) -> None:
        """The open thread: libvirt.open, however long it takes, then tell the waiters."""
        conn: libvirt.virConnect | None = None
        try:
            conn = libvirt.open(checked)
        except libvirt.libvirtError as err:
            pending.error = unavailable(uri, err)
        finally:
            self._slots.release()
        with entry.lock:
            entry.pending = None
            if conn is None:
                entry.failed_at, entry.error = time.monotonic(), pending.error
            else:
                entry.conn, entry.error, entry.silent_since = conn, None, None
                entry.generation += 1
            generation = entry.generation
        pending.done.set()
        if conn is not None:
            self._watch(uri, conn, generation)

    def _watch(self, uri: str, conn: libvirt.virConnect, generation: int) -> None:
        try:
            conn.registerCloseCallback(self._on_close, (uri, generation))
            if is_remote(uri):
                conn.setKeepAlive(5, 3)
        except libvirt.libvirtError:
            log.warning("cannot watch the connection to %s for closing", uri)
        log.info("connected to %s", uri)

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
                if is_connection_lost(err) and not _still_alive(conn, err):
                    self.drop(uri)
                    if attempt == 1:
                        continue
                    raise HostUnavailable(
                        f"Lost the connection to {uri}: {_first_line(err)}",
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


def _checked(uri: str) -> str:
    """The URI as the one rule writes it; a stored URI that breaks it is never opened."""
    try:
        return check_uri(uri, allow_demo=True)
    except InvalidInput as err:
        raise HostUnavailable(f"vmdash does not open {uri!r}: {err}") from None


# libvirt errors of an open whose text names the URI, the address or the
# authentication step, not the content of a file. Every other open error (an
# XML parse error of the test driver quotes the file it read) is shown as a
# fixed sentence with the error's code name only.
_SAFE_OPEN_ERRORS = {
    libvirt.VIR_ERR_SYSTEM_ERROR,
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_AUTH_FAILED,
    libvirt.VIR_ERR_AUTH_CANCELLED,
    libvirt.VIR_ERR_AUTH_UNAVAILABLE,
    libvirt.VIR_ERR_OPERATION_TIMEOUT,
}
_CODE_NAMES = {
    getattr(libvirt, n): n[len("VIR_ERR_") :]
    for n in dir(libvirt)
    if n.startswith("VIR_ERR_") and isinstance(getattr(libvirt, n), int)
}


def _first_line(err: libvirt.libvirtError) -> str:
    line = (err.get_error_message() or "").strip().splitlines()[:1]
    return "".join(c for c in "".join(line) if c.isprintable())[:300]


def unavailable(uri: str, err: libvirt.libvirtError) -> HostUnavailable:
    """HostUnavailable for a failed open, without any text libvirt read from a file."""
    code = err.get_error_code()
    if code in _SAFE_OPEN_ERRORS and _first_line(err):
        reason = _first_line(err)
    else:
        reason = f"libvirt refused the URI (error {_CODE_NAMES.get(code, code)})"
    return HostUnavailable(f"Cannot connect to {uri}: {reason}", code=code)


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
    """The hostname of `uri` (virConnectGetHostname), through the pool's bounded open;
    for forms. Raises HostUnavailable with a reason that quotes no file."""
    return pool().call(
        uri, lambda conn: str(conn.getHostname()), f"Connected to {uri} but cannot ask it anything"
    )


__all__ = ["ConnectionPool", "VirtError", "pool", "probe", "reset_pool"]


def _still_alive(conn: libvirt.virConnect, err: libvirt.libvirtError) -> bool:
    """A system error on a connection that is still alive is the host's answer
    (a mkdir that failed, a file it cannot read), not a lost connection: it
    must not be retried, since the work may be half done (virConnectIsAlive)."""
    if err.get_error_code() != libvirt.VIR_ERR_SYSTEM_ERROR:
        return False
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False
