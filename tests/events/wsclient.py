"""A small WebSocket client (RFC 6455 text frames) and a login helper, for
tests and benchmarks that talk to a real vmdash server over loopback."""

from __future__ import annotations

import asyncio
import base64
import http.cookiejar
import json
import os
import re
import struct
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field


def login_cookies(base_url: str, username: str, password: str) -> dict[str, str]:
    """Log in through the login form; the cookies (sessionid, csrftoken)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base_url}/accounts/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    data = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
    ).encode()
    request = urllib.request.Request(
        f"{base_url}/accounts/login/", data=data, headers={"Referer": f"{base_url}/"}
    )
    opener.open(request, timeout=10).read()
    cookies = {c.name: c.value for c in jar}
    assert "sessionid" in cookies, "login failed"
    return cookies


@dataclass
class Frame:
    text: str
    at: float  # time.time() when it arrived


@dataclass
class WsClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    frames: list[Frame] = field(default_factory=list)
    close_code: int | None = None

    @classmethod
    async def connect(
        cls, base_url: str, cookies: dict[str, str] | None = None, path: str = "/ws/events/"
    ) -> WsClient:
        url = urllib.parse.urlsplit(base_url)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        reader, writer = await asyncio.open_connection(host, port, limit=2**22)
        key = base64.b64encode(os.urandom(16)).decode()
        cookie = "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {base_url}\r\n"
            + (f"Cookie: {cookie}\r\n" if cookie else "")
            + "\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        status = await reader.readuntil(b"\r\n\r\n")
        first_line = status.split(b"\r\n", 1)[0]
        if b" 101 " not in first_line:
            writer.close()
            raise ConnectionError(f"handshake refused: {first_line!r}")
        return cls(reader, writer)

    async def send_json(self, value: object) -> None:
        await self._send(0x1, json.dumps(value).encode())

    async def subscribe(self, regions: list[dict[str, str]], **extra: object) -> None:
        await self.send_json({"type": "subscribe", "regions": regions, "query": "", **extra})

    async def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 2**16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)
        await self.writer.drain()

    async def receive(self, timeout: float = 10.0) -> Frame | None:
        """The next text frame; None when the server closed (see close_code)."""
        message = b""
        while True:
            head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await self.reader.readexactly(n)
            if opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 0
                # Answer as a browser does (RFC 6455 §5.5.1): a server whose
                # close goes unanswered drops the connection with a reset.
                try:
                    await self._send(0x8, payload[:2])
                except (ConnectionError, RuntimeError):
                    pass
                return None
            if opcode == 0x9:
                await self._send(0xA, payload)
                continue
            message += payload
            if head[0] & 0x80:
                frame = Frame(message.decode(), time.time())
                self.frames.append(frame)
                return frame

    async def receive_until(self, predicate: object, timeout: float = 15.0) -> Frame:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching frame")
            frame = await self.receive(left)
            if frame is None:
                raise ConnectionError(f"closed with {self.close_code}")
            if predicate(frame.text):  # type: ignore[operator]
                return frame

    async def drain(self, quiet: float = 0.5) -> list[Frame]:
        """Every frame until none came for `quiet` seconds."""
        got = []
        while True:
            try:
                frame = await self.receive(quiet)
            except TimeoutError:
                return got
            if frame is None:
                return got
            got.append(frame)

    async def close(self) -> None:
        try:
            await self._send(0x8, struct.pack("!H", 1000))
        except (ConnectionError, RuntimeError):
            pass
        self.writer.close()


EVENT_ID = re.compile(r"<!-- vmdash-live (\S+) -->")


def event_id(text: str) -> str:
    found = EVENT_ID.search(text)
    return found.group(1) if found else ""
