"""The registry of live regions: the parts of a page that follow events.

Each app declares its own regions in `<app>/live.py` (found by
`autodiscover()` through INSTALLED_APPS); this package routes events to them
and never imports an app. A region names its DOM id pattern, the named
partial that renders it (the same one the page used), the function that
re-reads its data and the function that turns it into the partial's
context, and the Action needed to see it. Four shapes:

    ObjectRegion  one object's part (a VM's row, header, facts), by host and UUID;
                  re-read on every event about that object
    HostRegion    one host's part (its card, its facts), by host; re-read
                  when an object of the host changes state or the host goes up or down
    PageRegion    a whole-page part (the VM table, the totals): re-rendered from
                  the page's query when `wants` says an event concerns it
    SeriesRegion  numbers drawn by the page (a chart, a load bar), by host and
                  object (or the host itself): the sampler's values of each
                  tick are relayed as JSON (live/ticks.py), nothing is rendered

A page marks each region with `data-live="<name>"` (plus `data-host`,
`data-uuid`); live.js sends them when it subscribes.

Partials are rendered once per event and per variant (may the user act on
the object or not), without any request or user: nothing of one user can end
up in what another receives. Each consumer asks the policy for its own user,
picks the variant and puts its own CSRF token in for the placeholder. Page
regions marked `personal` are rendered per user (their context function
receives the user's Who).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.module_loading import autodiscover_modules

from vmdash import policy
from vmdash.live.messages import LiveMessage, host_group, object_group, status_group
from vmdash.policy import Action, Who
from vmdash.virt.events import STATE, ObjectKind
from vmdash.virt.refs import HostRef

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_REGIONS = 1000
CSRF_PLACEHOLDER = "vmdashlivecsrfplaceholder" + "0" * 39
HOST_CHANGES = STATE | {"up", "down"}


@dataclass(frozen=True)
class ObjectRegion:
    """One object's part of a page, e.g. a VM's row."""

    name: str  # data-live value
    element_id: str  # "dom-{uuid}"
    partial: str
    read: Callable[[HostRef, str], Any]  # (host, uuid) -> the object (with .ref), None once gone
    context: Callable[[HostRef, Any, bool], dict[str, Any]]  # (host, object, may act)
    kind: ObjectKind = ObjectKind.DOMAIN
    action: Action = Action.VIEW  # needed to see it
    act: Action | None = Action.OPERATE  # the variant: may the user act on it?
    gone: str = ""  # partial once the object is gone (host, uuid, name); "" removes the element
    tag: str = "div"  # the element's tag, to remove it

    def element(self, host: str, uuid: str) -> str:
        return self.element_id.format(host=host, uuid=uuid)


@dataclass(frozen=True)
class HostRegion:
    """One host's part of a page, e.g. its card."""

    name: str
    element_id: str  # "host-{host}"
    partial: str
    read: Callable[
        [HostRef], Any
    ]  # (host) -> what the partial shows (never raises for a down host)
    context: Callable[[HostRef, Any], dict[str, Any]]
    action: Action = Action.VIEW
    changes: frozenset[str] = HOST_CHANGES  # object changes (and up/down) that re-render it
    # More than `action`, when what it shows depends on more (host-wide counts:
    # only for who sees every VM); the page picks the region, the server checks.
    may_see: Callable[[Who, HostRef], bool] | None = None


@dataclass(frozen=True)
class Happening:
    """What a page region is told about an event."""

    message: LiveMessage
    query: QueryDict
    shown: bool  # the page shows this object in an object region
    gone: bool  # ... and its re-read found nothing


def _every_host(query: QueryDict, visible: dict[str, HostRef]) -> set[str]:
    return set(visible)


@dataclass(frozen=True)
class PageRegion:
    """A part of a page over several hosts, e.g. the VM table."""

    name: str
    element_id: str
    partial: str
    # personal: (who, query, hosts) -> context; else (hosts) -> context, shared by
    # every user who sees the same hosts.
    context: Callable[..., dict[str, Any]]
    wants: Callable[[Happening], bool]
    hosts: Callable[[QueryDict, dict[str, HostRef]], set[str]] = _every_host
    personal: bool = True
    action: Action = Action.VIEW


@dataclass(frozen=True)
class SeriesRegion:
    """A part of a page that draws the sampler's numbers of one object or host."""

    name: str
    kind: ObjectKind | None = ObjectKind.DOMAIN  # None: the host's own series
    action: Action = Action.VIEW


Region = ObjectRegion | HostRegion | PageRegion | SeriesRegion


@dataclass
class Registry:
    regions: dict[str, Region] = field(default_factory=dict)
    refs: dict[ObjectKind, Callable[[str, str, str], Any]] = field(default_factory=dict)
    discovered: bool = False

    def register(self, region: Region) -> Region:
        self.regions[region.name] = region
        return region

    def unregister(self, name: str) -> None:
        self.regions.pop(name, None)

    def ref_maker(self, kind: ObjectKind, make: Callable[[str, str, str], Any]) -> None:
        """How to name an object of `kind` for the policy: (host, name, uuid) -> ref."""
        self.refs[kind] = make

    def get(self, name: object) -> Region | None:
        self.discover()
        return self.regions.get(name) if isinstance(name, str) else None

    def discover(self) -> None:
        if not self.discovered:
            self.discovered = True
            autodiscover_modules("live")


_registry = Registry()


def registry() -> Registry:
    return _registry


def register(region: Region) -> Region:
    return _registry.register(region)


def ref_for(kind: str, host: HostRef, name: str, uuid: str) -> Any:
    """The policy's ref for an object; the host's when no app named the kind."""
    make = _registry.refs.get(ObjectKind(kind))
    return make(host.slug, name, uuid) if make is not None else host


@dataclass
class Subscription:
    """What one page shows, limited to the hosts its user may see."""

    visible: dict[str, HostRef] = field(default_factory=dict)
    query: QueryDict = field(default_factory=QueryDict)
    objects: dict[tuple[str, str, str], list[ObjectRegion]] = field(default_factory=dict)
    host_regions: dict[str, list[HostRegion]] = field(default_factory=dict)
    pages: list[PageRegion] = field(default_factory=list)
    # host -> key ("" for the host, else the object's UUID) -> the region
    series: dict[str, dict[str, SeriesRegion]] = field(default_factory=dict)

    @classmethod
    def parse(cls, regions: Any, query: Any, visible: dict[str, HostRef]) -> Subscription:
        """From the client's message; anything malformed, unknown or not visible is ignored."""
        text = query[:2000].lstrip("?") if isinstance(query, str) else ""
        sub = cls(visible=dict(visible), query=QueryDict(text))
        for item in regions[:MAX_REGIONS] if isinstance(regions, list) else []:
            if isinstance(item, dict):
                sub._add(item)
        return sub

    def _add(self, item: dict[str, Any]) -> None:
        region, host, uuid = registry().get(item.get("region")), item.get("host"), item.get("uuid")
        if isinstance(region, PageRegion):
            if region not in self.pages:
                self.pages.append(region)
        elif not isinstance(host, str) or host not in self.visible:
            return
        elif isinstance(region, SeriesRegion):
            if region.kind is None:
                self.series.setdefault(host, {})[""] = region
            elif UUID.match(str(uuid)):
                self.series.setdefault(host, {})[str(uuid)] = region
        elif isinstance(region, HostRegion):
            shown = self.host_regions.setdefault(host, [])
            if region not in shown:
                shown.append(region)
        elif isinstance(region, ObjectRegion) and UUID.match(str(uuid)):
            shown_o = self.objects.setdefault((region.kind.value, host, str(uuid)), [])
            if region not in shown_o:
                shown_o.append(region)

    def page_hosts(self, page: PageRegion) -> set[str]:
        return page.hosts(self.query, self.visible) & set(self.visible)

    def host_level(self) -> set[str]:
        """Hosts of which every event matters here (lists, counts)."""
        hosts = set(self.host_regions)
        for page in self.pages:
            hosts |= self.page_hosts(page)
        return hosts

    def hosts(self) -> set[str]:
        """Every host something on the page belongs to."""
        return self.host_level() | {host for _kind, host, _uuid in self.objects}

    def groups(self) -> set[str]:
        host_level = self.host_level()
        groups = {host_group(h) for h in host_level}
        for kind, host, uuid in self.objects:
            if host not in host_level:
                groups.add(object_group(host, kind, uuid))
                groups.add(status_group(host))
        return groups

    def is_empty(self) -> bool:
        return not self.hosts()


def visible_hosts(who: Who) -> dict[str, HostRef]:
    """The enabled hosts `who` may see, by slug (database)."""
    from vmdash.models import Host

    refs = [h.ref for h in Host.objects.filter(enabled=True)]
    return {r.slug: r for r in policy.visible(who, refs)}


def neutral(partial: str, context: dict[str, Any]) -> str:
    """A partial rendered without any request or user; the CSRF token a placeholder."""
    return render_to_string(partial, {**context, "csrf_token": CSRF_PLACEHOLDER})


def render_object(region: ObjectRegion, host: HostRef, obj: Any, may_act: bool) -> str:
    return neutral(region.partial, region.context(host, obj, may_act))


def render_gone(region: ObjectRegion, host: HostRef, uuid: str, name: str) -> str:
    if region.gone:
        return neutral(region.gone, {"host": host, "uuid": uuid, "name": name})
    element = escape(region.element(host.slug, uuid))
    return f'<{region.tag} id="{element}" hx-swap-oob="delete"></{region.tag}>'


def render_host(region: HostRegion, host: HostRef, value: Any) -> str:
    return neutral(region.partial, region.context(host, value))


def render_page(region: PageRegion, who: Who, query: QueryDict, hosts: list[HostRef]) -> str:
    context = region.context(who, query, hosts) if region.personal else region.context(hosts)
    return neutral(region.partial, context)


def toast_html(text: str, level: str = "info", count: int = 1) -> str:
    """A toast; `count` events of one kind told at once show their count."""
    return neutral("live/_toast.html", {"text": text, "level": level, "count": count})


def hosts_html(down: dict[str, float], visible: dict[str, HostRef]) -> str:
    """The header's count of hosts that do not answer (issue 7 §16)."""
    labels = sorted(visible[h].label for h in down if h in visible)
    return neutral("live/_hosts_down.html", {"labels": labels, "count": len(labels)})


def cache_key(fn: Callable[..., Any], *parts: Hashable) -> tuple[Hashable, ...]:
    """Readers shared by several regions (a VM's row and header) read once."""
    return (getattr(fn, "__module__", ""), getattr(fn, "__qualname__", repr(fn)), *parts)
