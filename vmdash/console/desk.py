"""The ticket desk: the Django side of the console proxy.

The relay (relay.py, plain websockify without Django) forks a child per
browser connection. Each child opens one Unix-socket connection to this desk
and keeps it for the life of the console connection:

    child -> {"op": "redeem", "token": ..., "cookie": ..., "remote": ...}
    desk  -> {"ok": true, "host": ..., "port": ..., "socket": ..., "view_only": ...,
              "auth": <the VM's display wants a password>}   or {"ok": false, "reason": ...}
    child -> {"op": "auth", "challenge": <hex>}       (VNC password, if any)
    desk  -> {"response": <hex>}
    child -> {"op": "close", "reason": ...}            (or simply hangs up)
    desk  -> {"op": "end", "reason": ...}              (the person's session ended: close)

Every CHECK_SECONDS the desk asks, in one query for all open connections,
whether each connection's login session still holds (not logged out, account
active, same password); for one that does not, it tells the child to end the
connection, and records the close.

The desk uses the ticket (tickets.redeem), then records the session and the
audit entry after answering, so bookkeeping never delays the first frame.
When a child's connection ends, the session ends, with the reason it gave or
"the proxy connection ended". The VNC password stays in this process.

Why a desk: a websockify child forked from a Django-sized process costs
about a millisecond more to fork, then a fresh database and libvirt
connection (~3 ms) and cold ORM code; here the connections stay warm.
One thread serves every child (selectors); each request takes about a
millisecond. The socket is created 0600 and peers must have our uid.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.db import DatabaseError, connection
from django.db.backends.signals import connection_created
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from vmdash import door, revoke
from vmdash.audit import Actor, Outcome, record
from vmdash.console import sessions, tickets
from vmdash.console.models import ConsoleSession
from vmdash.console.vncauth import vnc_auth_response

log = logging.getLogger("vmdash.console.desk")

MAX_LINE = 64 * 1024
CHECK_SECONDS = 2.0  # open connections end this soon after a logout or deactivation
SWEEP_SECONDS = 60.0  # sessions of killed processes get their console-close
SESSION_ENDED = "the user's session ended"
DATABASE_DOWN = "vmdash cannot reach its database; try again in a moment"


@dataclass
class _Peer:
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)
    grant: tickets.Grant | None = None
    remote: str | None = None
    session: ConsoleSession | None = None
    reason: str = ""


def _fast_commits(sender: Any, connection: Any, **kwargs: Any) -> None:
    """WAL without a sync per commit: a lost ticket use after a power cut is moot (30 s)."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=NORMAL")


class Desk:
    def __init__(self, path: str) -> None:
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.listener.bind(path)
        finally:
            os.umask(old)
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.peers: dict[int, _Peer] = {}
        self.uid = os.getuid()
        self._touched = self._checked = self._swept = time.monotonic()
        connection_created.connect(_fast_commits)

    def close(self) -> None:
        for peer in list(self.peers.values()):
            self._drop(peer, "the console proxy stopped")
        self.selector.close()
        self.listener.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def serve(self, keep_going: Callable[[], bool]) -> None:
        while keep_going():
            for key, _events in self.selector.select(timeout=CHECK_SECONDS / 2):
                if key.data is None:
                    self._accept()
                else:
                    self._guarded("answering the proxy", self._readable, key.data)
            now = time.monotonic()
            if now - self._checked >= CHECK_SECONDS:
                self._checked = now
                self._guarded("checking the open consoles' sessions", self.end_revoked)
            if now - self._touched > sessions.HEARTBEAT.total_seconds():
                self._guarded("recording that consoles are open", self._heartbeat)
            if now - self._swept > SWEEP_SECONDS:
                self._swept = now
                self._guarded("closing the sessions of dead proxies", sessions.close_dead)

    def _guarded(self, doing: str, fn: Callable[..., object], *args: object) -> None:
        """The database going away (PostgreSQL restarted) must not end the
        proxy: the warm connection is dropped, the next request opens one."""
        try:
            fn(*args)
        except DatabaseError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            log.warning("ticket desk: the database does not answer while %s (%s)", doing, first)
            connection.close()

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid != self.uid:
            log.warning("ticket desk: refused a connection from uid %s", uid)
            sock.close()
            return
        sock.setblocking(False)
        peer = _Peer(sock)
        self.peers[sock.fileno()] = peer
        self.selector.register(sock, selectors.EVENT_READ, peer)

    def _readable(self, peer: _Peer) -> None:
        try:
            chunk = peer.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(peer, peer.reason or "the proxy connection ended")
            return
        peer.buf += chunk
        while b"\n" in peer.buf:
            line, _, rest = bytes(peer.buf).partition(b"\n")
            peer.buf = bytearray(rest)
            self._handle(peer, line)
        if len(peer.buf) > MAX_LINE:
            self._drop(peer, "the proxy connection sent garbage")

    def _send(self, peer: _Peer, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode() + b"\n"
        peer.sock.setblocking(True)
        try:
            peer.sock.sendall(data)
        except OSError:
            pass
        finally:
            peer.sock.setblocking(False)

    def _handle(self, peer: _Peer, line: bytes) -> None:
        try:
            request = json.loads(line)
            op = request["op"]
        except (ValueError, KeyError, TypeError):
            self._drop(peer, "the proxy connection sent garbage")
            return
        if op == "redeem" and peer.grant is None:
            try:
                self._redeem(peer, request)
            except DatabaseError:
                if peer.grant is not None:  # answered; only the bookkeeping failed
                    raise
                # The warm connection may have died with a PostgreSQL restart:
                # once more on a new one (nothing was spent: the lookup failed).
                connection.close()
                try:
                    self._redeem(peer, request)
                except DatabaseError:
                    if peer.grant is None:  # refused: the page says why and may retry
                        self._send(peer, {"ok": False, "reason": DATABASE_DOWN})
                    self._drop(peer, DATABASE_DOWN)
                    raise
        elif op == "auth" and peer.grant is not None and peer.grant.password:
            try:
                challenge = bytes.fromhex(str(request["challenge"]))
            except (KeyError, ValueError):
                challenge = b""
            if len(challenge) != 16:
                self._drop(peer, "bad VNC challenge")
                return
            response = vnc_auth_response(peer.grant.password, challenge)
            self._send(peer, {"response": response.hex()})
        elif op == "close":
            peer.reason = str(request.get("reason") or "")[:100]
        else:
            self._drop(peer, f"unexpected request {op!r}")

    def _redeem(self, peer: _Peer, request: dict[str, Any]) -> None:
        peer.remote = str(request.get("remote") or "") or None
        try:
            grant = tickets.redeem(
                str(request.get("token") or ""),
                cookie_header=request.get("cookie"),
                remote_addr=peer.remote,
            )
        except tickets.Refused as err:
            self._send(peer, {"ok": False, "reason": str(err)})
            actor = Actor(err.user_id, err.username, peer.remote, via="console")
            record(actor, "console-denied", err.ref, Outcome.DENIED, f"ticket refused: {err}")
            return
        peer.grant = grant
        self._send(
            peer,
            {
                "ok": True,
                "host": grant.target_host,
                "port": grant.target_port,
                "socket": grant.target_socket,
                "view_only": grant.view_only,
                "auth": bool(grant.password),
                "user": grant.username,
            },
        )
        # After the answer: the relay is already connecting to the display.
        tickets.forget(grant.ticket_id)
        peer.session = sessions.open_session(
            kind=ConsoleSession.Kind.GRAPHICAL,
            user=None,
            user_id=grant.user_id,
            username=grant.username,
            host=grant.host,
            vm_name=grant.vm_name,
            vm_uuid=grant.vm_uuid,
            view_only=grant.view_only,
            remote_addr=peer.remote,
        )

    def _drop(self, peer: _Peer, reason: str) -> None:
        self.peers.pop(peer.sock.fileno(), None)
        try:
            self.selector.unregister(peer.sock)
        except (KeyError, ValueError):
            pass
        peer.sock.close()
        if peer.session is not None:
            sessions.close_session(peer.session, reason)
            peer.session = None

    def end_revoked(self) -> None:
        """End the open connections whose login session no longer holds."""
        held = [p for p in self.peers.values() if p.grant is not None and p.grant.session_key]
        if not held:
            return
        for peer in _sessions_ended(held):
            log.info(
                "ending the console of %s: %s", peer.grant and peer.grant.username, SESSION_ENDED
            )
            self._send(peer, {"op": "end", "reason": SESSION_ENDED})
            self._drop(peer, SESSION_ENDED)

    def _heartbeat(self) -> None:
        self._touched = time.monotonic()
        open_ids = [p.session.pk for p in self.peers.values() if p.session is not None]
        if open_ids:
            ConsoleSession.objects.filter(pk__in=open_ids).update(last_seen=timezone.now())
        connection.close_if_unusable_or_obsolete()


def _sessions_ended(peers: list[_Peer]) -> list[_Peer]:
    """The peers whose login session is over or whose grant ended, batched.

    With database sessions (the default) this is two queries for all peers;
    other session engines are asked one session at a time.
    """
    peers = [p for p in peers if p.grant is not None]
    grants = [p.grant for p in peers if p.grant is not None]
    if settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        return [
            p
            for p in peers
            if p.grant is not None
            and not (
                revoke.session_holds(p.grant.user_id, p.grant.session_key)
                and door.console_allowed(
                    door.load_who_id(p.grant.user_id), p.grant.ref, p.grant.view_only
                )
            )
        ]
    live = Session.objects.filter(
        session_key__in={g.session_key for g in grants}, expire_date__gt=timezone.now()
    )
    data = {s.session_key: s.get_decoded() for s in live}
    users = get_user_model().objects.filter(pk__in={g.user_id for g in grants}, is_active=True)
    hashes = {u.pk: u.get_session_auth_hash() for u in users}

    def holds(grant: tickets.Grant) -> bool:
        session = data.get(grant.session_key)
        if session is None or str(session.get(SESSION_KEY, "")) != str(grant.user_id):
            return False
        return constant_time_compare(
            session.get(HASH_SESSION_KEY, ""), hashes.get(grant.user_id, "-")
        )

    whos = {u.pk: door.load_who(u) for u in users}

    def allowed(grant: tickets.Grant) -> bool:
        who = whos.get(grant.user_id)
        return who is not None and door.console_allowed(who, grant.ref, grant.view_only)

    return [p for p in peers if p.grant is not None and not (holds(p.grant) and allowed(p.grant))]
