"""Audit entries for what happens outside our views: logins, the Django admin."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from vmdash.audit import Actor, Outcome, record
from vmdash.middleware import LOGIN_AT, TOUCHED_AT


def _address(request: Any) -> str | None:
    return request.META.get("REMOTE_ADDR") or None if request is not None else None


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[LOGIN_AT] = request.session[TOUCHED_AT] = time.time()
    actor = Actor(user.pk, user.get_username(), _address(request), "web")
    record(actor, "login", None, Outcome.OK, object_type="user", object_name=user.get_username())


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    actor = Actor(user.pk, user.get_username(), _address(request), "web")
    record(actor, "logout", None, Outcome.OK, object_type="user", object_name=user.get_username())


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kw: Any) -> None:
    name = str(credentials.get("username", ""))[:150]
    actor = Actor(None, name, _address(request), "web")
    record(
        actor,
        "login",
        None,
        Outcome.DENIED,
        "wrong user name or password, or locked out",
        object_type="user",
        object_name=name,
    )


@receiver(post_save, sender=LogEntry)
def _admin_change(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    verb = {ADDITION: "add", CHANGE: "change", DELETION: "delete"}
    content_type: Any = instance.content_type
    kind = str(content_type.model) if content_type is not None else "object"
    user: Any = instance.user
    actor = Actor(instance.user_id, user.get_username(), None, "admin")
    record(
        actor,
        f"admin-{verb.get(instance.action_flag, 'change')}",
        None,
        Outcome.OK,
        instance.get_change_message() or str(instance.object_repr),
        object_type=kind[:30],
        object_name=str(instance.object_repr)[:255],
    )
