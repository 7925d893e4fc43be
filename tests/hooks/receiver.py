"""A real HTTP receiver for webhook tests: http.server in a thread.

It answers each POST with the next status of its script (then 200) and keeps
what it got: headers, body and when, in order."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from vmdash.hooks.sender import verify


@dataclass(frozen=True)
class Got:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signed_by(self, secret: str) -> bool:
        return verify(secret, self.body, self.headers.get("X-Vmdash-Signature", ""))


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    script: list[int] = field(default_factory=list)
    got: list[Got] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def answer(self, *statuses: int) -> None:
        with self.lock:
            self.script[:] = list(statuses)

    def wait_for(self, n: int, timeout: float = 10) -> list[Got]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.got) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the receiver got {len(self.got)} of {n} posts")
                self.arrived.wait(left)
            return list(self.got)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if receiver.delay:
                time.sleep(receiver.delay)
            with receiver.lock:
                status = receiver.script.pop(0) if receiver.script else 200
            answer = f"answered {status}".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            with receiver.arrived:
                got = Got(self.path, dict(self.headers.items()), body, time.monotonic(), status)
                receiver.got.append(got)
                receiver.arrived.notify_all()

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    made = Receiver(server)
    server.RequestHandlerClass = _handler(made)
    thread = threading.Thread(target=server.serve_forever, name="hook-receiver", daemon=True)
    thread.start()
    yield made
    server.shutdown()
    server.server_close()
    thread.join(5)
