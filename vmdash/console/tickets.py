"""Console tickets: issued by the web process, redeemed once by the proxy.

A ticket is a row (target, user, session, expiry) plus a signed reference to
it that the browser carries in the proxy URL (`?token=`). The proxy accepts a
token only if its signature is ours and fresh, its row is unused and
unexpired, and marks it used in the same UPDATE, so single use holds across
websockify's forked children. It then checks that the same browser session
presents it, that the user may still open the console, and that the VM is
still the same run (a restarted VM may hold another VM's old VNC port).
Nothing else in the request is trusted or used to pick the target.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookies import CookieError, SimpleCookie

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.utils import timezone

from vmdash.console.models import ConsoleTicket
from vmdash.models import Host
from vmdash.policy import Action, can
from vmdash.virt import consoles
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import DomainRef

_SALT = "vmdash.console.ticket"


class Refused(Exception):
    """The proxy must not open anything for this token; `str()` says why (for the log)."""


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

    @property
    def ref(self) -> DomainRef:
        return DomainRef(self.host, self.vm_name, self.vm_uuid)


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SALT)


def session_hash(session_key: str | None) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest() if session_key else ""


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


def redeem(token: str, *, cookie_header: str | None, remote_addr: str | None) -> Grant:
    """Use up the ticket behind `token` and return what it grants; raises Refused.

    Runs in the proxy's child process for each connection.
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
    ticket = (
        ConsoleTicket.objects.select_related("user").filter(pk=int(ticket_id), nonce=nonce).first()
    )
    if ticket is None:
        raise Refused("unknown ticket")
    now = timezone.now()
    used = ConsoleTicket.objects.filter(
        pk=ticket.pk, used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now, used_from=remote_addr or None, password="")
    if used != 1:
        raise Refused("ticket already used or expired")
    if settings.VMDASH_CONSOLE_BIND_SESSION and not hmac.compare_digest(
        session_hash(_cookie_session(cookie_header)) or "-", ticket.session_hash or "--"
    ):
        raise Refused(f"ticket of user {ticket.user.get_username()!r} from another session")
    ref = DomainRef(ticket.host, ticket.vm_name, ticket.vm_uuid)
    action = Action.CONSOLE_VIEW_ONLY if ticket.view_only else Action.CONSOLE
    user = ticket.user
    if not (can(user, action, ref) or (ticket.view_only and can(user, Action.CONSOLE, ref))):
        raise Refused(f"user {user.get_username()!r} may no longer open this console")
    host = Host.objects.filter(slug=ticket.host, enabled=True).first()
    if host is None:
        raise Refused(f"host {ticket.host!r} is gone or disabled")
    try:
        same = consoles.same_run(host.uri, ticket.vm_uuid, ticket.domain_id)
    except VirtError as err:
        raise Refused(f"cannot check VM {ticket.vm_name!r}: {err}") from None
    if not same:
        raise Refused(f"VM {ticket.vm_name!r} stopped or restarted since the ticket was issued")
    return Grant(
        ticket_id=ticket.pk,
        user_id=user.pk,
        username=user.get_username(),
        host=ticket.host,
        vm_name=ticket.vm_name,
        vm_uuid=ticket.vm_uuid,
        target_host=ticket.target_host,
        target_port=ticket.target_port,
        target_socket=ticket.target_socket,
        view_only=ticket.view_only,
        password=ticket.password,
    )
