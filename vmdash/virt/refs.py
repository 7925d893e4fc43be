"""Plain references that name libvirt objects across the boundary.

Every ref says its kind, its host and its name; a DomainRef that came
through the door (vmdash/door.py) also carries the UUID libvirt gave, so
that grants and audit entries survive a rename.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """A VM: by name within its host (unique there), and by UUID."""

    kind: ClassVar[str] = "vm"
    host: str
    name: str
    uuid: str = ""
