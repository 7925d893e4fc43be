"""The bits of RFB (the VNC protocol, RFC 6143) the console proxy needs to understand.

Most connections are passed through untouched. Two are not:

* the VM has a VNC password: the proxy offers the browser "no
  authentication" and has the server's VNC-auth challenge answered by the
  ticket desk (vncauth.py), so the password never leaves the Django process;
* the ticket is view-only: the proxy forces a shared session and drops every
  client message that would act on the VM (keys, pointer, clipboard, display
  resize, power operations). Unknown messages close the connection, so a
  modified client cannot slip input through.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import Protocol

SEC_NONE = 1
SEC_VNC_AUTH = 2
# Pseudo-encoding that makes PointerEvent one byte longer; stripped for view-only
# clients so that every PointerEvent has the same length.
ENC_EXTENDED_MOUSE_BUTTONS = -316

_VERSION = re.compile(rb"RFB (\d{3})\.(\d{3})\n")


class RfbError(Exception):
    """The conversation cannot go on; `str()` is for the proxy log."""


class Channel(Protocol):
    def read(self, n: int) -> bytes:
        """Exactly `n` bytes; RfbError if the peer closed first."""
        ...

    def write(self, data: bytes) -> None: ...


def _version(data: bytes) -> tuple[int, int]:
    match = _VERSION.fullmatch(data)
    if match is None:
        raise RfbError(f"not an RFB version string: {data[:12]!r}")
    return int(match.group(1)), int(match.group(2))


def _read_reason(server: Channel) -> bytes:
    (length,) = struct.unpack(">I", server.read(4))
    return server.read(min(length, 4096))


def handshake(
    client: Channel,
    server: Channel,
    *,
    authenticate: Callable[[bytes], bytes] | None,
    view_only: bool,
) -> None:
    """Carry the RFB handshake up to ClientInit, authenticating to the server ourselves.

    The browser is offered security type None only. When the server wants VNC
    authentication, `authenticate(challenge)` gives the response (None: no
    password is known). A view-only client's ClientInit always asks for a
    shared session, so it cannot disconnect others.
    """
    server_version = server.read(12)
    major, minor = _version(server_version)
    if major != 3 or minor < 7:
        raise RfbError(f"VNC server speaks RFB {major}.{minor}; the proxy needs 3.7 or later")
    client.write(server_version)
    client_version = client.read(12)
    cmajor, cminor = _version(client_version)
    if cmajor != 3 or cminor < 7:
        raise RfbError(f"browser speaks RFB {cmajor}.{cminor}; the proxy needs 3.7 or later")
    minor = min(minor, cminor)
    server.write(b"RFB 003.%03d\n" % minor)

    count = server.read(1)[0]
    if count == 0:
        reason = _read_reason(server)
        client.write(b"\x00" + struct.pack(">I", len(reason)) + reason)
        raise RfbError(f"VNC server refused: {reason.decode(errors='replace')}")
    offered = set(server.read(count))
    if authenticate is not None and SEC_VNC_AUTH in offered:
        chosen = SEC_VNC_AUTH
    elif SEC_NONE in offered:
        chosen = SEC_NONE
    else:
        why = b"the console proxy cannot log in to this VNC server (unsupported security)"
        client.write(b"\x00" + struct.pack(">I", len(why)) + why)
        raise RfbError(f"no usable security type among {sorted(offered)}")

    client.write(bytes([1, SEC_NONE]))
    if client.read(1)[0] != SEC_NONE:
        raise RfbError("browser chose a security type that was not offered")
    server.write(bytes([chosen]))
    if chosen == SEC_VNC_AUTH:
        assert authenticate is not None
        server.write(authenticate(server.read(16)))
    if chosen == SEC_VNC_AUTH or minor >= 8:
        (result,) = struct.unpack(">I", server.read(4))
        if result != 0:
            reason = _read_reason(server) if minor >= 8 else b"authentication failed"
            if minor >= 8:
                client.write(struct.pack(">II", 1, len(reason)) + reason)
            raise RfbError(f"VNC server refused the password: {reason.decode(errors='replace')}")
    if minor >= 8:
        client.write(struct.pack(">I", 0))
    shared = client.read(1)
    server.write(b"\x01" if view_only else shared)


class ViewOnlyFilter:
    """Client-to-server messages of a view-only client, minus everything that acts.

    Feed it the client's bytes as they come; it returns the bytes to forward.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while self._buf:
            length, keep = self._next()
            if length is None or len(self._buf) < length:
                break
            message = bytes(self._buf[:length])
            del self._buf[:length]
            if keep:
                out += self._clean(message)
        return bytes(out)

    def _need(self, n: int) -> bool:
        return len(self._buf) >= n

    def _next(self) -> tuple[int | None, bool]:
        """(length of the next message or None if incomplete, whether to forward it)."""
        buf = self._buf
        kind = buf[0]
        if kind == 0:  # SetPixelFormat
            return 20, True
        if kind == 2:  # SetEncodings
            if not self._need(4):
                return None, True
            return 4 + 4 * struct.unpack_from(">H", buf, 2)[0], True
        if kind == 3:  # FramebufferUpdateRequest
            return 10, True
        if kind == 4:  # KeyEvent
            return 8, False
        if kind == 5:  # PointerEvent (extended form disabled in SetEncodings)
            return 6, False
        if kind == 6:  # ClientCutText (negative length: extended clipboard)
            if not self._need(8):
                return None, False
            return 8 + abs(struct.unpack_from(">i", buf, 4)[0]), False
        if kind == 150:  # EnableContinuousUpdates
            return 10, True
        if kind == 248:  # ClientFence
            if not self._need(9):
                return None, True
            return 9 + buf[8], True
        if kind == 250:  # xvp: shutdown, reboot, reset
            return 4, False
        if kind == 251:  # SetDesktopSize
            if not self._need(8):
                return None, False
            return 8 + 16 * buf[6], False
        if kind == 255:  # QEMU client messages
            if not self._need(2):
                return None, False
            if buf[1] == 0:  # extended key event
                return 12, False
            if buf[1] == 1:  # audio
                if not self._need(4):
                    return None, True
                operation = struct.unpack_from(">H", buf, 2)[0]
                return (10 if operation == 2 else 4), True
        raise RfbError(f"view-only client sent an unknown message type {kind}")

    def _clean(self, message: bytes) -> bytes:
        if message[0] != 2:
            return message
        encodings = struct.unpack_from(f">{(len(message) - 4) // 4}i", message, 4)
        kept = [e for e in encodings if e != ENC_EXTENDED_MOUSE_BUTTONS]
        return struct.pack(f">BxH{len(kept)}i", 2, len(kept), *kept)
