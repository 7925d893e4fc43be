"""The Access tab of one VM, host, pool or network: who may do what here, and why.

Pure reading: the grants that reach the object (its own, its host's, the
site's, a tag's), and for each person they touch what the policy answers for
this object. Seeing the tab needs Action.MANAGE_ACCESS or Action.AUDIT on the
object, as Proxmox's Permissions panel needs Permissions.Modify or Sys.Audit;
changing grants here needs Action.MANAGE_ACCESS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from vmdash import door, policy
from vmdash.access.models import Grant
from vmdash.access.rules import rule_of, rules_of
from vmdash.policy import Action, Who
from vmdash.virt.refs import DomainRef, HostRef, NetworkRef, PoolRef

Here = HostRef | DomainRef | PoolRef | NetworkRef
KINDS = ("host", "vm", "pool", "network")

ACTION_LABELS = {
    Action.VIEW: gettext_lazy("view"),
    Action.OPERATE: gettext_lazy("operate"),
    Action.CONSOLE: gettext_lazy("console"),
    Action.CONSOLE_VIEW_ONLY: gettext_lazy("watch the console"),
    Action.CHANGE: gettext_lazy("change"),
    Action.SNAPSHOT: gettext_lazy("snapshots"),
    Action.CREATE: gettext_lazy("create"),
    Action.DELETE: gettext_lazy("delete"),
    Action.MANAGE_ACCESS: gettext_lazy("manage access"),
    Action.MANAGE_STORAGE: gettext_lazy("manage storage"),
    Action.MANAGE_NETWORKS: gettext_lazy("manage networks"),
    Action.MANAGE_HOSTS: gettext_lazy("manage hosts"),
    Action.AUDIT: gettext_lazy("read the audit"),
}
KIND_LABELS = {
    "host": gettext_lazy("host"),
    "vm": gettext_lazy("VM"),
    "pool": gettext_lazy("pool"),
    "network": gettext_lazy("network"),
}


def find(who: Who, kind: str, host: str, name: str = "", action: Action = Action.VIEW) -> Here:
    """The object through its own door (404 / 403), then `action` on it."""
    if kind == "host":
        return door.host(who, host, action)
    if kind == "vm":
        return door.domain(who, host, name, action)[1]
    if kind == "pool":
        return door.pool(who, host, name, action)[1]
    return door.network(who, host, name, action)[1]


def may_see(who: Who, ref: Here) -> bool:
    return policy.can(who, Action.MANAGE_ACCESS, ref) or policy.can(who, Action.AUDIT, ref)


def require_to_see(who: Who, ref: Here) -> None:
    if not may_see(who, ref):
        raise PermissionDenied(_("You may not see who has access here."))


def _is_here(grant: Grant, ref: Here) -> bool:
    return grant.scope == ref.kind and (
        grant.host == ref.slug if isinstance(ref, HostRef) else grant.object_uuid == ref.uuid
    )


def _via(grant: Grant, ref: Here) -> str:
    if grant.scope == Grant.Scope.SITE:
        return _("the whole site")
    if _is_here(grant, ref):
        return _("this %(kind)s") % {"kind": KIND_LABELS[ref.kind]}
    if grant.scope == Grant.Scope.HOST:
        return _("host %(host)s") % {"host": grant.host}
    if grant.scope == Grant.Scope.TAG:
        return _("tag %(tag)s") % {"tag": grant.tag}
    kind = KIND_LABELS.get(grant.scope, grant.scope)
    return _("%(kind)s %(name)s (lets them see the host)") % {
        "kind": kind,
        "name": grant.object_name or grant.object_uuid,
    }


@dataclass
class Line:
    """One grant that reaches here."""

    grant: Grant
    via: str
    live: bool
    may_remove: bool
    remove_url: str = ""


def grants_here(who: Who, ref: Here) -> list[Line]:
    """Every grant whose scope reaches `ref`, live or ended (ended ones shown greyed)."""
    wide = Q(scope__in=[Grant.Scope.SITE, Grant.Scope.TAG])
    grants = Grant.objects.filter(wide | Q(host=ref.host)).select_related(
        "user", "group", "role", "created_by"
    )
    lines = []
    for g in grants:
        rule = rule_of(g)
        if not (rule.reaches(ref) or (isinstance(ref, HostRef) and rule.inside(ref))):
            continue
        lines.append(Line(g, _via(g, ref), not g.expired, may_remove(who, g)))
    return lines


def scope_ref(grant: Grant) -> policy.Ref:
    """The object a grant is about, as the policy names it (None: the site, or a tag)."""
    kinds: dict[str, type[DomainRef | PoolRef | NetworkRef]] = {
        "vm": DomainRef,
        "pool": PoolRef,
        "network": NetworkRef,
    }
    if grant.scope == Grant.Scope.HOST:
        return HostRef(grant.host, "")
    if grant.scope in kinds:
        return kinds[grant.scope](grant.host, grant.object_name, grant.object_uuid)
    return None


def may_remove(who: Who, grant: Grant) -> bool:
    return policy.can(who, Action.MANAGE_ACCESS, scope_ref(grant))


@dataclass
class Person:
    """One person and what the policy lets them do here, with the grants that say so."""

    username: str
    superuser: bool = False
    active: bool = True
    denied: bool = False
    actions: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)


def people_here(ref: Here, lines: list[Line]) -> list[Person]:
    """Everyone a live grant here touches, and every superuser, with their rights here."""
    live = [line.grant for line in lines if line.live]
    users = get_user_model().objects.filter(
        Q(is_superuser=True)
        | Q(pk__in=[g.user_id for g in live if g.user_id])
        | Q(groups__in=[g.group_id for g in live if g.group_id])
    )
    people = []
    for user in users.distinct().prefetch_related("groups").order_by("username"):
        people.append(_person(user, ref, live))
    return people


def _person(user: Any, ref: Here, live: list[Grant]) -> Person:
    username = user.get_username()
    if not user.is_active:
        return Person(username, active=False, denied=True)
    if user.is_superuser:
        return Person(username, superuser=True, actions=[str(a) for a in Action])
    who = Who.of(user, rules_of(user.pk))
    groups = {g.pk: g.name for g in user.groups.all()}
    why = []
    for g in live:
        if g.user_id == user.pk:
            why.append(f"{g.role} · {_via(g, ref)}")
        elif g.group_id in groups:
            why.append(
                _("%(role)s · %(via)s · through group %(group)s")
                % {"role": g.role, "via": _via(g, ref), "group": groups[g.group_id]}
            )
    actions = [str(a) for a in Action if policy.can(who, a, ref)]
    denied = not actions and any(g.role.deny for g in live if _touches(g, user.pk, groups))
    return Person(username, denied=denied, actions=actions, why=why)


def _touches(grant: Grant, user_id: int, groups: dict[int, str]) -> bool:
    return grant.user_id == user_id or grant.group_id in groups


def label(action: str) -> str:
    return str(ACTION_LABELS.get(Action(action), action))
