"""Request-wide concerns: hypervisor errors as pages, denied attempts audited,
private caching of what a logged-in person sees."""

from __future__ import annotations

import time
from collections.abc import Callable

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.urls import Resolver404, resolve
from django.utils.cache import patch_cache_control

from vmdash.audit import Actor, Outcome, record
from vmdash.render import error_response
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import DomainRef, NetworkRef, ObjectRef, PoolRef, VolumeRef

_SAFE = {"GET", "HEAD", "OPTIONS", "TRACE"}


class VirtErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, VirtError):
            return error_response(request, str(exception), exception.status)
        return None


class AuditDeniedMiddleware:
    """Every refused mutation (a POST answered 403 or 404 by the door) leaves a row."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if request.method in _SAFE or not isinstance(exception, PermissionDenied | Http404):
            return
        try:
            match = resolve(request.path_info)
        except Resolver404:
            action, kwargs = "post", {}
        else:
            action, kwargs = match.url_name or "post", match.kwargs
        record(
            Actor.of_request(request),
            action.removeprefix("domain-"),
            _ref_of(action, kwargs),
            Outcome.DENIED,
            f"{request.path_info}: {exception}",
            object_type="" if kwargs.get("name") else ("host" if kwargs.get("host") else ""),
            object_name="" if kwargs.get("name") else str(kwargs.get("host", "")),
        )


def _ref_of(url_name: str, kwargs: dict[str, object]) -> ObjectRef | None:
    """The object a refused URL named, by its URL name's kind (domain-, pool-, volume-, …)."""
    host, name = str(kwargs.get("host", "")), str(kwargs.get("name", ""))
    if not name:
        return None
    if url_name.startswith("network-"):
        return NetworkRef(host, name)
    if url_name.startswith("volume-") and kwargs.get("volume"):
        return VolumeRef(host, name, str(kwargs["volume"]))
    if url_name.startswith(("pool-", "volume-", "storage-")):
        return PoolRef(host, name)
    return DomainRef(host, name)


class PrivateCacheMiddleware:
    """Pages for a logged-in person are theirs alone: never kept by a shared cache."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not response.has_header("Expires"):
            patch_cache_control(response, private=True, no_cache=True)
        return response


LOGIN_AT = "vmdash_login_at"
TOUCHED_AT = "vmdash_touched_at"
# How often a busy session is written again to renew its idle expiry: saving it
# on every request cost the console's first frame about 150 ms (bench/console.py).
TOUCH_EVERY = 300


class SessionAgeMiddleware:
    """A login ends VMDASH_SESSION_IDLE seconds after its last request (renewed at
    most every TOUCH_EVERY seconds) and VMDASH_SESSION_MAX seconds after it began."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.conf import settings
        from django.contrib.auth import logout

        session = getattr(request, "session", None)
        if session is not None and session.get(LOGIN_AT) is not None:
            now = time.time()
            if now - float(session[LOGIN_AT]) > settings.VMDASH_SESSION_MAX:
                logout(request)
            elif now - float(session.get(TOUCHED_AT, 0)) > TOUCH_EVERY:
                session[TOUCHED_AT] = now  # saved, and its cookie renewed, with the response
        return self.get_response(request)


# Pages whose scripts must write <style> elements: xterm.js 6 (the serial
# console) puts its theme and cell sizes into <style> elements it creates, and
# has no nonce option. Scripts stay 'self' only there too.
INLINE_STYLE_PAGES = frozenset({"domain-serial"})


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's policy (settings.CONTENT_SECURITY_POLICY), plus the console
    proxy's WebSocket origin, which depends on the host name the browser used,
    and inline styles on the few INLINE_STYLE_PAGES."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        from vmdash.console.views import proxy_url

        parts = super().get_policy_parts(request, response, report_only)
        try:
            console = proxy_url(request)
        except DisallowedHost:  # the 400 for a forged Host header: nothing to add
            return parts
        if not report_only:
            parts.update = {**(parts.update or {}), "connect-src": [console]}
            match = getattr(request, "resolver_match", None)
            if match is not None and match.url_name in INLINE_STYLE_PAGES:
                parts.update["style-src"] = ["'unsafe-inline'"]
        return parts
