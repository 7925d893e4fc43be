"""Just enough of an RFB client to tell which VM answered and to type into it."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tests.console.wsclient import WebSocket

XK_SHIFT_L = 0xFFE1
XK_RETURN = 0xFF0D
# Characters that need Shift on the US layout QEMU uses by default.
SHIFTED = set('ABCDEFGHIJKLMNOPQRSTUVWXYZ~!@#$%^&*()_+{}|:"<>?')


@dataclass
class Desktop:
    width: int
    height: int
    name: str


def init(ws: WebSocket, *, shared: bool = True) -> Desktop:
    """Version, security None, ClientInit; return the ServerInit."""
    version = ws.recv_exact(12)
    assert version.startswith(b"RFB 003."), version
    ws.send(b"RFB 003.008\n")
    count = ws.recv_exact(1)[0]
    assert count > 0, ws.recv_exact(4)
    types = ws.recv_exact(count)
    assert 1 in types, f"security types {list(types)} without None"
    ws.send(b"\x01")
    assert ws.recv_exact(4) == b"\0\0\0\0"
    ws.send(b"\x01" if shared else b"\x00")
    width, height = struct.unpack(">HH", ws.recv_exact(4))
    ws.recv_exact(16)  # pixel format
    (length,) = struct.unpack(">I", ws.recv_exact(4))
    return Desktop(width, height, ws.recv_exact(length).decode())


def key(ws: WebSocket, keysym: int, down: bool) -> None:
    ws.send(struct.pack(">BBxxI", 4, int(down), keysym))


def type_text(ws: WebSocket, text: str) -> None:
    for ch in text:
        keysym = XK_RETURN if ch == "\n" else ord(ch)
        shift = ch in SHIFTED
        if shift:
            key(ws, XK_SHIFT_L, True)
        key(ws, keysym, True)
        key(ws, keysym, False)
        if shift:
            key(ws, XK_SHIFT_L, False)
