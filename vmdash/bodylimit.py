"""Refuse an over-long request body before it is read, not after it was buffered.

Django reads a whole body before a view runs (and before a login is checked),
so a 200 MiB POST to the login page would be kept first and refused after.
This ASGI wrapper answers 413 from the headers when Content-Length is too
large, and stops reading a body sent without one once it passes the limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]


class TooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = int(settings.VMDASH_MAX_BODY)
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > limit:
            await _refuse(send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except TooLarge:
            await _refuse(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = f"Request body too large (more than {limit} bytes).\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def limit_daphne(limit: int) -> None:
    """Make Daphne refuse an over-long body while it arrives.

    Daphne (through Twisted) buffers a whole request body before the ASGI
    application is called, so BodyLimit alone would answer only after 200 MiB
    were kept. Twisted tells the request its length from the headers
    (gotLength) and hands it each chunk (handleContentChunk): past `limit` we
    answer 413 and close the connection there. Daphne builds its requests
    from the module-level name `WebRequest`, so a subclass put there is used.
    """
    from daphne import http_protocol

    base = http_protocol.WebRequest
    if getattr(base, "vmdash_limit", None) is not None:
        base.vmdash_limit = limit
        return

    class LimitedWebRequest(base):  # type: ignore[misc, valid-type]
        vmdash_limit = limit
        vmdash_refused = False
        vmdash_seen = 0

        def gotLength(self, length: int | None) -> None:
            if length is not None and length > self.vmdash_limit:
                super().gotLength(0)
                self._vmdash_refuse()
                return
            super().gotLength(length)

        def handleContentChunk(self, data: bytes) -> None:
            if self.vmdash_refused:
                return
            self.vmdash_seen += len(data)
            if self.vmdash_seen > self.vmdash_limit:
                self._vmdash_refuse()
                return
            super().handleContentChunk(data)

        def _vmdash_refuse(self) -> None:
            self.vmdash_refused = True
            body = f"Request body too large (more than {self.vmdash_limit} bytes).\n".encode()
            head = (
                "HTTP/1.1 413 Request Entity Too Large\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            self.channel.transport.write(head + body)
            self.channel.transport.loseConnection()

    http_protocol.WebRequest = LimitedWebRequest
