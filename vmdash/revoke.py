"""Ending a person's open connections when their access ends.

Logout, deactivation and a password change send one channel-layer message
to the user's group; every WebSocket consumer of that user (live events,
serial console) joined the group at connect and closes on it. The console
proxy, in its own process, asks `session_holds` again for each open
connection. Grant expiry (a later issue) sends the same message.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.backends.base import SessionBase
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)
REVOKED = "vmdash.revoked"  # consumers' handler: vmdash_revoked(self, message)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def session_hash(session_key: str | None) -> str:
    """What we keep of a session key: its SHA-256 (never the key itself)."""
    return hashlib.sha256(session_key.encode()).hexdigest() if session_key else ""


def revoke(user_id: int, session_key: str | None = None, why: str = "") -> None:
    """Close the user's connections: of one session, or all when `session_key` is None."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": REVOKED, "session": session_hash(session_key), "why": why}
    async_to_sync(layer.group_send)(user_group(user_id), message)
    log.info("revoked the connections of user %s (%s)", user_id, why or "no reason given")


def is_revoked_for(message: dict[str, Any], session_key: str | None) -> bool:
    """Does a revocation message concern the connection of `session_key`?"""
    target = message.get("session") or ""
    return not target or constant_time_compare(target, session_hash(session_key))


def session_holds(user_id: int | None, session_key: str | None) -> bool:
    """Is `session_key` still a live login of an active `user_id` with today's password?"""
    from django.conf import settings

    if not user_id or not session_key:
        return False
    engine = import_string(settings.SESSION_ENGINE).SessionStore
    store: SessionBase = engine(session_key)
    data = store.load()  # {} for a session that is gone or expired: no exists() first
    if str(data.get(SESSION_KEY, "")) != str(user_id):
        return False
    from vmdash.door import SECOND_FACTOR_PENDING

    if data.get(SECOND_FACTOR_PENDING):  # a login that still owes its second factor
        return False
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    return constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash())


@receiver(user_logged_out)
def _on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None and request is not None:
        revoke(user.pk, request.session.session_key, "logged out")


@receiver(pre_save, sender=get_user_model())
def _remember_old(sender: Any, instance: Any, **kwargs: Any) -> None:
    fields = kwargs.get("update_fields")
    if instance.pk is None or (fields is not None and set(fields) <= {"last_login"}):
        instance._vmdash_old = None
        return
    old = sender.objects.filter(pk=instance.pk).values("is_active", "password").first()
    instance._vmdash_old = old


@receiver(post_save, sender=get_user_model())
def _on_user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    old = getattr(instance, "_vmdash_old", None)
    if created or not old:
        return
    if old["is_active"] and not instance.is_active:
        revoke(instance.pk, None, "deactivated")
    elif old["password"] != instance.password:
        revoke(instance.pk, None, "password changed")


RIGHTS = "vmdash.rights"  # consumers' handler: vmdash_rights(self, message)


def rights_changed(user_id: int, why: str = "") -> None:
    """Tell the user's open connections to load their rights again and drop what they lost."""
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(user_group(user_id), {"type": RIGHTS, "why": why})
