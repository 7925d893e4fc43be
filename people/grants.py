"""A person's grants as they read them: by scope, role, actions in words, end, and through whom.

The same rows serve "What can I do?" on /me/ and the grants of a user's page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from vmdash.access.models import Grant
from vmdash.policy import Action

ACTION_WORDS = {
    Action.VIEW: gettext_lazy("see it"),
    Action.OPERATE: gettext_lazy("start, stop and pause"),
    Action.CONSOLE: gettext_lazy("use the console"),
    Action.CONSOLE_VIEW_ONLY: gettext_lazy("watch the console"),
    Action.CHANGE: gettext_lazy("change hardware and XML"),
    Action.SNAPSHOT: gettext_lazy("take and revert snapshots"),
    Action.CREATE: gettext_lazy("create VMs"),
    Action.DELETE: gettext_lazy("delete"),
    Action.MANAGE_ACCESS: gettext_lazy("give and take access"),
    Action.MANAGE_STORAGE: gettext_lazy("manage storage"),
    Action.MANAGE_NETWORKS: gettext_lazy("manage networks"),
    Action.MANAGE_HOSTS: gettext_lazy("manage hosts"),
    Action.AUDIT: gettext_lazy("read the audit trail"),
}
_SCOPE_ORDER = ["site", "host", "vm", "pool", "network"]


@dataclass(frozen=True)
class GrantRow:
    role: str
    deny: bool
    actions: str  # in words
    ends: str  # "no end", "until Fri 18:00", "ended Thu 12:00"
    ended: bool
    through: str  # "" (given to the person) or the group's name
    note: str


@dataclass(frozen=True)
class ScopeBlock:
    heading: str
    rows: list[GrantRow]


def grants_of(user: User) -> list[Grant]:
    """Every grant of `user`, given to them or to one of their groups, live or ended."""
    groups = list(user.groups.values_list("pk", flat=True))
    return list(
        Grant.objects.filter(Q(user=user) | Q(group_id__in=groups))
        .select_related("role", "group")
        .order_by("scope", "host", "object_name", "id")
    )


def by_scope(grants: list[Grant], now: datetime | None = None) -> list[ScopeBlock]:
    """Grants grouped under one heading per scope: the site first, then hosts, then objects."""
    now = now or timezone.now()
    blocks: dict[tuple[int, str, str], list[GrantRow]] = {}
    heads: dict[tuple[int, str, str], str] = {}
    for g in grants:
        key = (_SCOPE_ORDER.index(g.scope), g.host, g.object_name or g.object_uuid)
        heads[key] = heading(g)
        blocks.setdefault(key, []).append(row(g, now))
    return [ScopeBlock(heads[k], blocks[k]) for k in sorted(blocks)]


def heading(g: Grant) -> str:
    name = {"name": g.object_name or g.object_uuid, "host": g.host}
    if g.scope == Grant.Scope.SITE:
        return _("The whole site")
    if g.scope == Grant.Scope.HOST:
        return _("Host %(host)s and everything on it") % name
    if g.scope == Grant.Scope.VM:
        return _("VM %(name)s on %(host)s") % name
    if g.scope == Grant.Scope.POOL:
        return _("Storage pool %(name)s on %(host)s") % name
    return _("Network %(name)s on %(host)s") % name


def row(g: Grant, now: datetime) -> GrantRow:
    return GrantRow(
        role=str(g.role),
        deny=g.role.deny,
        actions=actions_in_words(g.role.actions, g.role.deny),
        ends=ends_in_words(g.expires_at, now),
        ended=g.expires_at is not None and g.expires_at <= now,
        through=g.group.name if g.group is not None else "",
        note=g.note,
    )


def actions_in_words(actions: list[str], deny: bool = False) -> str:
    if deny:
        return _("nothing: refuses everything here, whatever else is granted")
    known = [ACTION_WORDS[Action(a)] for a in Action if a in actions]
    return ", ".join(str(w) for w in known) or _("nothing")


def ends_in_words(expires_at: datetime | None, now: datetime) -> str:
    """'no end', 'until Fri 18:00' (within a week), 'until 3 Oct 2025 18:00', 'ended ...'."""
    if expires_at is None:
        return _("no end")
    local = timezone.localtime(expires_at)
    near = abs(expires_at - now) < timedelta(days=6)
    when = formats.date_format(local, "D H:i" if near else "j M Y H:i")
    if expires_at <= now:
        return _("ended %(when)s") % {"when": when}
    return _("until %(when)s") % {"when": when}
