"""API tokens: made on one's own page, shown once, kept as a hash, maybe narrowed.

A token reads `vmd_<key>_<secret>`: the key finds the row, the secret's
SHA-256 must match what is kept. `who_of` gives the policy's view of a
token's request: its user's grants, and, when the token is narrowed to a
role on a scope, those rules as the bound (vmdash.policy.Who.within).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

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
