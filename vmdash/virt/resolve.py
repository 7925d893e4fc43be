"""Turn what a URL or a message names into a full ref, for the door."""

from __future__ import annotations

import libvirt

from vmdash.virt.connection import pool
from vmdash.virt.domains import lookup
from vmdash.virt.refs import DomainRef, HostRef


def domain_ref(host: HostRef, name: str) -> DomainRef:
    """The VM's ref with the UUID libvirt gives (virDomainLookupByName); NotFound."""

    def read(conn: libvirt.virConnect) -> DomainRef:
        dom = lookup(conn, host, name)
        return DomainRef(host.slug, dom.name(), dom.UUIDString())

    return pool().call(host.uri, read, f"Cannot find VM '{name}'")
