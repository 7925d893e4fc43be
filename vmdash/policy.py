"""The access policy: who may do what to which object. Every door asks here.

Today: staff may do everything; other users see nothing. Roles per host and
per VM plug in here later without touching the views.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import Http404

from vmdash.virt.refs import DomainRef, HostRef


class Action(StrEnum):
    VIEW = "view"  # see that it exists and its state
    OPERATE = "operate"  # lifecycle: start, stop, pause, ...
    CONSOLE = "console"  # open its graphical or serial console
    CONSOLE_VIEW_ONLY = "console-view"  # watch its console without input
    DELETE = "delete"
    MANAGE_HOSTS = "manage-hosts"  # add, edit, remove hosts
    AUDIT = "audit"  # read the audit trail


Ref = HostRef | DomainRef | None


class _User(Protocol):
    @property
    def is_authenticated(self) -> bool: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def is_staff(self) -> bool: ...


@dataclass(frozen=True)
class _Who:
    """What the policy needs to know of a user, read once (request.user is lazy)."""

    active: bool
    staff: bool

    @classmethod
    def of(cls, user: _User) -> _Who:
        active = bool(user.is_authenticated and user.is_active)
        return cls(active=active, staff=active and bool(user.is_staff))


def _decide(who: _Who, action: Action, ref: Ref) -> bool:
    if not who.active:
        return False
    return who.staff


def can(user: _User, action: Action, ref: Ref = None) -> bool:
    """May `user` do `action` on `ref` (None: the site as a whole)?"""
    return _decide(_Who.of(user), action, ref)


R = TypeVar("R", HostRef, DomainRef)


def visible(user: _User, refs: Iterable[R]) -> list[R]:
    """The refs `user` may see, for lists."""
    who = _Who.of(user)
    return [r for r in refs if _decide(who, Action.VIEW, r)]


def require(user: _User, action: Action, ref: Ref = None) -> None:
    """404 for what the user may not even see; 403 for what they see but may not do.

    Site-wide actions (ref None: add a host, read the audit) are always 403.
    """
    if ref is None:
        if not can(user, action, None):
            raise PermissionDenied(f"You may not {action}.")
        return
    if action != Action.VIEW and can(user, Action.VIEW, ref):
        if not can(user, action, ref):
            raise PermissionDenied(f"You may not {action} this.")
        return
    if not can(user, action, ref):
        raise Http404("No such object, or you may not see it.")
