"""The console relay: websockify's WebSocketProxy with a token plugin that asks the ticket desk.

Run by `manage.py vmdash_console_proxy` as its own process:

    python -m vmdash.console.relay --listen 127.0.0.1 --port 6080 --desk PATH [--cert PEM]

This module imports websockify and the standard library only (no Django),
so that websockify's fork per connection stays as cheap as plain
websockify's. Everything that needs Django, the database or libvirt (the
ticket check, VNC passwords, presence, audit) happens in the desk (desk.py),
which each child asks over a Unix socket.

A refused ticket gets an HTTP 403 before any upgrade: nothing is proxied.
The target comes from the desk's answer alone, never from the request.

Unauthenticated connections are cheap: unlike plain websockify, which forks
a child for every TCP connection, the listener (`Relay.start_server`) keeps
new connections in one selector until their HTTP request has arrived, asks
the desk about the ticket itself, answers a refusal itself, and forks only
for a ticket the desk accepted. A connection that has not sent its request
within PREAUTH_SECONDS is closed. (With TLS the request is encrypted: the
listener forks once the client's first bytes arrive, and the child has
PREAUTH_SECONDS for the TLS handshake and the request.)

While a console is open its child listens to the desk: `{"op": "end"}` (the
person logged out, was deactivated or changed password) ends the connection
with close code 4001.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import logging
import multiprocessing
import re
import selectors
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

from websockify.token_plugins import BasePlugin
from websockify.websocketproxy import ProxyRequestHandler, WebSocketProxy

from vmdash.console.rfb import RfbError, ViewOnlyFilter, handshake

log = logging.getLogger("vmdash.console.relay")
_TOKEN = re.compile(r"token=[^&\s'\"]*")
HEARTBEAT_SECONDS = 30  # WebSocket pings keep idle consoles open through reverse proxies
PREAUTH_SECONDS = 5.0  # a connection must send its request (and ticket) this soon
MAX_PENDING = 1000  # connections waiting for their request; beyond, the oldest is dropped
MAX_HEAD = 16 * 1024  # a longer request head is not a console request
CLOSE_SESSION_ENDED = 4001


class DeskError(Exception):
    pass


class Desk:
    """One conversation with the ticket desk (one per console connection)."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except OSError as err:
            self.sock.close()
            raise DeskError(f"the ticket desk does not answer at {path}: {err}") from None
        self.buf = b""

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        self.tell(request)
        return self.receive()

    def receive(self) -> dict[str, Any]:
        """The desk's next message, unasked (it ends the connection with one)."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise DeskError("the ticket desk hung up")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def tell(self, request: dict[str, Any]) -> None:
        try:
            self.sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as err:
            raise DeskError(f"the ticket desk hung up: {err}") from None

    def close(self) -> None:
        self.sock.close()


class DeskPlugin(BasePlugin):  # type: ignore[misc]
    """websockify token plugin: a console ticket in, its VNC target out (asked of the desk)."""

    def __init__(self, src: str) -> None:
        super().__init__(src)  # src: the desk's socket path

    def redeem(
        self, token: str, *, cookie_header: str | None, remote_addr: str | None
    ) -> tuple[Desk, dict[str, Any]]:
        desk = Desk(self.source)
        try:
            answer = desk.ask(
                {"op": "redeem", "token": token, "cookie": cookie_header, "remote": remote_addr}
            )
        except (DeskError, ValueError):
            desk.close()
            raise
        return desk, answer

    def lookup(self, token: str) -> tuple[str, Any] | None:
        """websockify's plugin interface (no request context: no session cookie)."""
        try:
            desk, answer = self.redeem(token, cookie_header=None, remote_addr=None)
        except (DeskError, ValueError) as err:
            log.warning("console ticket not checked: %s", err)
            return None
        desk.close()
        if not answer.get("ok"):
            return None
        if answer.get("socket"):
            return ("unix_socket", answer["socket"])
        return (answer["host"], answer["port"])


class _Client:
    """Reads and writes the browser's side during the RFB handshake."""

    def __init__(self, handler: RelayHandler) -> None:
        self._handler = handler
        self._buf = bytearray()

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            bufs, closed = ProxyRequestHandler.recv_frames(self._handler)
            for buf in bufs:
                self._buf += buf
            if closed and len(self._buf) < n:
                raise RfbError("the browser closed the connection during the handshake")
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def write(self, data: bytes) -> None:
        pending = self._handler.send_frames([data])
        while pending:
            pending = self._handler.send_frames()

    def rest(self) -> bytes:
        data, self._buf = bytes(self._buf), bytearray()
        return data


class _Server:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def read(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise RfbError("the VNC server closed the connection during the handshake")
            data += chunk
        return bytes(data)

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)


class RelayHandler(ProxyRequestHandler):  # type: ignore[misc]
    """websockify's proxy handler, with the ticket checked by the desk before the upgrade."""

    desk: Desk | None = None
    grant: dict[str, Any] | None = None
    view_filter: ViewOnlyFilter | None = None

    def log_message(self, format: str, *args: Any) -> None:
        # websockify logs the request path; a ticket has no business in a log file.
        super().log_message("%s", _TOKEN.sub("token=(hidden)", format % args))

    def _token(self) -> str:
        values = parse_qs(urlsplit(self.path).query).get("token") or [""]
        return values[0].strip()

    def _refuse(self, status: int, why: str) -> NoReturn:
        self.log_message("console ticket refused: %s", why)
        self.send_error(
            status, "Console ticket refused" if status == 403 else "Console unavailable"
        )
        raise self.server.EClose("")

    def validate_connection(self) -> None:
        preauth = getattr(self.server, "preauth", None)
        if preauth is not None:  # the listener asked the desk before forking this child
            self.desk, answer = preauth
            self.server.preauth = None
        else:
            plugin: DeskPlugin = self.server.token_plugin
            try:
                self.desk, answer = plugin.redeem(
                    self._token(),
                    cookie_header=self.headers.get("Cookie"),
                    remote_addr=self.client_address[0] or None,
                )
            except (DeskError, ValueError) as err:
                self._refuse(503, f"cannot check it: {err}")
        if not answer.get("ok"):
            self._refuse(403, str(answer.get("reason")))
        self.grant = answer
        if answer.get("socket"):
            self.server.unix_target = answer["socket"]
        else:
            self.server.target_host = answer["host"]
            self.server.target_port = answer["port"]

    ended: str = ""  # set by the desk watcher: why the desk ended this connection
    closing = False

    def new_websocket_client(self) -> None:
        self.request.settimeout(None)  # the handshake's deadline is over
        reason = "the browser disconnected"
        try:
            super().new_websocket_client()
        except self.CClose as close:
            said = str(close.args[1]) if len(close.args) > 1 and close.args[1] else ""
            if self.ended:
                reason = self.ended
                raise self.CClose(CLOSE_SESSION_ENDED, "Your session ended.") from None
            if said == "Target closed":
                reason = "the VM's display closed"
            elif said and said != "No close status code specified by peer":
                reason = said
            raise
        except Exception as err:
            reason = f"failed: {err}"
            raise
        finally:
            self.closing = True
            if self.desk is not None:
                try:
                    self.desk.tell({"op": "close", "reason": reason})
                except DeskError:
                    pass
                self.desk.close()

    def _authenticate(self, challenge: bytes) -> bytes:
        assert self.desk is not None
        try:
            answer = self.desk.ask({"op": "auth", "challenge": challenge.hex()})
            return bytes.fromhex(answer["response"])
        except (DeskError, ValueError, KeyError) as err:
            raise RfbError(f"the ticket desk could not answer the VNC challenge: {err}") from None

    def do_proxy(self, target: socket.socket) -> None:
        grant = self.grant
        assert grant is not None
        if grant.get("auth") or grant.get("view_only"):
            client = _Client(self)
            try:
                handshake(
                    client,
                    _Server(target),
                    authenticate=self._authenticate if grant.get("auth") else None,
                    view_only=bool(grant.get("view_only")),
                )
                if grant.get("view_only"):
                    self.view_filter = ViewOnlyFilter()
                    early = self.view_filter.feed(client.rest())
                else:
                    early = client.rest()
            except RfbError as err:
                self.log_message("VNC handshake failed: %s", err)
                raise self.CClose(1011, f"VNC handshake failed: {err}") from None
            if early:
                target.sendall(early)
        if self.desk is not None:
            threading.Thread(target=self._watch_desk, args=(target,), daemon=True).start()
        super().do_proxy(target)

    def _watch_desk(self, target: socket.socket) -> None:
        """Wait for the desk to end this connection (or to go away), then end it.

        Shutting the target down makes websockify's loop stop; new_websocket_client
        then tells the browser why.
        """
        assert self.desk is not None
        try:
            answer = self.desk.receive()
            why = str(answer.get("reason") or "the ticket desk ended the connection")
        except (DeskError, ValueError, OSError):
            why = "the ticket desk stopped"
        if self.closing:
            return
        self.ended = why
        try:
            target.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def recv_frames(self) -> tuple[list[bytes], Any]:
        bufs, closed = super().recv_frames()
        if self.view_filter is not None:
            try:
                bufs = [kept for kept in map(self.view_filter.feed, bufs) if kept]
            except RfbError as err:
                self.log_message("closing view-only connection: %s", err)
                raise self.CClose(1008, "input is not allowed on a view-only console") from None
        return bufs, closed


@dataclass
class _Pending:
    """A connection that has not yet shown a ticket (held by the listener, no child)."""

    sock: socket.socket
    address: tuple[Any, ...]
    deadline: float
    seen: int = 0  # bytes of its request head that had arrived when last looked at


def _head(data: bytes) -> tuple[str, str | None] | None:
    """The ticket and Cookie header of a complete HTTP request head (None: not one)."""
    line, _, rest = data.partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or parts[0] != b"GET":
        return None
    headers = http.client.parse_headers(io.BytesIO(rest))
    values = parse_qs(urlsplit(parts[1].decode("latin-1")).query).get("token") or [""]
    return values[0].strip(), headers.get("Cookie")


def _answer(sock: socket.socket, status: int, reason: str) -> None:
    """A plain HTTP error from the listener, after reading the request (no RST)."""
    body = f"{status} {reason}\n".encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        sock.setblocking(True)
        sock.settimeout(1.0)
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class Relay(WebSocketProxy):  # type: ignore[misc]
    """websockify's proxy, with a listener that forks only for accepted tickets."""

    preauth: tuple[Desk, dict[str, Any]] | None = None

    def start_server(self) -> None:
        lsock = self.socket(self.listen_host, self.listen_port, False, self.prefer_ipv6)
        lsock.setblocking(False)
        self.started()
        signal.signal(signal.SIGINT, self.do_SIGINT)
        signal.signal(signal.SIGTERM, self.do_SIGTERM)
        signal.signal(signal.SIGCHLD, self.multiprocessing_SIGCHLD)
        self.selector = selectors.DefaultSelector()
        self.selector.register(lsock, selectors.EVENT_READ, None)
        self.lsock = lsock
        self.pending: dict[int, _Pending] = {}
        try:
            self._serve()
        except (self.Terminate, SystemExit, KeyboardInterrupt):
            for child in multiprocessing.active_children():
                child.terminate()
        finally:
            for p in list(self.pending.values()):
                self._forget(p)
            lsock.close()

    def _serve(self) -> None:
        while True:
            partial = any(p.seen for p in self.pending.values())
            for key, _events in self.selector.select(timeout=0.2 if partial else 1.0):
                if key.data is None:
                    self._accept()
                else:
                    self._look(key.data)
            now = time.monotonic()
            for p in list(self.pending.values()):
                if p.deadline < now:
                    self._forget(p)
                elif p.seen:
                    self._look(p)

    def _accept(self) -> None:
        while True:
            try:
                sock, address = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # e.g. out of file descriptors: drop the oldest waiter
                log.warning("console relay: accept failed: %s", err)
                if self.pending:
                    self._forget(next(iter(self.pending.values())))
                return
            sock.setblocking(False)
            p = _Pending(sock, address, time.monotonic() + PREAUTH_SECONDS)
            self.pending[sock.fileno()] = p
            self.selector.register(sock, selectors.EVENT_READ, p)
            if len(self.pending) > MAX_PENDING:
                self._forget(next(iter(self.pending.values())))

    def _forget(self, p: _Pending) -> None:
        self.pending.pop(p.sock.fileno(), None)
        if not p.seen:
            self.selector.unregister(p.sock)
        p.sock.close()

    def _look(self, p: _Pending) -> None:
        """Has the request arrived? Then check its ticket (or, for TLS, hand it to a child)."""
        try:
            data = p.sock.recv(MAX_HEAD, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data or (b"\r\n\r\n" not in data and len(data) >= MAX_HEAD):
            self._forget(p)
            return
        if data[0] in (22, 128):  # TLS: the child reads the request after the handshake
            self._hand_over(p, None)
            return
        end = data.find(b"\r\n\r\n")
        if end < 0:
            # Partial head: looked at again on each tick, not on each readable event.
            if not p.seen:
                self.selector.unregister(p.sock)
            p.seen = len(data)
            return
        self._check(p, data[: end + 4])

    def _check(self, p: _Pending, head: bytes) -> None:
        parsed = _head(head)
        if parsed is None:
            self._refuse_early(p, head, 400, "Not a console request")
            return
        token, cookie = parsed
        plugin: DeskPlugin = self.token_plugin
        try:
            desk, answer = plugin.redeem(token, cookie_header=cookie, remote_addr=p.address[0])
        except (DeskError, ValueError) as err:
            log.warning("console ticket not checked: %s", err)
            self._refuse_early(p, head, 503, "Console unavailable")
            return
        if not answer.get("ok"):
            log.info("%s: console ticket refused: %s", p.address[0], answer.get("reason"))
            desk.close()
            self._refuse_early(p, head, 403, "Console ticket refused")
            return
        self._hand_over(p, (desk, answer))

    def _refuse_early(self, p: _Pending, head: bytes, status: int, reason: str) -> None:
        self.pending.pop(p.sock.fileno(), None)
        if not p.seen:
            self.selector.unregister(p.sock)
        try:
            p.sock.recv(len(head))  # consume what we peeked, or close() would reset
        except OSError:
            pass
        _answer(p.sock, status, reason)
        p.sock.close()

    def _hand_over(self, p: _Pending, preauth: tuple[Desk, dict[str, Any]] | None) -> None:
        """Fork the child that serves this connection (websockify's handshake and proxy)."""
        self.pending.pop(p.sock.fileno(), None)
        if not p.seen:
            self.selector.unregister(p.sock)
        p.sock.setblocking(True)
        p.sock.settimeout(PREAUTH_SECONDS)  # until the upgrade (new_websocket_client)
        others = [o.sock for o in self.pending.values()]
        self.preauth = preauth
        try:
            child = multiprocessing.Process(
                target=self._child, args=(p.sock, p.address, others), daemon=False
            )
            child.start()
        finally:
            self.preauth = None
            if preauth is not None:
                preauth[0].close()  # the child holds its own copy
            p.sock.close()
        self.handler_id += 1

    def _child(self, sock: socket.socket, address: tuple[Any, ...], others: list[Any]) -> None:
        # A forked copy of another waiter's socket would keep it open past its deadline.
        for other in [*others, self.lsock]:
            other.close()
        self.selector.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.top_new_client(sock, address)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6080)
    parser.add_argument("--desk", required=True, help="the ticket desk's Unix socket")
    parser.add_argument("--cert", default="", help="PEM with certificate and key: serve wss://")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    multiprocessing.set_start_method("fork")  # children inherit the desk connection
    server = Relay(
        RequestHandlerClass=RelayHandler,
        listen_host=args.listen,
        listen_port=args.port,
        token_plugin=DeskPlugin(args.desk),
        heartbeat=HEARTBEAT_SECONDS,
        cert=args.cert or "/nonexistent/vmdash-console-proxy.pem",
    )
    server.start_server()


if __name__ == "__main__":
    main()
