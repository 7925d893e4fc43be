"""Plain references that name libvirt objects across the boundary."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostRef:
    """A hypervisor as the database knows it: its slug and its libvirt URI."""

    slug: str
    uri: str
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.slug


@dataclass(frozen=True)
class DomainRef:
    """A VM: by name within its host (unique there), UUID kept for audit."""

    host: str
    name: str
    uuid: str = ""
