"""The API's frame: who is calling (a token or the browser's session), errors, limits.

django-ninja (not Django REST framework): the API is a thin layer over the
same door and virt functions the pages call, and ninja gives typed
parameters, an OpenAPI 3 schema generated from those types and a bundled
Swagger UI (no CDN) with one dependency and pydantic; DRF would bring its
own auth, permission and serializer layers beside ours, and drf-spectacular
another package to describe them.

Every operation names its door call; `api` adds no access rule of
its own. Errors are JSON `{"detail": sentence}` with the sentences the
pages show (Http404 / PermissionDenied from the door, VirtError from
vmdash/virt with its status).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.errors import AuthorizationError as NinjaForbidden
from ninja.security import HttpBearer, SessionAuth
from ninja.throttling import AuthRateThrottle

from people import tokens
from vmdash import door
from vmdash.failures import RETRY_AFTER
from vmdash.virt.errors import VirtError

log = logging.getLogger(__name__)


class Error(Schema):
    detail: str


class Invalid(Schema):
    detail: list[dict[str, Any]]


# Every operation may answer these (schemathesis checks that nothing else comes).
ERRORS: dict[int, type[Schema]] = {
    401: Error,
    403: Error,
    404: Error,
    409: Error,
    422: Invalid,
    429: Error,
    502: Error,
    503: Error,
}


def answers(ok: Any, *more: int) -> dict[int, Any]:
    """The responses of an operation: `ok` for 200, the errors every one may give,
    and `more` (e.g. 400 for refused input) with the same error body."""
    return {200: ok, **ERRORS, **dict.fromkeys(more, Error)}


class Token(HttpBearer):
    """`Authorization: Bearer vmd_…`: the token's user, bounded by the token's role."""

    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = tokens.find(token)
        if found is None:
            return None
        request.user = found.user
        request.who = tokens.who_of(found)  # type: ignore[attr-defined]
        request.api_token = found  # type: ignore[attr-defined]
        return found


class Session(SessionAuth):
    """The browser's login (CSRF checked on every POST); not one that owes a second factor."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if not door.who(request).active:
            return None
        return super().authenticate(request, key)


class PerToken(AuthRateThrottle):
    """VMDASH_API_RATE calls per token (or session) in each process's cache."""

    def __init__(self) -> None:
        super().__init__(settings.VMDASH_API_RATE)

    def allow_request(self, request: HttpRequest) -> bool:
        if self.rate != settings.VMDASH_API_RATE:  # changed since start (tests)
            self.rate = settings.VMDASH_API_RATE
            self.num_requests, self.duration = self.parse_rate(self.rate)
        return bool(super().allow_request(request))


api = NinjaAPI(
    title="vmdash API",
    version="1",
    description=(
        "Everything the vmdash pages do, as JSON. Authenticate with an API token "
        "made on your account page (`Authorization: Bearer vmd_…`); a token's rights "
        "are its user's, bounded by the token's role. Errors are `{\"detail\": …}`."
    ),
    auth=[Token(), Session()],
    throttle=[PerToken()],
    urls_namespace="api",
    docs_url=None,
    openapi_url=None,
)


def _error(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    return api.create_response(request, {"detail": detail}, status=status)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, str(exc) or _("There is no such object."))


@api.exception_handler(PermissionDenied)
def _denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _error(request, 403, str(exc) or _("You may not do this."))


@api.exception_handler(VirtError)
def _virt(request: HttpRequest, exc: VirtError) -> HttpResponse:
    return _error(request, exc.status, str(exc))


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _database_down(request: HttpRequest, exc: Exception) -> HttpResponse:
    """What vmdash/failures.py says on a page, as JSON: the database does not answer."""
    log.error("api: the database does not answer: %s", str(exc).strip().splitlines()[:1])
    response = _error(
        request, 503,
        _("The database does not answer, so vmdash cannot serve this now. Your virtual "
          "machines keep running: nothing was changed on the hosts."),
    )  # fmt: skip
    response["Retry-After"] = RETRY_AFTER
    return response


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _error(request, 401, _("Log in, or send an API token as “Authorization: Bearer …”."))
    response["WWW-Authenticate"] = 'Bearer realm="vmdash"'
    return response


@api.exception_handler(NinjaForbidden)
def _forbidden(request: HttpRequest, exc: NinjaForbidden) -> HttpResponse:
    return _error(request, 403, _("You may not do this."))


@api.exception_handler(HttpError)
def _http(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 403:  # ninja's CSRF refusal
        return _error(request, 403, _("The form's security check (CSRF) failed; reload the page."))
    if isinstance(exc, Throttled):
        response = _error(request, 429, _("Too many calls with this token; wait a moment."))
        if exc.wait is not None:
            response["Retry-After"] = str(max(1, round(exc.wait)))
        return response
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return api.create_response(request, {"detail": exc.errors}, status=422)
