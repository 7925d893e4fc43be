"""API tokens: made on one's own page, shown once, kept as a hash, maybe narrowed.

A token reads `vmd_<key>_<secret>`: the key finds the row, the secret's
SHA-256 must match what is kept. `who_of` gives the policy's view of a
token's request: its user's grants, and, when the token is narrowed to a
role on a scope, those rules as the bound (vmdash.policy.Who.within).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from people.models import ApiToken
from vmdash.access.models import Grant
from vmdash.access.rules import rule_of
from vmdash.door import load_who
from vmdash.policy import ANONYMOUS, Who

PREFIX = "vmd_"
# last_used_at is written at most this often per token (a script calling
# the API in a loop would otherwise write a row per call).
_TOUCH_EVERY = timedelta(minutes=1)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(token: ApiToken) -> str:
    """Give the unsaved `token` a key and a secret, save it; the whole token, to show once."""
    token.key = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token.digest = _digest(secret)
    token.save()
    return f"{PREFIX}{token.key}_{secret}"


def find(raw: str) -> ApiToken | None:
    """The live token `raw` is (its user active, not ended), or None."""
    if not raw.startswith(PREFIX):
        return None
    key, _sep, secret = raw[len(PREFIX) :].partition("_")
    if not key or not secret or len(key) > 16:
        return None
    token = ApiToken.objects.select_related("user", "role").filter(key=key).first()
    if token is None or not hmac.compare_digest(token.digest, _digest(secret)):
        return None
    if token.expired or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def who_of(token: ApiToken) -> Who:
    """What a request with `token` may do: its user's rights, bounded by the token's role."""
    user: User = token.user
    who = load_who(user)
    if who is ANONYMOUS or token.role is None:
        return who
    return who.narrowed([rule_of(as_grant(token))])


def as_grant(token: ApiToken) -> Grant:
    """The token's bound, as the grant it would be (not saved)."""
    assert token.role is not None
    return Grant(
        role=token.role,
        scope=token.scope or Grant.Scope.SITE,
        host=token.host,
        object_uuid=token.object_uuid,
        object_name=token.object_name,
        tag=token.tag,
        expires_at=token.expires_at,
    )


# WebSocket routes a script may open with its token (an `Authorization:
# Bearer` header on the upgrade; browsers cannot set it, they log in). Only
# these: the live-events and console sockets serve pages, not scripts.
TOKEN_SOCKETS = re.compile(r"^/ws/hosts/[^/]+/storage/[^/]+/upload/$")


class TokenScope:
    """Inside Channels' AuthMiddlewareStack: a WebSocket of TOKEN_SOCKETS that
    carries an API token is its user's, bounded as the token is
    (scope["vmdash_who"]); a wrong token, or one on another route, is nobody."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        raw = _bearer(scope)
        if raw is not None:
            from channels.db import database_sync_to_async
            from django.contrib.auth.models import AnonymousUser

            found = None
            if TOKEN_SOCKETS.match(str(scope.get("path", ""))):
                found = await database_sync_to_async(_token_and_who)(raw)
            if found is None:
                scope = {**scope, "user": AnonymousUser(), "vmdash_who": ANONYMOUS}
            else:
                token, who = found
                scope = {**scope, "user": token.user, "vmdash_who": who, "api_token": token}
        return await self.inner(scope, receive, send)


def _bearer(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            kind, _sep, raw = value.decode("latin-1").partition(" ")
            return raw.strip() if kind.lower() == "bearer" else ""
    return None


def _token_and_who(raw: str) -> tuple[ApiToken, Who] | None:
    token = find(raw)
    return (token, who_of(token)) if token is not None else None
