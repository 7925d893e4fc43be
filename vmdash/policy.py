"""The access policy: who may do what to which object. Every door asks here.

`can(who, action, ref)` is pure: it reads only the `Who` (loaded once per
request or connection by vmdash/door.py) and the ref. Roles and grants (a
later issue) change this module and `Who`, and nothing else: every entrance
(pages, htmx partials, WebSockets, the console desk, jobs, the API) reaches
the policy through the door.

Superusers may do everything; everyone else what their grants say
(vmdash/access: roles on the site, a host, one VM, pool or network, or every
VM carrying a tag, maybe until a time; "No access" wins). Staff means
nothing here. A Who indexes its rules by scope once, so that asking about
each of 1000 VMs is a few dictionary lookups, not a walk of every grant.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property
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
    CHANGE = "change"  # hardware, XML, title: redefine it
    SNAPSHOT = "snapshot"  # take, revert and delete snapshots
    CREATE = "create"  # new VMs, clones, imports on a host
    DELETE = "delete"
    MANAGE_ACCESS = "manage-access"  # give and take grants here
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
    def is_superuser(self) -> bool: ...
    def get_username(self) -> str: ...


@dataclass(frozen=True)
class Rule:
    """One grant as the policy sees it: a role's actions on a scope, maybe until a time."""

    actions: frozenset[str]
    scope: str  # site, host, vm, pool, network, tag
    host: str = ""
    uuid: str = ""
    name: str = ""  # a pool's name, for its volumes
    deny: bool = False
    tag: str = ""  # scope "tag": every VM carrying it, on any host
    expires: float | None = None  # time.time() seconds

    def live(self, now: float) -> bool:
        return self.expires is None or self.expires > now

    def reaches(self, ref: Ref) -> bool:
        """Does this rule's scope contain `ref` (None: the site itself)?"""
        if self.scope == "site":
            return True
        if self.scope == "tag":
            return isinstance(ref, DomainRef) and self.tag in (ref.tags or ())
        if ref is None or ref.host != self.host:
            return False
        if self.scope == "host":
            return True
        if isinstance(ref, VolumeRef):
            return self.scope == "pool" and ref.pool == self.name
        if isinstance(ref, HostRef):
            return False
        return ref.kind == self.scope and ref.uuid == self.uuid

    def inside(self, host: HostRef) -> bool:
        """Does this rule give something on an object of `host` (so the host can be seen)?

        A tag may be on VMs of any host: a tag grant lets one see every host
        (and, of its VMs, those carrying the tag)."""
        return not self.deny and (self.scope in ("site", "tag") or self.host == host.slug)


@dataclass(frozen=True)
class Who:
    """What the policy knows of one person, read once per request or connection."""

    user_id: int | None = None
    username: str = ""
    active: bool = False
    superuser: bool = False
    rules: tuple[Rule, ...] = ()  # their live grants, also those given to their groups
    # An API token narrowed to a role on a scope (people/tokens.py): what the
    # person may do is also bounded by these rules (the intersection).
    within: Who | None = None

    @classmethod
    def of(cls, user: _User, rules: Iterable[Rule] = ()) -> Who:
        """From a user object already in memory (the door adds what needs the database)."""
        if not (user.is_authenticated and user.is_active):
            return ANONYMOUS
        pk = user.pk
        return cls(
            user_id=pk if isinstance(pk, int) else None,
            username=user.get_username(),
            active=True,
            superuser=bool(user.is_superuser),
            rules=tuple(rules),
        )

    @cached_property
    def index(self) -> RuleIndex:
        """The rules by scope, built on first use (a Who is immutable)."""
        return RuleIndex(self.rules)

    @property
    def uses_tags(self) -> bool:
        """Does any grant of this person depend on VM tags (refs must carry them)?"""
        if self.within is not None and self.within.uses_tags:
            return True
        return not self.superuser and bool(self.index.tags)

    def narrowed(self, rules: Iterable[Rule]) -> Who:
        """This person as a token limited to `rules` sees them (never more than they may)."""
        limit = Who(self.user_id, self.username, active=True, rules=tuple(rules))
        return replace(self, within=limit)

    @property
    def next_expiry(self) -> float | None:
        """When the next of this person's grants runs out (open connections check again then)."""
        ends = [r.expires for r in self.rules if r.expires is not None and r.live(time.time())]
        return min(ends) if ends else None


ANONYMOUS = Who()


class RuleIndex:
    """A person's rules by what they reach: the site, a host, one object, a pool's
    volumes, a tag. `reaching(ref)` gathers the few that can reach a ref."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.site: list[Rule] = []
        self.hosts: dict[str, list[Rule]] = {}
        self.objects: dict[tuple[str, str, str], list[Rule]] = {}
        self.pools: dict[tuple[str, str], list[Rule]] = {}  # by pool name, for volumes
        self.tags: dict[str, list[Rule]] = {}
        self.tag_denies: list[Rule] = []
        self.seen: dict[str, list[Rule]] = {}  # rules that let one see a host, by slug
        self.seen_anywhere: list[Rule] = []  # site and tag rules: every host
        for rule in rules:
            self._add(rule)

    def _add(self, rule: Rule) -> None:
        if rule.scope == "site":
            self.site.append(rule)
        elif rule.scope == "host":
            self.hosts.setdefault(rule.host, []).append(rule)
        elif rule.scope == "tag":
            self.tags.setdefault(rule.tag, []).append(rule)
            if rule.deny:
                self.tag_denies.append(rule)
        else:
            self.objects.setdefault((rule.scope, rule.host, rule.uuid), []).append(rule)
            if rule.scope == "pool":
                self.pools.setdefault((rule.host, rule.name), []).append(rule)
        if not rule.deny:
            if rule.scope in ("site", "tag"):
                self.seen_anywhere.append(rule)
            else:
                self.seen.setdefault(rule.host, []).append(rule)

    def reaching(self, ref: Ref) -> list[Sequence[Rule]]:
        """The groups of rules whose scope contains `ref` (expired ones too: the
        caller asks). Groups, not one list: nothing is copied for each ref."""
        if ref is None:
            return [self.site]
        found: list[Sequence[Rule]] = [self.site, self.hosts.get(ref.host, ())]
        if isinstance(ref, VolumeRef):
            found.append(self.pools.get((ref.host, ref.pool), ()))
        elif not isinstance(ref, HostRef):
            found.append(self.objects.get((ref.kind, ref.host, ref.uuid), ()))
        if self.tags and isinstance(ref, DomainRef):
            if ref.tags is None:
                found.append(self.tag_denies)  # tags unknown: a "No access" on any tag refuses
            else:
                found += [self.tags[t] for t in ref.tags if t in self.tags]
        return found


def can(who: Who, action: Action, ref: Ref = None) -> bool:
    """May `who` do `action` on `ref` (None: the site as a whole)? Pure.

    Superusers may do everything. Otherwise a live grant whose scope reaches
    `ref` must include `action`, and no live "no access" grant may reach it.
    Seeing a host needs only a grant on something of that host.
    """
    if not who.active:
        return False
    if who.within is not None and not can(who.within, action, ref):
        return False
    if who.superuser:
        return True
    now = time.time()
    index = who.index
    allowed = False
    for group in index.reaching(ref):
        for rule in group:
            if rule.expires is not None and rule.expires <= now:
                continue  # ended: as if it never was
            if rule.deny:
                return False
            allowed = allowed or action in rule.actions
    if allowed:
        return True
    if action == Action.VIEW and isinstance(ref, HostRef):
        seen = (*index.seen_anywhere, *index.seen.get(ref.slug, ()))
        return any(r.live(now) for r in seen)
    return False


def can_somewhere(who: Who, action: Action) -> bool:
    """Does `who` hold `action` on anything at all (to offer a page that lists those places)?"""
    if not who.active:
        return False
    if who.within is not None and not can_somewhere(who.within, action):
        return False
    if who.superuser:
        return True
    now = time.time()
    return any(action in r.actions and not r.deny and r.live(now) for r in who.rules)


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


def sees_every_vm(who: Who, host: HostRef) -> bool:
    """May `who` see every VM of `host`, so host-wide counts tell them nothing new?

    True for superusers and for a live VIEW grant on the site or the host with
    no live "No access" that could take a VM of the host away (one on the
    site, the host, a VM of it, or any tag). Otherwise the pages count only
    the VMs this person may see (a count is information too).
    """
    if not who.active:
        return False
    if who.within is not None and not sees_every_vm(who.within, host):
        return False
    if who.superuser:
        return True
    now = time.time()
    index = who.index
    wide = (*index.site, *index.hosts.get(host.slug, ()))
    if not any(Action.VIEW in r.actions and not r.deny and r.live(now) for r in wide):
        return False
    narrow = [r for (_k, h, _u), rules in index.objects.items() if h == host.slug for r in rules]
    denies = (*wide, *narrow, *index.tag_denies)
    return not any(r.deny and r.live(now) for r in denies)
