"""libvirt errors, sorted by error code into the few kinds a page must tell apart.

Everything above this package catches `VirtError` (or one of its kinds) and
shows `str(err)`, which is written for a person: what failed, on what, why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import libvirt

_O = TypeVar("_O")
_R = TypeVar("_R")


class VirtError(Exception):
    """A hypervisor said no or could not be asked. `str()` is for the page."""

    status = 502

    def __init__(self, message: str, *, code: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.detail = detail


class NotFound(VirtError):
    """The VM, network, pool or volume does not exist (any more)."""

    status = 404


class HostUnavailable(VirtError):
    """The host cannot be reached: libvirtd down, network, auth, bad URI."""

    status = 503


class InvalidState(VirtError):
    """The object exists but the operation is not valid in its current state."""

    status = 409


class InvalidInput(VirtError):
    """What we were asked to do is malformed (bad XML, bad name, bad value)."""

    status = 400


class OperationFailed(VirtError):
    """The hypervisor tried and failed."""

    status = 502


_NOT_FOUND = {
    libvirt.VIR_ERR_NO_DOMAIN,
    libvirt.VIR_ERR_NO_NETWORK,
    libvirt.VIR_ERR_NO_STORAGE_POOL,
    libvirt.VIR_ERR_NO_STORAGE_VOL,
    libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT,
    libvirt.VIR_ERR_NO_INTERFACE,
}
_UNAVAILABLE = {
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_SYSTEM_ERROR,
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_AUTH_FAILED,
    libvirt.VIR_ERR_AUTH_CANCELLED,
    libvirt.VIR_ERR_AUTH_UNAVAILABLE,
    libvirt.VIR_ERR_INVALID_CONN,
}
_INVALID_STATE = {
    libvirt.VIR_ERR_OPERATION_INVALID,
    libvirt.VIR_ERR_OPERATION_DENIED,
    libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE,
    libvirt.VIR_ERR_NO_SUPPORT,
}
_INVALID_INPUT = {
    libvirt.VIR_ERR_XML_ERROR,
    libvirt.VIR_ERR_XML_DETAIL,
    libvirt.VIR_ERR_XML_INVALID_SCHEMA,
    libvirt.VIR_ERR_INVALID_ARG,
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
    libvirt.VIR_ERR_DOM_EXIST,
    libvirt.VIR_ERR_NETWORK_EXIST,
    libvirt.VIR_ERR_STORAGE_POOL_BUILT,
    libvirt.VIR_ERR_STORAGE_VOL_EXIST,
}
# Errors after which the connection itself is suspect and must be reopened.
CONNECTION_LOST = {
    libvirt.VIR_ERR_SYSTEM_ERROR,
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_NO_CONNECT,
}


def still_there(objects: Iterable[_O], read: Callable[[_O], _R], gone: int) -> list[_R]:
    """read(o) for each listed object, leaving out those deleted since the list was
    made (by another person, virsh, a test): one row going never spoils the list.
    `gone` is the listed kind's "no such" code: anything else still fails."""
    out = []
    for obj in objects:
        try:
            out.append(read(obj))
        except libvirt.libvirtError as err:
            if err.get_error_code() != gone:
                raise
    return out


def is_connection_lost(err: libvirt.libvirtError) -> bool:
    code = err.get_error_code()
    if code in CONNECTION_LOST:
        return True
    # A closed client socket is reported as an internal error by some calls.
    return code == libvirt.VIR_ERR_INTERNAL_ERROR and "client socket is closed" in str(err)


def translate(err: libvirt.libvirtError, doing: str) -> VirtError:
    """Turn a libvirtError into our kind, prefixed with what we were `doing`.

    `doing` reads as the start of a sentence, e.g. "Cannot start VM 'web1'".
    """
    code = err.get_error_code()
    text = (err.get_error_message() or str(err)).strip()
    message = f"{doing}: {text}" if doing else text
    kind: type[VirtError]
    if code in _NOT_FOUND:
        kind = NotFound
    elif code in _UNAVAILABLE or is_connection_lost(err):
        kind = HostUnavailable
    elif code in _INVALID_STATE:
        kind = InvalidState
    elif code in _INVALID_INPUT:
        kind = InvalidInput
    else:
        kind = OperationFailed
    return kind(message, code=code, detail=text)
