"""The only package that imports libvirt. See DESIGN.md."""

from vmdash.virt.enums import DomainState
from vmdash.virt.errors import (
    HostUnavailable,
    InvalidInput,
    InvalidState,
    NotFound,
    OperationFailed,
    VirtError,
)
from vmdash.virt.refs import DomainRef, HostRef

__all__ = [
    "DomainRef",
    "DomainState",
    "HostRef",
    "HostUnavailable",
    "InvalidInput",
    "InvalidState",
    "NotFound",
    "OperationFailed",
    "VirtError",
]
