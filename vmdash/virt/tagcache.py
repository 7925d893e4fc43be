"""The tags of each VM, remembered per connection and forgotten on libvirt's word.

Tags live in each VM's <metadata> (vmdash/virt/xml/tags.py), and no bulk
call carries metadata: reading them for a 1000-VM list would be 1000
virDomainGetMetadata calls on every page. So each connection of the pool
keeps what it read, and registers for the events that say it changed
(VIR_DOMAIN_EVENT_ID_METADATA_CHANGE for vmdash's namespace, and the
lifecycle's DEFINED / UNDEFINED: a redefinition may carry other tags) on
that same connection, before reading anything. A reopened connection is a
new object with an empty memory, so events lost while a host was away cannot
leave stale tags. A read racing an event does not store what it read (the
VM's generation moved on), so the next read asks libvirt again.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable

import libvirt

from vmdash.virt.xml.tags import NS, parse_tags

log = logging.getLogger(__name__)


class _Memory:
    """One connection's tags by VM UUID, with a generation per UUID for races."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tags: dict[str, frozenset[str]] = {}
        self.gens: dict[str, int] = {}
        self.listening = False  # no events, no memory: every read asks libvirt

    def forget(self, uuid: str) -> None:
        with self.lock:
            self.tags.pop(uuid, None)
            self.gens[uuid] = self.gens.get(uuid, 0) + 1

    def known(self, uuid: str) -> tuple[frozenset[str] | None, int]:
        with self.lock:
            return self.tags.get(uuid), self.gens.get(uuid, 0)

    def keep(self, uuid: str, tags: frozenset[str], gen: int) -> None:
        with self.lock:
            if self.listening and self.gens.get(uuid, 0) == gen:
                self.tags[uuid] = tags


_memories: weakref.WeakKeyDictionary[libvirt.virConnect, _Memory] = weakref.WeakKeyDictionary()
_by_host: dict[str, weakref.ref[_Memory]] = {}
_lock = threading.Lock()


def _memory(conn: libvirt.virConnect, host: str) -> _Memory:
    with _lock:
        found = _memories.get(conn)
    if found is None:
        made = _Memory()
        _listen(conn, made)  # outside the lock: a call to a host that may be slow
        with _lock:
            found = _memories.setdefault(conn, made)
    with _lock:
        _by_host[host] = weakref.ref(found)
    return found


def _listen(conn: libvirt.virConnect, memory: _Memory) -> None:
    """Forget a VM's tags when libvirt says its metadata or definition changed."""

    def metadata(
        _c: object, dom: libvirt.virDomain, mtype: int, nsuri: str | None, _o: object
    ) -> None:
        if mtype == libvirt.VIR_DOMAIN_METADATA_ELEMENT and nsuri in (None, NS):
            memory.forget(dom.UUIDString())

    def lifecycle(_c: object, dom: libvirt.virDomain, event: int, _d: int, _o: object) -> None:
        if event in (libvirt.VIR_DOMAIN_EVENT_DEFINED, libvirt.VIR_DOMAIN_EVENT_UNDEFINED):
            memory.forget(dom.UUIDString())

    callbacks: list[tuple[int, Callable[..., None]]] = [
        (libvirt.VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, metadata),
        (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle),
    ]
    try:
        for event_id, callback in callbacks:
            conn.domainEventRegisterAny(None, event_id, callback, None)
    except libvirt.libvirtError as err:
        log.info("tags: no domain events on this connection, tags are read every time: %s", err)
        return
    memory.listening = True


def read_tags(dom: libvirt.virDomain) -> frozenset[str]:
    """virDomainGetMetadata(ELEMENT, vmdash's namespace): the VM's tags, none if absent."""
    try:
        return parse_tags(str(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NS, 0)))
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
            return frozenset()
        raise


def tags_of(conn: libvirt.virConnect, host: str, dom: libvirt.virDomain) -> frozenset[str]:
    """The VM's tags: remembered, or read once (virDomainGetMetadata) and remembered."""
    memory = _memory(conn, host)
    uuid = dom.UUIDString()
    tags, gen = memory.known(uuid)
    if tags is None:
        tags = read_tags(dom)
        memory.keep(uuid, tags, gen)
    return tags


def forget(conn: libvirt.virConnect, host: str, uuid: str) -> None:
    """After our own change: the next read asks libvirt (the event may come later)."""
    _memory(conn, host).forget(uuid)


def known_tags(host: str, uuid: str) -> frozenset[str] | None:
    """What the pool last read for this VM of host `host` (by slug), None if nothing.

    No libvirt call: for the live stream's first look at an event, on the loop.
    """
    with _lock:
        ref = _by_host.get(host)
    memory = ref() if ref is not None else None
    return None if memory is None else memory.known(uuid)[0]
