"""The proxy's RFB handling, against scripted peers: VNC auth on the server's
behalf, forced sharing and dropped input for view-only clients."""

from __future__ import annotations

import struct

import pytest

from vmdash.console.rfb import ENC_EXTENDED_MOUSE_BUTTONS, RfbError, ViewOnlyFilter, handshake
from vmdash.console.vncauth import vnc_auth_response


class Peer:
    """One side of the conversation: bytes it will send, bytes it received."""

    def __init__(self, *chunks: bytes) -> None:
        self.incoming = bytearray(b"".join(chunks))
        self.got = bytearray()

    def read(self, n: int) -> bytes:
        if len(self.incoming) < n:
            raise RfbError("peer closed")
        data = bytes(self.incoming[:n])
        del self.incoming[:n]
        return data

    def write(self, data: bytes) -> None:
        self.got += data


V38 = b"RFB 003.008\n"


def answer(password: str):  # type: ignore[no-untyped-def]
    return lambda challenge: vnc_auth_response(password, challenge)


def test_vnc_auth_is_des_with_the_bit_reversed_password_as_key() -> None:
    # Key for "password": 0e 86 ce ce ee f6 4e 26. Known answer from
    # `openssl enc -des-ecb -K 0e86ceceeef64e26 -nopad` on 16 zero bytes.
    assert vnc_auth_response("password", bytes(16)).hex() == "ff97502e9422f089" * 2


def test_vnc_auth_uses_the_first_eight_characters_only() -> None:
    challenge = bytes(range(16))
    assert vnc_auth_response("password-and-more", challenge) == vnc_auth_response(
        "password", challenge
    )
    assert vnc_auth_response("secret", challenge) != vnc_auth_response("secreT", challenge)


def test_it_logs_in_with_the_password_and_offers_the_browser_no_auth() -> None:
    server = Peer(V38, bytes([1, 2]), b"C" * 16, struct.pack(">I", 0))
    client = Peer(V38, b"\x01", b"\x00")
    handshake(client, server, authenticate=answer("password"), view_only=False)
    assert bytes(client.got) == V38 + bytes([1, 1]) + struct.pack(">I", 0)
    assert bytes(server.got) == (V38 + b"\x02" + vnc_auth_response("password", b"C" * 16) + b"\x00")


def test_a_wrong_password_is_reported_to_the_browser() -> None:
    reason = b"Authentication failed"
    server = Peer(V38, bytes([1, 2]), b"C" * 16, struct.pack(">II", 1, len(reason)), reason)
    client = Peer(V38, b"\x01")
    with pytest.raises(RfbError, match="refused the password"):
        handshake(client, server, authenticate=answer("wrong"), view_only=False)
    assert client.got.endswith(struct.pack(">II", 1, len(reason)) + reason)


def test_view_only_always_asks_for_a_shared_session() -> None:
    server = Peer(V38, bytes([1, 1]), struct.pack(">I", 0))
    client = Peer(V38, b"\x01", b"\x00")  # the client asks for exclusive access
    handshake(client, server, authenticate=None, view_only=True)
    assert server.got.endswith(b"\x01")


def test_it_refuses_servers_it_cannot_log_in_to() -> None:
    server = Peer(V38, bytes([1, 19]))  # VeNCrypt only
    client = Peer(V38)
    with pytest.raises(RfbError, match="no usable security type"):
        handshake(client, server, authenticate=None, view_only=False)
    assert client.got.startswith(V38 + b"\x00")


def key_event(down: int, keysym: int) -> bytes:
    return struct.pack(">BBxxI", 4, down, keysym)


def test_view_only_drops_keys_pointer_clipboard_resize_and_power() -> None:
    keep = [
        struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0),
        struct.pack(">BxHii", 2, 2, 7, -223),
        struct.pack(">BBHHHH", 3, 1, 0, 0, 720, 400),
        struct.pack(">BBHHHH", 150, 1, 0, 0, 720, 400),
        struct.pack(">BxxxIB", 248, 0, 3) + b"abc",
    ]
    drop = [
        key_event(1, 0x61),
        struct.pack(">BBHH", 5, 1, 10, 10),
        struct.pack(">BxxxI", 6, 5) + b"hello",
        struct.pack(">BxxxiI", 6, -8, 0x1) + b"\0\0\0\0",
        struct.pack(">BxBB", 250, 1, 4),
        struct.pack(">BxHHBx", 251, 800, 600, 1) + bytes(16),
        struct.pack(">BBHII", 255, 0, 1, 0x61, 0x1E),
    ]
    stream = b"".join(m for pair in zip(drop, keep + [b""] * 2, strict=False) for m in pair)
    out = ViewOnlyFilter()
    forwarded = b"".join(out.feed(stream[i : i + 3]) for i in range(0, len(stream), 3))
    assert forwarded == b"".join(keep)


def test_view_only_strips_the_extended_pointer_encoding() -> None:
    msg = struct.pack(">BxHiii", 2, 3, 7, ENC_EXTENDED_MOUSE_BUTTONS, 0)
    assert ViewOnlyFilter().feed(msg) == struct.pack(">BxHii", 2, 2, 7, 0)


def test_view_only_closes_on_an_unknown_message() -> None:
    with pytest.raises(RfbError, match="unknown message type 99"):
        ViewOnlyFilter().feed(bytes([99, 0, 0, 0]))
