"""The VNC console proxy: websockify's WebSocketProxy with our ticket plugin.

websockify forks a child per connection (multiprocessing, fork start method)
and runs the handler there. The parent set Django up and imported everything
once (see the vmdash_console_proxy command), so a child only verifies the
ticket (tickets.redeem: signature, one UPDATE, one libvirt check), connects,
and relays. Its session bookkeeping (presence row, audit entry) runs in a
thread beside the relay so that it does not delay the first frame.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.db import connections
from websockify.token_plugins import BasePlugin
from websockify.websocketproxy import ProxyRequestHandler

from vmdash.console import sessions, tickets
from vmdash.console.models import ConsoleSession
from vmdash.console.rfb import RfbError, ViewOnlyFilter, handshake

log = logging.getLogger(__name__)
_TOKEN = re.compile(r"token=[^&\s'\"]*")


class TicketPlugin(BasePlugin):  # type: ignore[misc]
    """websockify token plugin: a console ticket in, its VNC target out."""

    def __init__(self, src: str = "vmdash") -> None:
        super().__init__(src)

    def redeem(
        self, token: str, *, cookie_header: str | None, remote_addr: str | None
    ) -> tickets.Grant:
        return tickets.redeem(token, cookie_header=cookie_header, remote_addr=remote_addr)

    def lookup(self, token: str) -> tuple[str, Any] | None:
        """websockify's plugin interface (no request context: no session cookie)."""
        try:
            grant = self.redeem(token, cookie_header=None, remote_addr=None)
        except tickets.Refused as err:
            log.warning("console ticket refused: %s", err)
            return None
        if grant.target_socket:
            return ("unix_socket", grant.target_socket)
        return (grant.target_host, grant.target_port)


class _Client:
    """Reads and writes the browser's side during the RFB handshake."""

    def __init__(self, handler: TicketProxyHandler) -> None:
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


class TicketProxyHandler(ProxyRequestHandler):  # type: ignore[misc]
    """websockify's proxy handler, with the ticket checked before the upgrade.

    A refused ticket gets an HTTP 403 and nothing is proxied. The target comes
    from the ticket alone.
    """

    grant: tickets.Grant | None = None
    view_filter: ViewOnlyFilter | None = None
    _session: ConsoleSession | None = None
    _bookkeeping: threading.Thread | None = None

    def log_message(self, format: str, *args: Any) -> None:
        # websockify logs the request path; a ticket has no business in a log file.
        super().log_message("%s", _TOKEN.sub("token=(hidden)", format % args))

    def _token(self) -> str:
        values = parse_qs(urlsplit(self.path).query).get("token") or [""]
        return values[0].strip()

    def validate_connection(self) -> None:
        plugin: TicketPlugin = self.server.token_plugin
        try:
            grant = plugin.redeem(
                self._token(),
                cookie_header=self.headers.get("Cookie"),
                remote_addr=self.client_address[0] or None,
            )
        except tickets.Refused as err:
            self.log_message("console ticket refused: %s", err)
            self.send_error(403, "Console ticket refused")
            raise self.server.EClose("") from None
        self.grant = grant
        if grant.target_socket:
            self.server.unix_target = grant.target_socket
        else:
            self.server.target_host = grant.target_host
            self.server.target_port = grant.target_port

    def new_websocket_client(self) -> None:
        self._bookkeeping = threading.Thread(target=self._open_session, daemon=True)
        self._bookkeeping.start()
        reason = "closed"
        try:
            super().new_websocket_client()
        except self.CClose as close:
            said = str(close.args[1]) if len(close.args) > 1 and close.args[1] else ""
            reason = {"Target closed": "the VM's display closed"}.get(
                said, said or "the browser disconnected"
            )
            raise
        except Exception as err:
            reason = f"failed: {err}"
            raise
        finally:
            self._close_session(reason)

    def do_proxy(self, target: socket.socket) -> None:
        grant = self.grant
        assert grant is not None
        if grant.password or grant.view_only:
            client = _Client(self)
            try:
                handshake(
                    client, _Server(target), password=grant.password, view_only=grant.view_only
                )
                if grant.view_only:
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

    def send_ping(self, data: bytes = b"") -> None:
        super().send_ping(data)
        if self._session is not None:
            sessions.touch(self._session)

    def _open_session(self) -> None:
        grant = self.grant
        assert grant is not None
        try:
            self._session = sessions.open_session(
                kind=ConsoleSession.Kind.GRAPHICAL,
                user=None,
                user_id=grant.user_id,
                username=grant.username,
                host=grant.host,
                vm_name=grant.vm_name,
                vm_uuid=grant.vm_uuid,
                view_only=grant.view_only,
                remote_addr=self.client_address[0] or None,
            )
        finally:
            connections.close_all()

    def _close_session(self, reason: str) -> None:
        if self._bookkeeping is not None:
            self._bookkeeping.join(10)
        if self._session is not None:
            sessions.close_session(self._session, reason)
