"""A small blocking WebSocket client for tests and benchmarks (RFC 6455, binary frames).

It exists so that a test can send exactly the headers it means (a session
cookie or none), see the HTTP status of a refused handshake, and read RFB
bytes without a browser. Loopback only.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
from urllib.parse import urlsplit


class Refused(Exception):
    """The server answered the upgrade with something other than 101."""

    def __init__(self, status: int, head: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.head = head


class Closed(Exception):
    """The server closed the WebSocket (close frame or EOF)."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"closed {code} {reason}")
        self.code = code
        self.reason = reason


class WebSocket:
    def __init__(self, url: str, *, cookie: str = "", timeout: float = 10) -> None:
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        assert host in ("127.0.0.1", "localhost", "::1"), "tests connect to loopback only"
        port = parts.port or 80
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: binary",
            f"Origin: http://{parts.netloc}",
        ]
        if cookie:
            lines.append(f"Cookie: {cookie}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = bytearray()
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Refused(0, bytes(self.buf))
            self.buf += chunk
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            self.sock.close()
            raise Refused(status, head)
        self.data = bytearray()  # payload bytes received, not yet read

    def _fill(self, need: int) -> None:
        while len(self.buf) < need:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise Closed(None, "EOF")
            self.buf += chunk

    def recv_frame(self) -> bytes:
        """One data frame's payload (pings are answered, close raises Closed)."""
        while True:
            self._fill(2)
            b0, b1 = self.buf[0], self.buf[1]
            opcode, length, pos = b0 & 0x0F, b1 & 0x7F, 2
            if length == 126:
                self._fill(4)
                length, pos = struct.unpack_from(">H", self.buf, 2)[0], 4
            elif length == 127:
                self._fill(10)
                length, pos = struct.unpack_from(">Q", self.buf, 2)[0], 10
            if b1 & 0x80:
                pos += 4  # servers do not mask, but be tolerant
            self._fill(pos + length)
            payload = bytes(self.buf[pos : pos + length])
            del self.buf[: pos + length]
            if opcode == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(code, payload[2:].decode(errors="replace"))
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            return payload

    def recv_exact(self, n: int) -> bytes:
        while len(self.data) < n:
            self.data += self.recv_frame()
        out = bytes(self.data[:n])
        del self.data[:n]
        return out

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack(">BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send(self, payload: bytes) -> None:
        self._send(0x2, payload)

    def close(self) -> None:
        try:
            self._send(0x8, struct.pack(">H", 1000))
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
