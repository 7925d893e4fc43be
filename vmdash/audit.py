"""The audit trail: one writer, `record(actor, ...)`, for every entrance.

Views, WebSocket consumers, the console desk, background jobs and (later)
the API describe who acted with an `Actor` and write the same entries. The
trail is append-only in the app (AuditEntry refuses updates and deletes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.http import HttpRequest

from vmdash.models import AuditEntry
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import DomainRef, HostRef, NetworkRef, ObjectRef, PoolRef, VolumeRef

log = logging.getLogger("vmdash.audit")
T = TypeVar("T")
Outcome = AuditEntry.Outcome
_REFS = (DomainRef, PoolRef, VolumeRef, NetworkRef)


@dataclass(frozen=True)
class Actor:
    """Who acted, from where, through which entrance (web, ws, console, job, admin, api)."""

    user_id: int | None
    username: str
    address: str | None = None
    via: str = "web"

    @classmethod
    def of_request(cls, request: HttpRequest, via: str = "web") -> Actor:
        user: Any = getattr(request, "user", None)
        known = user is not None and user.is_authenticated
        return cls(
            user_id=user.pk if known else None,
            username=user.get_username() if known else "",
            address=request.META.get("REMOTE_ADDR") or None,
            via=via,
        )

    @classmethod
    def of_scope(cls, scope: dict[str, Any], via: str = "ws") -> Actor:
        user: Any = scope.get("user")
        known = user is not None and user.is_authenticated
        client = scope.get("client") or (None, None)
        return cls(
            user_id=user.pk if known else None,
            username=user.get_username() if known else "",
            address=client[0],
            via=via,
        )

    @classmethod
    def system(cls, via: str = "system") -> Actor:
        return cls(user_id=None, username="", via=via)


def record(
    actor: Actor,
    action: str,
    ref: HostRef | ObjectRef | None,
    outcome: str,
    message: str = "",
    *,
    object_type: str = "",
    object_name: str = "",
    diff: str = "",
) -> AuditEntry:
    """Write one audit entry (and the same line to the log)."""
    host, name, uuid = "", object_name, ""
    if isinstance(ref, HostRef):
        host, name = ref.slug, object_name or ref.slug
    elif ref is not None:
        host, name, uuid = ref.host, ref.name, ref.uuid
        if isinstance(ref, VolumeRef):
            name = f"{ref.pool}/{ref.name}"
    entry = AuditEntry.objects.create(
        user_id=actor.user_id,
        username=actor.username,
        host=host,
        object_type=object_type or (ref.kind if ref is not None else ""),
        object_name=name[:255],
        object_uuid=uuid,
        action=action[:50],
        outcome=outcome,
        message=message[:2000],
        remote_addr=actor.address,
        via=actor.via[:20],
        diff=diff,
    )
    log.info("%s %s %s/%s: %s %s", actor.username or "-", action, host, name, outcome, message)
    return entry


def perform(actor: Actor, action: str, ref: HostRef | ObjectRef, fn: Callable[[], T]) -> T:
    """Call `fn`, audit the outcome, re-raise a VirtError for the view to show.

    If `fn` returns something with a DomainRef `.ref` (or a DomainRef), that is
    what the audit entry names (the UUID libvirt gave).
    """
    try:
        result = fn()
    except VirtError as err:
        record(actor, action, ref, Outcome.ERROR, str(err))
        raise
    named = result if isinstance(result, _REFS) else getattr(result, "ref", None)
    record(actor, action, named if isinstance(named, _REFS) else ref, Outcome.OK)
    return result
