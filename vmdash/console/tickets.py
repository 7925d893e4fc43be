"""Console tickets: issued by the web process, redeemed once by the proxy.

A ticket is a row (target, user, session, expiry) plus a signed reference to
it that the browser carries in the proxy URL (`?token=`). The proxy's ticket
desk accepts a token only if its signature is ours and fresh, its row is
unused and unexpired, and marks it used in the same UPDATE, so single use
holds however many proxy processes share the database. It then checks that the same browser session
presents it, that the user may still open the console, and that the VM is
still the same run (a restarted VM may hold another VM's old VNC port).
Nothing else in the request is trusted or used to pick the target.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core import signing
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from vmdash import door, revoke
from vmdash.console.models import ConsoleTicket
from vmdash.models import Host
from vmdash.virt import consoles
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import DomainRef, HostRef

_SALT = "vmdash.console.ticket"


class Refused(Exception):
    """The proxy must not open anything for this token; `str()` says why (for the log).

    Once the ticket row is known, the refusal names its user and VM (for the audit).
    """

    def __init__(
        self,
        why: str,
        *,
        user_id: int | None = None,
        username: str = "",
        ref: DomainRef | None = None,
    ) -> None:
        super().__init__(why)
        self.user_id, self.username, self.ref = user_id, username, ref


@dataclass(frozen=True)
class Grant:
    """What a redeemed ticket allows: one connection to one VNC target."""

    ticket_id: int
    user_id: int
    username: str
    host: str
    vm_name: str
    vm_uuid: str
    target_host: str
    target_port: int
    target_socket: str
    view_only: bool
    password: str = field(default="", repr=False)
    # The session that presented the ticket: the desk checks it again while the console is open.
    session_key: str = field(default="", repr=False)

    @property
    def ref(self) -> DomainRef:
        return DomainRef(self.host, self.vm_name, self.vm_uuid)


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SALT)


session_hash = revoke.session_hash


def issue(
    request: HttpRequest, target: consoles.VncTarget, ref: DomainRef, *, view_only: bool
) -> str:
    """Store a ticket for `request.user` and VM `ref` at `target`; return the token."""
    user = request.user
    assert user.is_authenticated  # every view is behind LoginRequiredMiddleware
    now = timezone.now()
    lifetime = settings.VMDASH_CONSOLE_TICKET_SECONDS
    ConsoleTicket.objects.filter(expires_at__lt=now - timedelta(minutes=5)).delete()
    nonce = secrets.token_urlsafe(24)
    ticket = ConsoleTicket.objects.create(
        nonce=nonce,
        user=user,
        session_hash=session_hash(request.session.session_key),
        host=ref.host,
        vm_name=ref.name,
        vm_uuid=target.uuid,
        domain_id=target.domain_id,
        target_host=target.host,
        target_port=target.port,
        target_socket=target.socket,
        password=target.password,
        view_only=view_only,
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    )
    return _signer().sign(f"{ticket.pk}.{nonce}")


def _cookie_session(cookie_header: str | None) -> str:
    if not cookie_header:
        return ""
    jar = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return ""
    morsel = jar.get(settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel is not None else ""


def _db_sessions() -> bool:
    return bool(settings.SESSION_ENGINE == "django.contrib.sessions.backends.db")


def _use(
    ticket_id: int, nonce: str, remote_addr: str | None, session_key: str
) -> dict[str, Any] | None:
    """Mark the ticket used if it is unused and unexpired; return it with its user, host
    and (database sessions) the live session row of `session_key`.

    One statement (UPDATE ... RETURNING, SQLite >= 3.35 and PostgreSQL) on
    the console's critical path: the ORM would need four (~2 ms more).
    """
    qn = connection.ops.quote_name
    tickets_t, users_t, hosts_t = (
        qn(ConsoleTicket._meta.db_table),
        qn(get_user_model()._meta.db_table),
        qn(Host._meta.db_table),
    )
    columns = [
        "user_id",
        "session_hash",
        "host",
        "vm_name",
        "vm_uuid",
        "domain_id",
        "target_host",
        "target_port",
        "target_socket",
        "password",
        "view_only",
    ]
    extra = {
        "username": f"(SELECT username FROM {users_t} u WHERE u.id = user_id)",
        "host_uri": f"(SELECT uri FROM {hosts_t} h WHERE h.slug = host AND h.enabled)",
        "host_name": f"(SELECT name FROM {hosts_t} h WHERE h.slug = host)",
    }
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [now, remote_addr or None, ticket_id, nonce, now]
    if _db_sessions():
        sessions_t = qn(Session._meta.db_table)
        extra["session_data"] = (
            f"(SELECT session_data FROM {sessions_t} s"
            " WHERE s.session_key = %s AND s.expire_date > %s)"
        )
        params += [session_key, now]
    sql = (
        f"UPDATE {tickets_t} SET used_at = %s, used_from = %s "
        "WHERE id = %s AND nonce = %s AND used_at IS NULL AND expires_at > %s "
        f"RETURNING {', '.join([*map(qn, columns), *extra.values()])}"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else dict(zip([*columns, *extra], row, strict=True))


def _session_holds(user: Any, session_key: str, session_data: str | None) -> bool:
    """revoke.session_holds for a user already loaded and (database sessions) the
    session row read with the ticket: no query of its own on the critical path."""
    if not _db_sessions():
        return revoke.session_holds(user.pk, session_key)
    data = SessionStore().decode(session_data) if session_data else {}
    if str(data.get(SESSION_KEY, "")) != str(user.pk) or data.get(door.SECOND_FACTOR_PENDING):
        return False
    return constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash())


def redeem(token: str, *, cookie_header: str | None, remote_addr: str | None) -> Grant:
    """Use up the ticket behind `token` and return what it grants; raises Refused.

    Runs in the console proxy's ticket desk (desk.py), once per connection.
    The ticket is spent by being presented, even when a later check refuses
    it. The desk wipes its VNC password right after answering (forget()).
    """
    try:
        value = _signer().unsign(token, max_age=settings.VMDASH_CONSOLE_TICKET_SECONDS)
    except signing.SignatureExpired:
        raise Refused("expired ticket") from None
    except signing.BadSignature:
        raise Refused("forged or malformed ticket") from None
    ticket_id, _, nonce = value.partition(".")
    if not ticket_id.isdigit() or not nonce:
        raise Refused("malformed ticket")
    session_key = _cookie_session(cookie_header)
    ticket = _use(int(ticket_id), nonce, remote_addr, session_key)
    if ticket is None:
        raise Refused("unknown ticket, or already used or expired")
    username = str(ticket["username"] or "")
    user_id = int(ticket["user_id"])
    view_only = bool(ticket["view_only"])
    ref = DomainRef(ticket["host"], ticket["vm_name"], ticket["vm_uuid"])

    def refused(why: str) -> Refused:
        return Refused(why, user_id=user_id, username=username, ref=ref)

    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if settings.VMDASH_CONSOLE_BIND_SESSION:
        if not hmac.compare_digest(
            session_hash(session_key) or "-", ticket["session_hash"] or "--"
        ):
            raise refused(f"ticket of user {username!r} from another session")
        # The cookie is the right one, but the person may have logged out since.
        if user is None or not _session_holds(user, session_key, ticket.get("session_data")):
            raise refused(f"the session of user {username!r} has ended")
    if not door.console_allowed(door.load_who(user), ref, view_only):
        raise refused(f"user {username!r} may no longer open this console")
    if not ticket["host_uri"]:
        raise refused(f"host {ticket['host']!r} is gone or disabled")
    host = HostRef(ticket["host"], ticket["host_uri"], ticket["host_name"] or "")
    try:
        same = consoles.same_run(host, ticket["vm_uuid"], int(ticket["domain_id"]))
    except VirtError as err:
        raise refused(f"cannot check VM {ticket['vm_name']!r}: {err}") from None
    if not same:
        raise refused(f"VM {ticket['vm_name']!r} stopped or restarted since the ticket was issued")
    return Grant(
        ticket_id=int(ticket_id),
        user_id=user_id,
        username=username,
        host=ticket["host"],
        vm_name=ticket["vm_name"],
        vm_uuid=ticket["vm_uuid"],
        target_host=ticket["target_host"],
        target_port=int(ticket["target_port"]),
        target_socket=ticket["target_socket"],
        view_only=view_only,
        password=ticket["password"],
        session_key=session_key if settings.VMDASH_CONSOLE_BIND_SESSION else "",
    )


def forget(ticket_id: int) -> None:
    """Wipe a used ticket's VNC password (and those of expired tickets)."""
    ConsoleTicket.objects.filter(pk=ticket_id).exclude(password="").update(password="")
    ConsoleTicket.objects.filter(expires_at__lt=timezone.now()).exclude(password="").update(
        password=""
    )
