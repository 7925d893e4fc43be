"""Turn what a URL or a message names into a full ref, for the door.

Each function is one lookup (virDomainLookupByName, virStoragePoolLookupByName,
virStorageVolLookupByName, virNetworkLookupByName) and raises NotFound with a
sentence that names the object and its host.
"""

from __future__ import annotations

import libvirt

from vmdash.virt import tagcache
from vmdash.virt.connection import pool
from vmdash.virt.domains import lookup
from vmdash.virt.errors import NotFound
from vmdash.virt.refs import DomainRef, HostRef, NetworkRef, PoolRef, VolumeRef


def domain_ref(host: HostRef, name: str) -> DomainRef:
    """The VM's ref with the UUID libvirt gives and its tags (remembered, else
    virDomainGetMetadata); NotFound."""

    def read(conn: libvirt.virConnect) -> DomainRef:
        dom = lookup(conn, host, name)
        tags = tagcache.tags_of(conn, host.slug, dom)
        return DomainRef(host.slug, dom.name(), dom.UUIDString(), tags)

    return pool().call(host.uri, read, f"Cannot find VM '{name}'")


def _missing(err: libvirt.libvirtError, code: int, what: str) -> NotFound | None:
    return NotFound(what) if err.get_error_code() == code else None


def pool_ref(host: HostRef, name: str) -> PoolRef:
    """The storage pool's ref with its UUID; NotFound."""

    def read(conn: libvirt.virConnect) -> PoolRef:
        try:
            found = conn.storagePoolLookupByName(name)
        except libvirt.libvirtError as err:
            gone = _missing(err, libvirt.VIR_ERR_NO_STORAGE_POOL, _no("pool", name, host))
            raise gone or err from None
        return PoolRef(host.slug, found.name(), found.UUIDString())

    return pool().call(host.uri, read, f"Cannot find pool '{name}'")


def volume_ref(host: HostRef, pool_name: str, name: str) -> VolumeRef:
    """The volume's ref with its key (usually its path); NotFound for pool or volume."""

    def read(conn: libvirt.virConnect) -> VolumeRef:
        try:
            found = conn.storagePoolLookupByName(pool_name).storageVolLookupByName(name)
        except libvirt.libvirtError as err:
            gone = _missing(
                err, libvirt.VIR_ERR_NO_STORAGE_POOL, _no("pool", pool_name, host)
            ) or _missing(err, libvirt.VIR_ERR_NO_STORAGE_VOL, _no("volume", name, host))
            raise gone or err from None
        return VolumeRef(host.slug, pool_name, found.name(), found.key())

    return pool().call(host.uri, read, f"Cannot find volume '{name}'")


def network_ref(host: HostRef, name: str) -> NetworkRef:
    """The virtual network's ref with its UUID; NotFound."""

    def read(conn: libvirt.virConnect) -> NetworkRef:
        try:
            found = conn.networkLookupByName(name)
        except libvirt.libvirtError as err:
            gone = _missing(err, libvirt.VIR_ERR_NO_NETWORK, _no("network", name, host))
            raise gone or err from None
        return NetworkRef(host.slug, found.name(), found.UUIDString())

    return pool().call(host.uri, read, f"Cannot find network '{name}'")


def _no(kind: str, name: str, host: HostRef) -> str:
    return f"There is no {kind} '{name}' on host '{host.label}'."
