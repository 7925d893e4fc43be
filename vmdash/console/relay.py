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
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import socket
import sys
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

from websockify.token_plugins import BasePlugin
from websockify.websocketproxy import ProxyRequestHandler, WebSocketProxy

from vmdash.console.rfb import RfbError, ViewOnlyFilter, handshake

log = logging.getLogger("vmdash.console.relay")
_TOKEN = re.compile(r"token=[^&\s'\"]*")
HEARTBEAT_SECONDS = 30  # WebSocket pings keep idle consoles open through reverse proxies


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

    def new_websocket_client(self) -> None:
        reason = "the browser disconnected"
        try:
            super().new_websocket_client()
        except self.CClose as close:
            said = str(close.args[1]) if len(close.args) > 1 and close.args[1] else ""
            if said == "Target closed":
                reason = "the VM's display closed"
            elif said and said != "No close status code specified by peer":
                reason = said
            raise
        except Exception as err:
            reason = f"failed: {err}"
            raise
        finally:
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
        super().do_proxy(target)

    def recv_frames(self) -> tuple[list[bytes], Any]:
        bufs, closed = super().recv_frames()
        if self.view_filter is not None:
            try:
                bufs = [kept for kept in map(self.view_filter.feed, bufs) if kept]
            except RfbError as err:
                self.log_message("closing view-only connection: %s", err)
                raise self.CClose(1008, "input is not allowed on a view-only console") from None
        return bufs, closed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6080)
    parser.add_argument("--desk", required=True, help="the ticket desk's Unix socket")
    parser.add_argument("--cert", default="", help="PEM with certificate and key: serve wss://")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    server = WebSocketProxy(
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
