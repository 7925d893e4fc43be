"""libvirt events: one dedicated event connection per host, turned into dataclasses.

A `HostWatcher` owns a connection of its own (not the pool's: its callbacks
and its lifetime are its own business), registers the domain, network and
storage pool callbacks and hands every event to a sink. The callbacks run on
libvirt's event-loop thread, which every host shares: they only copy what the
object already holds (name, UUID: no RPC) and return, so a slow host cannot
stall the others. Opening and reopening happen on the watcher's own thread,
with backoff; a host that comes back is announced with `HostStatus(up=True)`,
which tells listeners to resync (events may have been missed meanwhile).

An event says that something changed, not what it is now: whoever receives
one re-reads the object (`read_domain`) before showing it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import libvirt

from vmdash.virt.connection import ensure_event_loop, is_remote, pool
from vmdash.virt.domains import DomainSummary, summarize
from vmdash.virt.refs import HostRef

log = logging.getLogger(__name__)


class ObjectKind(StrEnum):
    DOMAIN = "domain"
    NETWORK = "network"
    POOL = "pool"


class Change(StrEnum):
    """What happened to an object, as libvirt's event IDs and lifecycle codes say."""

    DEFINED = "defined"
    UNDEFINED = "undefined"
    STARTED = "started"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    STOPPED = "stopped"
    SHUTDOWN = "shutdown"  # the guest is shutting down (STOPPED follows)
    PMSUSPENDED = "pmsuspended"
    CRASHED = "crashed"
    CREATED = "created"  # storage pool built
    DELETED = "deleted"  # storage pool deleted
    REBOOTED = "rebooted"
    DEVICE_ADDED = "device-added"
    DEVICE_REMOVED = "device-removed"
    METADATA_CHANGED = "metadata-changed"
    JOB_COMPLETED = "job-completed"


# Changes after which the object may be gone, appeared, or changed name.
MEMBERSHIP = frozenset({Change.DEFINED, Change.UNDEFINED, Change.STARTED, Change.STOPPED})
# Changes that move a VM to another state (badge, buttons, counts).
STATE = frozenset(
    {
        Change.STARTED,
        Change.SUSPENDED,
        Change.RESUMED,
        Change.STOPPED,
        Change.SHUTDOWN,
        Change.PMSUSPENDED,
        Change.CRASHED,
        Change.DEFINED,
        Change.UNDEFINED,
    }
)


@dataclass(frozen=True)
class ObjectEvent:
    """libvirt reported a change to a VM, network or storage pool of `host`."""

    host: str  # the host's slug
    kind: ObjectKind
    uuid: str
    name: str
    change: Change
    detail: str = ""  # why, e.g. "destroyed", "renamed", "shutdown"
    info: str = ""  # device alias, metadata type, ...
    at: float = 0.0  # time.time() when the callback ran


@dataclass(frozen=True)
class HostStatus:
    """The event connection to `host` came up (resync!) or went down."""

    host: str
    up: bool
    message: str = ""
    at: float = 0.0


Event = ObjectEvent | HostStatus
Sink = Callable[[Event], None]


def _c(name: str) -> int:
    """A libvirt constant, -1 when this binding lacks it (newer than the binding)."""
    return int(getattr(libvirt, name, -1))


_DOMAIN_CHANGES: dict[int, tuple[Change, dict[int, str]]] = {
    _c("VIR_DOMAIN_EVENT_DEFINED"): (
        Change.DEFINED,
        {
            _c("VIR_DOMAIN_EVENT_DEFINED_ADDED"): "added",
            _c("VIR_DOMAIN_EVENT_DEFINED_UPDATED"): "updated",
            _c("VIR_DOMAIN_EVENT_DEFINED_RENAMED"): "renamed",
            _c("VIR_DOMAIN_EVENT_DEFINED_FROM_SNAPSHOT"): "from snapshot",
        },
    ),
    _c("VIR_DOMAIN_EVENT_UNDEFINED"): (
        Change.UNDEFINED,
        {
            _c("VIR_DOMAIN_EVENT_UNDEFINED_REMOVED"): "removed",
            _c("VIR_DOMAIN_EVENT_UNDEFINED_RENAMED"): "renamed",
        },
    ),
    _c("VIR_DOMAIN_EVENT_STARTED"): (
        Change.STARTED,
        {
            _c("VIR_DOMAIN_EVENT_STARTED_BOOTED"): "booted",
            _c("VIR_DOMAIN_EVENT_STARTED_MIGRATED"): "migrated",
            _c("VIR_DOMAIN_EVENT_STARTED_RESTORED"): "restored",
            _c("VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT"): "from snapshot",
            _c("VIR_DOMAIN_EVENT_STARTED_WAKEUP"): "wakeup",
        },
    ),
    _c("VIR_DOMAIN_EVENT_SUSPENDED"): (
        Change.SUSPENDED,
        {
            _c("VIR_DOMAIN_EVENT_SUSPENDED_PAUSED"): "paused",
            _c("VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED"): "migrated",
            _c("VIR_DOMAIN_EVENT_SUSPENDED_IOERROR"): "ioerror",
            _c("VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG"): "watchdog",
            _c("VIR_DOMAIN_EVENT_SUSPENDED_RESTORED"): "restored",
            _c("VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT"): "from snapshot",
            _c("VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR"): "api error",
            _c("VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY"): "postcopy",
            _c("VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED"): "postcopy failed",
        },
    ),
    _c("VIR_DOMAIN_EVENT_RESUMED"): (
        Change.RESUMED,
        {
            _c("VIR_DOMAIN_EVENT_RESUMED_UNPAUSED"): "unpaused",
            _c("VIR_DOMAIN_EVENT_RESUMED_MIGRATED"): "migrated",
            _c("VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT"): "from snapshot",
            _c("VIR_DOMAIN_EVENT_RESUMED_POSTCOPY"): "postcopy",
        },
    ),
    _c("VIR_DOMAIN_EVENT_STOPPED"): (
        Change.STOPPED,
        {
            _c("VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN"): "shutdown",
            _c("VIR_DOMAIN_EVENT_STOPPED_DESTROYED"): "destroyed",
            _c("VIR_DOMAIN_EVENT_STOPPED_CRASHED"): "crashed",
            _c("VIR_DOMAIN_EVENT_STOPPED_MIGRATED"): "migrated",
            _c("VIR_DOMAIN_EVENT_STOPPED_SAVED"): "saved",
            _c("VIR_DOMAIN_EVENT_STOPPED_FAILED"): "failed",
            _c("VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT"): "from snapshot",
        },
    ),
    _c("VIR_DOMAIN_EVENT_SHUTDOWN"): (
        Change.SHUTDOWN,
        {
            _c("VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED"): "finished",
            _c("VIR_DOMAIN_EVENT_SHUTDOWN_GUEST"): "guest",
            _c("VIR_DOMAIN_EVENT_SHUTDOWN_HOST"): "host",
        },
    ),
    _c("VIR_DOMAIN_EVENT_PMSUSPENDED"): (
        Change.PMSUSPENDED,
        {
            _c("VIR_DOMAIN_EVENT_PMSUSPENDED_MEMORY"): "memory",
            _c("VIR_DOMAIN_EVENT_PMSUSPENDED_DISK"): "disk",
        },
    ),
    _c("VIR_DOMAIN_EVENT_CRASHED"): (
        Change.CRASHED,
        {
            _c("VIR_DOMAIN_EVENT_CRASHED_PANICKED"): "panicked",
            _c("VIR_DOMAIN_EVENT_CRASHED_CRASHLOADED"): "crashloaded",
        },
    ),
}

_NETWORK_CHANGES: dict[int, Change] = {
    _c("VIR_NETWORK_EVENT_DEFINED"): Change.DEFINED,
    _c("VIR_NETWORK_EVENT_UNDEFINED"): Change.UNDEFINED,
    _c("VIR_NETWORK_EVENT_STARTED"): Change.STARTED,
    _c("VIR_NETWORK_EVENT_STOPPED"): Change.STOPPED,
}

_POOL_CHANGES: dict[int, Change] = {
    _c("VIR_STORAGE_POOL_EVENT_DEFINED"): Change.DEFINED,
    _c("VIR_STORAGE_POOL_EVENT_UNDEFINED"): Change.UNDEFINED,
    _c("VIR_STORAGE_POOL_EVENT_STARTED"): Change.STARTED,
    _c("VIR_STORAGE_POOL_EVENT_STOPPED"): Change.STOPPED,
    _c("VIR_STORAGE_POOL_EVENT_CREATED"): Change.CREATED,
    _c("VIR_STORAGE_POOL_EVENT_DELETED"): Change.DELETED,
}

_METADATA_TYPES = {
    _c("VIR_DOMAIN_METADATA_DESCRIPTION"): "description",
    _c("VIR_DOMAIN_METADATA_TITLE"): "title",
    _c("VIR_DOMAIN_METADATA_ELEMENT"): "element",
}


class HostWatcher:
    """Keeps one event connection to `host` open and reports what it hears.

    `sink` is called from libvirt's event-loop thread (object events) and from
    the watcher's thread (status); it must be thread-safe and must not block.
    """

    def __init__(
        self,
        host: HostRef,
        sink: Sink,
        *,
        min_backoff: float = 0.5,
        max_backoff: float = 15.0,
        check_interval: float = 5.0,
    ) -> None:
        self.host = host
        self._sink = sink
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.check_interval = check_interval
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._up: bool | None = None
        self.connected = threading.Event()  # set while an event connection is open

    def start(self) -> None:
        ensure_event_loop()
        self._thread = threading.Thread(
            target=self._run, name=f"vmdash-events-{self.host.slug}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the event connection. A thread stuck opening a host that does
        not answer is left behind (it is a daemon) and closes when it returns."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _emit(self, event: Event) -> None:
        try:
            self._sink(event)
        except Exception:
            log.exception("event sink failed for %s", self.host.slug)

    def _status(self, up: bool, message: str = "") -> None:
        if up or self._up is not False:  # "down" once per outage, "up" every time
            self._emit(HostStatus(self.host.slug, up, message, time.time()))
        self._up = up

    def _run(self) -> None:
        delay = self.min_backoff
        while not self._stopping.is_set():
            try:
                conn = libvirt.open(self.host.uri)
            except libvirt.libvirtError as err:
                message = err.get_error_message() or str(err)
                log.info("events: cannot connect to %s: %s", self.host.uri, message)
                self._status(False, f"Cannot connect to {self.host.label}: {message}")
                self._stopping.wait(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            if self._stopping.is_set():
                with contextlib.suppress(libvirt.libvirtError):
                    conn.close()
                break
            delay = self.min_backoff
            self._wake.clear()
            ids = self._register(conn)
            self.connected.set()
            log.info("events: watching %s (%s)", self.host.slug, self.host.uri)
            self._status(True)
            while not self._wake.is_set():
                self._wake.wait(self.check_interval)
                with contextlib.suppress(libvirt.libvirtError):
                    if not conn.isAlive():
                        break
            self.connected.clear()
            self._unregister(conn, ids)
            if not self._stopping.is_set():
                log.warning("events: lost the connection to %s", self.host.uri)
                self._status(False, f"Lost the connection to {self.host.label}")
                self._stopping.wait(self.min_backoff)

    def _on_close(self, _conn: libvirt.virConnect, reason: int, _opaque: object) -> None:
        log.info("events: connection to %s closed (reason %s)", self.host.slug, reason)
        self._wake.set()

    def _register(self, conn: libvirt.virConnect) -> list[tuple[str, int]]:
        try:
            conn.registerCloseCallback(self._on_close, None)
            if is_remote(self.host.uri):
                conn.setKeepAlive(5, 3)
        except libvirt.libvirtError:
            log.warning("events: cannot watch the connection to %s for closing", self.host.uri)
        ids: list[tuple[str, int]] = []
        domain_callbacks: list[tuple[int, Callable[..., None]]] = [
            (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle),
            (libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._on_reboot),
            (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, self._on_device_added),
            (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, self._on_device_removed),
            (libvirt.VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, self._on_metadata),
            (libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._on_job_completed),
        ]
        for event_id, callback in domain_callbacks:
            try:
                ids.append(("domain", conn.domainEventRegisterAny(None, event_id, callback, None)))
            except libvirt.libvirtError as err:
                log.warning("events: %s: domain event %s: %s", self.host.slug, event_id, err)
        try:
            ids.append(
                (
                    "network",
                    conn.networkEventRegisterAny(
                        None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, self._on_network, None
                    ),
                )
            )
        except libvirt.libvirtError as err:
            log.warning("events: %s: network events: %s", self.host.slug, err)
        try:
            ids.append(
                (
                    "pool",
                    conn.storagePoolEventRegisterAny(
                        None, libvirt.VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE, self._on_pool, None
                    ),
                )
            )
        except libvirt.libvirtError as err:
            log.warning("events: %s: storage pool events: %s", self.host.slug, err)
        return ids

    def _unregister(self, conn: libvirt.virConnect, ids: list[tuple[str, int]]) -> None:
        """Drop callbacks and close; every call may fail on a dead connection."""
        deregister = {
            "domain": conn.domainEventDeregisterAny,
            "network": conn.networkEventDeregisterAny,
            "pool": conn.storagePoolEventDeregisterAny,
        }
        for kind, callback_id in ids:
            with contextlib.suppress(libvirt.libvirtError):
                deregister[kind](callback_id)
        with contextlib.suppress(libvirt.libvirtError):
            conn.unregisterCloseCallback()
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    # Callbacks: libvirt's event-loop thread. Name and UUID are held by the
    # object itself; nothing here talks to the host.

    def _domain(
        self, dom: libvirt.virDomain, change: Change, detail: str = "", info: str = ""
    ) -> None:
        self._emit(
            ObjectEvent(
                self.host.slug,
                ObjectKind.DOMAIN,
                dom.UUIDString(),
                dom.name(),
                change,
                detail,
                info,
                time.time(),
            )
        )

    def _on_lifecycle(
        self, _c: libvirt.virConnect, dom: libvirt.virDomain, event: int, detail: int, _o: object
    ) -> None:
        known = _DOMAIN_CHANGES.get(event)
        if known is None:
            return
        change, details = known
        self._domain(dom, change, details.get(detail, ""))

    def _on_reboot(self, _c: libvirt.virConnect, dom: libvirt.virDomain, _o: object) -> None:
        self._domain(dom, Change.REBOOTED)

    def _on_device_added(
        self, _c: libvirt.virConnect, dom: libvirt.virDomain, alias: str, _o: object
    ) -> None:
        self._domain(dom, Change.DEVICE_ADDED, info=alias)

    def _on_device_removed(
        self, _c: libvirt.virConnect, dom: libvirt.virDomain, alias: str, _o: object
    ) -> None:
        self._domain(dom, Change.DEVICE_REMOVED, info=alias)

    def _on_metadata(
        self, _c: libvirt.virConnect, dom: libvirt.virDomain, mtype: int, _ns: Any, _o: object
    ) -> None:
        self._domain(dom, Change.METADATA_CHANGED, info=_METADATA_TYPES.get(mtype, ""))

    def _on_job_completed(
        self, _c: libvirt.virConnect, dom: libvirt.virDomain, _params: Any, _o: object
    ) -> None:
        self._domain(dom, Change.JOB_COMPLETED)

    def _on_network(
        self, _c: libvirt.virConnect, net: libvirt.virNetwork, event: int, _d: int, _o: object
    ) -> None:
        change = _NETWORK_CHANGES.get(event)
        if change is not None:
            self._emit(
                ObjectEvent(
                    self.host.slug,
                    ObjectKind.NETWORK,
                    net.UUIDString(),
                    net.name(),
                    change,
                    at=time.time(),
                )
            )

    def _on_pool(
        self, _c: libvirt.virConnect, pool_: libvirt.virStoragePool, event: int, _d: int, _o: object
    ) -> None:
        change = _POOL_CHANGES.get(event)
        if change is not None:
            self._emit(
                ObjectEvent(
                    self.host.slug,
                    ObjectKind.POOL,
                    pool_.UUIDString(),
                    pool_.name(),
                    change,
                    at=time.time(),
                )
            )


def read_domain(host: HostRef, uuid: str) -> DomainSummary | None:
    """The re-read an event calls for: the VM by UUID (it survives a rename),
    or None when it is gone (virDomainLookupByUUIDString, then the calls of
    `domains.get_summary`). Raises HostUnavailable."""

    def read(conn: libvirt.virConnect) -> DomainSummary | None:
        try:
            dom = conn.lookupByUUIDString(uuid)
            return summarize(host, dom)
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None  # undefined, or a transient VM that stopped
            raise

    return pool().call(host.uri, read, f"Cannot read VM {uuid} on host '{host.label}'")


__all__ = [
    "MEMBERSHIP",
    "STATE",
    "Change",
    "Event",
    "HostStatus",
    "HostWatcher",
    "ObjectEvent",
    "ObjectKind",
    "read_domain",
]
