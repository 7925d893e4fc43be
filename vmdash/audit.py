"""Carry out a mutation on behalf of a person and write it to the audit trail."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.http import HttpRequest

from vmdash.models import AuditEntry
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import DomainRef, HostRef

log = logging.getLogger("vmdash.audit")
T = TypeVar("T")


def record(
    request: HttpRequest,
    action: str,
    ref: HostRef | DomainRef | None,
    outcome: str,
    message: str = "",
    *,
    object_type: str = "",
) -> AuditEntry:
    user = request.user if request.user.is_authenticated else None
    host, name, uuid = "", "", ""
    if isinstance(ref, DomainRef):
        host, name, uuid, object_type = ref.host, ref.name, ref.uuid, object_type or "vm"
    elif isinstance(ref, HostRef):
        host, name, object_type = ref.slug, ref.slug, object_type or "host"
    entry = AuditEntry.objects.create(
        user=user,
        username=user.get_username() if user else "",
        host=host,
        object_type=object_type,
        object_name=name,
        object_uuid=uuid,
        action=action,
        outcome=outcome,
        message=message[:2000],
        remote_addr=request.META.get("REMOTE_ADDR") or None,
    )
    log.info("%s %s %s/%s: %s %s", entry.username, action, host, name, outcome, message)
    return entry


def perform(
    request: HttpRequest,
    action: str,
    ref: DomainRef | HostRef,
    fn: Callable[[], T],
) -> T:
    """Call `fn`, audit the outcome, re-raise a VirtError for the view to show.

    If `fn` returns a DomainRef (with the UUID libvirt gave), that is what
    the audit entry names.
    """
    try:
        result = fn()
    except VirtError as err:
        record(request, action, ref, AuditEntry.Outcome.ERROR, str(err))
        raise
    record(request, action, result if isinstance(result, DomainRef) else ref, "ok")
    return result
