"""The access policy: who may do what to which object. Every door asks here.

`can(who, action, ref)` is pure: it reads only the `Who` (loaded once per
request or connection by vmdash/door.py) and the ref. Roles and grants (a
later issue) change this module and `Who`, and nothing else: every entrance
(pages, htmx partials, WebSockets, the console desk, jobs, the API) reaches
the policy through the door.

Today: superusers and staff may do everything; other users see nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _

from vmdash.virt.refs import DomainRef, HostRef, NetworkRef, ObjectRef, PoolRef, VolumeRef


class Action(StrEnum):
    VIEW = "view"  # see that it exists and its state
    OPERATE = "operate"  # lifecycle: start, stop, pause, ...
    CONSOLE = "console"  # open its graphical or serial console
    CONSOLE_VIEW_ONLY = "console-view"  # watch its console without input
    DELETE = "delete"
    MANAGE_STORAGE = "manage-storage"  # pools and volumes: create, change, delete, upload
    MANAGE_NETWORKS = "manage-networks"  # virtual networks: create, change, delete
    MANAGE_HOSTS = "manage-hosts"  # add, edit, remove hosts
    AUDIT = "audit"  # read the audit trail


Ref = HostRef | ObjectRef | None


class _User(Protocol):
    @property
    def pk(self) -> object: ...
    @property
    def is_authenticated(self) -> bool: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def is_staff(self) -> bool: ...
    @property
    def is_superuser(self) -> bool: ...
    def get_username(self) -> str: ...


@dataclass(frozen=True)
class Who:
    """What the policy knows of one person, read once per request or connection."""

    user_id: int | None = None
    username: str = ""
    active: bool = False
    staff: bool = False
    superuser: bool = False
    groups: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, user: _User, groups: Iterable[str] = ()) -> Who:
        """From a user object already in memory (the door adds what needs the database)."""
        if not (user.is_authenticated and user.is_active):
            return ANONYMOUS
        pk = user.pk
        return cls(
            user_id=pk if isinstance(pk, int) else None,
            username=user.get_username(),
            active=True,
            staff=bool(user.is_staff),
            superuser=bool(user.is_superuser),
            groups=frozenset(groups),
        )


ANONYMOUS = Who()


def can(who: Who, action: Action, ref: Ref = None) -> bool:
    """May `who` do `action` on `ref` (None: the site as a whole)? Pure."""
    if not who.active:
        return False
    return who.superuser or who.staff


R = TypeVar("R", HostRef, DomainRef, PoolRef, VolumeRef, NetworkRef)


def visible(who: Who, refs: Iterable[R]) -> list[R]:
    """The refs `who` may see, for lists."""
    return [r for r in refs if can(who, Action.VIEW, r)]


def require(who: Who, action: Action, ref: Ref = None) -> None:
    """404 for what `who` may not even see; 403 for what they see but may not do.

    Site-wide actions (ref None: add a host, read the audit) are always 403.
    """
    if ref is None:
        if not can(who, action, None):
            raise PermissionDenied(_("You may not do this."))
        return
    if not can(who, Action.VIEW, ref):
        raise Http404(_("No such object, or you may not see it."))
    if action != Action.VIEW and not can(who, action, ref):
        raise PermissionDenied(_("You may not do this to %(name)s.") % {"name": _label(ref)})


def _label(ref: HostRef | ObjectRef) -> str:
    return ref.label if isinstance(ref, HostRef) else ref.name
