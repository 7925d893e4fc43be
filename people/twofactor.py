"""The second factor: TOTP apps and one-time recovery codes (django-otp).

A login whose user has a confirmed TOTP device, or belongs to a group that
requires one, starts with the session flag `door.SECOND_FACTOR_PENDING`
("verify" a code, or "enrol" a device first). Until the flag is gone every
entrance sees nobody (vmdash/door.py: pages, WebSockets, the console proxy)
and SecondFactorMiddleware sends every page to the one step still owed.
Every login path (our form, LDAP, the Django admin's) ends in Django's
`login()`, whose signal sets the flag: none can skip it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.models import Group, User
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.contrib.sessions.models import Session
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from people.models import SecondFactorRequired
from vmdash.door import SECOND_FACTOR_PENDING
from vmdash.revoke import revoke

VERIFY = "verify"
ENROL = "enrol"
# The pages a pending login may reach, by what it owes.
_OPEN_TO = {
    VERIFY: ("login-code", "logout"),
    ENROL: ("me-two-factor", "me-two-factor-confirm", "logout"),
}


def totp_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def required_for(user: User) -> bool:
    """Is `user` in a group that requires a second factor?"""
    return SecondFactorRequired.objects.filter(group__user=user).exists()


def owed(user: User) -> str:
    """What a fresh login of `user` owes: VERIFY, ENROL or nothing."""
    if totp_device(user) is not None:
        return VERIFY
    return ENROL if required_for(user) else ""


@receiver(user_logged_in)
def _on_login(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session") and (state := owed(user)):
        request.session[SECOND_FACTOR_PENDING] = state


def pending(request: HttpRequest) -> str:
    return str(request.session.get(SECOND_FACTOR_PENDING) or "")


def verified(request: HttpRequest) -> bool:
    """Did this session give a second factor (at login or at enrolment)?"""
    return DEVICE_ID_SESSION_KEY in request.session and not pending(request)


def passed(request: HttpRequest, device: Device) -> None:
    """The second factor is given: this session is a full login from now on (a new key)."""
    otp_login(request, device)
    request.session.pop(SECOND_FACTOR_PENDING, None)
    request.session.cycle_key()


class SecondFactorMiddleware:
    """A login that owes its second factor reaches only the page that asks for it.

    A session older than its group's requirement (or than an admin's reset) is
    caught here too: it has no verified device, so it owes one from now on.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            state = pending(request)
            if not state and DEVICE_ID_SESSION_KEY not in request.session and required_for(user):
                state = request.session[SECOND_FACTOR_PENDING] = owed(user) or ENROL
            if state and _url_name(request) not in _OPEN_TO[state]:
                return _send_to(request, state)
        return self.get_response(request)


def _url_name(request: HttpRequest) -> str:
    try:
        return resolve(request.path_info).url_name or ""
    except Resolver404:
        return ""


def _send_to(request: HttpRequest, state: str) -> HttpResponse:
    url = reverse("login-code" if state == VERIFY else "me-two-factor")
    if request.method == "GET":
        url += "?" + urlencode({"next": request.get_full_path()})
    if request.headers.get("HX-Request") == "true":  # django-htmx's middleware comes later
        return HttpResponseClientRedirect(url)
    return redirect(url)


def safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


def check_code(request: HttpRequest, user: User, code: str) -> tuple[Device | None, str]:
    """The device that accepts `code` (TOTP first, then a recovery code), or why none did.

    A wrong code is a failed login for django-axes (the lockout) and slows the
    device down (django-otp's throttle, which a correct password does not reset).
    """
    code = "".join(code.split())
    devices: list[Device] = [*TOTPDevice.objects.filter(user=user, confirmed=True)]
    devices += [*StaticDevice.objects.filter(user=user, confirmed=True)]
    waits = []
    with transaction.atomic():
        for device in devices:
            allowed, info = device.verify_is_allowed()
            if not allowed:
                waits.append(info)
                continue
            if code and device.verify_token(code):
                return device, ""
    user_login_failed.send(
        sender=__name__, credentials={"username": user.get_username()}, request=request
    )
    if getattr(request, "axes_locked_out", False):
        logout(request)
        return None, "locked"
    return None, "throttled" if waits and len(waits) == len(devices) else "wrong"


def new_totp(user: User) -> TOTPDevice:
    """The unconfirmed device an enrolment shows (the same one until it is confirmed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="vmdash", confirmed=False)


def qr_data_uri(device: TOTPDevice) -> str:
    """The otpauth:// URL as a QR code, an SVG data: URL (segno, no image library)."""
    return str(segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2))


def secret_text(device: TOTPDevice) -> str:
    """The key as the base32 text an app asks for when typed by hand, in groups of four."""
    text = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def new_recovery_codes(user: User) -> list[str]:
    """Fresh one-time recovery codes; the old ones stop working."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(settings.VMDASH_RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


def recovery_left(user: User) -> int:
    return int(StaticToken.objects.filter(device__user=user, device__confirmed=True).count())


def remove_devices(user: User) -> int:
    """Forget every second factor of `user` (TOTP, recovery codes); how many went."""
    n_totp = TOTPDevice.objects.filter(user=user).count()
    n_static = StaticDevice.objects.filter(user=user).count()
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    return int(n_totp + n_static)


def end_sessions(user: User, why: str) -> int:
    """Log `user` out everywhere: their sessions go, their sockets close."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id", "")) == str(user.pk):
            session.delete()
            ended += 1
    revoke(user.pk, None, why)
    return ended


def require_for_group(group: Group, required: bool) -> None:
    """Set or clear the group's requirement; members who cannot meet it yet lose their sockets
    (their next page asks them to enrol, through SecondFactorMiddleware)."""
    if not required:
        SecondFactorRequired.objects.filter(group=group).delete()
        return
    SecondFactorRequired.objects.get_or_create(group=group)
    for user in group.user_set.all():
        if totp_device(user) is None:
            revoke(user.pk, None, "two-factor login required")
