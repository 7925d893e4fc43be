"""A request-shaped object for rendering pushes as the page itself was rendered.

Partials pushed over the WebSocket are rendered by the same templates, with
the same context processors, for the same user, as the page: the request
built here carries the user, the session, the CSRF secret from the cookie
(so the forms in a pushed row post like the ones in the page) and marks
itself as an htmx request (so views answer with their partial).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, QueryDict
from django_htmx.middleware import HtmxDetails


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def _csrf_secret(value: str) -> str | None:
    # Django keeps the unmasked 32-character secret in the cookie.
    return value if len(value) == 32 and value.isalnum() else None


def push_request(scope: dict[str, Any], path: str = "/", query: str = "") -> HttpRequest:
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = path
    request.GET = QueryDict(query.lstrip("?"))
    server = scope.get("server") or ("127.0.0.1", 80)
    client = scope.get("client") or ("", 0)
    request.META = {
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "HTTP_HOST": _header(scope, b"host") or f"{server[0]}:{server[1]}",
        "REMOTE_ADDR": str(client[0]),
        "QUERY_STRING": query.lstrip("?"),
        "HTTP_HX_REQUEST": "true",
    }
    request.COOKIES = dict(scope.get("cookies") or {})
    secret = _csrf_secret(request.COOKIES.get(settings.CSRF_COOKIE_NAME, ""))
    if secret:
        request.META["CSRF_COOKIE"] = secret
    request.user = scope["user"]
    if "session" in scope:
        request.session = scope["session"]
    request.htmx = HtmxDetails(request)  # type: ignore[attr-defined]
    return request
