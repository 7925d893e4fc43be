"""Plain references that name libvirt objects across the boundary.

Every ref says its kind, its host and its name; a DomainRef that came
through the door (vmdash/door.py) also carries the UUID libvirt gave, so
that grants and audit entries survive a rename.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class HostRef:
    """A hypervisor as the database knows it: its slug and its libvirt URI."""

    kind: ClassVar[str] = "host"
    slug: str
    uri: str
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.slug

    @property
    def host(self) -> str:
        return self.slug


@dataclass(frozen=True)
class DomainRef:
    """A VM: by name within its host (unique there), and by UUID.

    `tags` are the VM's vmdash tags (its <metadata>) for grants on a tag;
    None when whoever made the ref did not read them: then no tag grant gives
    anything on it, and a "No access" on any tag refuses it (vmdash/policy.py).
    Two refs of the same VM are equal whatever tags they carry.
    """

    kind: ClassVar[str] = "vm"
    host: str
    name: str
    uuid: str = ""
    tags: frozenset[str] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PoolRef:
    """A storage pool: by name within its host, and by UUID."""

    kind: ClassVar[str] = "pool"
    host: str
    name: str
    uuid: str = ""


@dataclass(frozen=True)
class VolumeRef:
    """A storage volume: by name within its pool (libvirt's key, usually its path, kept)."""

    kind: ClassVar[str] = "volume"
    host: str
    pool: str
    name: str
    key: str = ""

    @property
    def uuid(self) -> str:
        return ""

    @property
    def pool_ref(self) -> PoolRef:
        return PoolRef(self.host, self.pool)


@dataclass(frozen=True)
class NetworkRef:
    """A virtual network: by name within its host, and by UUID."""

    kind: ClassVar[str] = "network"
    host: str
    name: str
    uuid: str = ""


ObjectRef = DomainRef | PoolRef | VolumeRef | NetworkRef
