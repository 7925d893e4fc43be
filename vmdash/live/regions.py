"""Which parts of a page update live, and the partial that renders each.

A page marks its updatable regions with `data-live` (and `data-host`,
`data-uuid`); live.js sends them when it subscribes. Every region is rendered
by the partial that rendered it on first load, for the same user:

    region         element id          rendered by
    domain-table   domain-table        the VM list view, with the page's query (#table)
    domain-row     dom-<uuid>          domains/list.html#row
    domain-header  dom-head-<uuid>     domains/detail.html#header (live/_gone.html once deleted)
    host-card      host-<slug>         vmdash/_host_card.html
    host-facts     host-facts-<slug>   vmdash/host_detail.html#facts
    state-totals   state-totals        vmdash/overview.html#totals

Everything here is synchronous and runs off the event loop (templates; the
list view touches the database). The policy is asked by the consumer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http import HttpRequest, QueryDict
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.html import escape
from django_htmx.middleware import HtmxDetails

from vmdash import policy
from vmdash.live.messages import host_group, object_group, status_group
from vmdash.virt.domains import DomainSummary, Op
from vmdash.virt.enums import DomainState
from vmdash.virt.events import ObjectKind
from vmdash.virt.hosts import HostInfo, PerHost
from vmdash.virt.refs import HostRef

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_REGIONS = 1000
REGION_TYPES = (
    "domain-table",
    "domain-row",
    "domain-header",
    "host-card",
    "host-facts",
    "state-totals",
)


@dataclass
class Subscription:
    """What one page shows, limited to the hosts its user may see."""

    visible: dict[str, HostRef] = field(default_factory=dict)
    table: bool = False
    query: str = ""
    rows: dict[str, str] = field(default_factory=dict)  # uuid -> host slug
    headers: dict[str, str] = field(default_factory=dict)
    cards: set[str] = field(default_factory=set)
    facts: set[str] = field(default_factory=set)
    totals: bool = False

    @classmethod
    def parse(cls, regions: Any, query: Any, visible: dict[str, HostRef]) -> Subscription:
        """From the client's message; anything malformed or not visible is ignored."""
        sub = cls(visible=dict(visible), query=query[:2000] if isinstance(query, str) else "")
        if not isinstance(regions, list):
            return sub
        for region in regions[:MAX_REGIONS]:
            if not isinstance(region, dict):
                continue
            kind, host, uuid = region.get("region"), region.get("host"), region.get("uuid")
            if kind == "domain-table":
                sub.table = True
            elif kind == "state-totals":
                sub.totals = True
            elif not isinstance(host, str) or host not in visible:
                continue
            elif kind == "host-card":
                sub.cards.add(host)
            elif kind == "host-facts":
                sub.facts.add(host)
            elif kind in ("domain-row", "domain-header") and UUID.match(str(uuid)):
                (sub.rows if kind == "domain-row" else sub.headers)[str(uuid)] = host
        return sub

    @property
    def state_filter(self) -> str:
        return QueryDict(self.query.lstrip("?")).get("state", "")

    def table_hosts(self) -> set[str]:
        if not self.table:
            return set()
        only = QueryDict(self.query.lstrip("?")).get("host", "")
        if only:
            return {only} if only in self.visible else set()
        return set(self.visible)

    def host_level(self) -> set[str]:
        """Hosts of which every VM event matters here (lists, counts)."""
        hosts = self.table_hosts() | self.cards | self.facts
        if self.totals:
            hosts |= set(self.visible)
        return hosts

    def hosts(self) -> set[str]:
        """Every host something on the page belongs to."""
        return self.host_level() | set(self.rows.values()) | set(self.headers.values())

    def groups(self) -> set[str]:
        host_level = self.host_level()
        groups = {host_group(h) for h in host_level}
        for uuid, host in [*self.rows.items(), *self.headers.items()]:
            if host not in host_level:
                groups.add(object_group(host, ObjectKind.DOMAIN, uuid))
                groups.add(status_group(host))
        return groups

    def is_empty(self) -> bool:
        return not self.hosts()


def visible_hosts(who: policy.Who) -> dict[str, HostRef]:
    """The enabled hosts `who` may see, by slug (database)."""
    from vmdash.models import Host

    refs = [h.ref for h in Host.objects.filter(enabled=True)]
    return {r.slug: r for r in policy.visible(who, refs)}


def delete_row(uuid: str) -> str:
    return f'<tr id="dom-{escape(uuid)}" hx-swap-oob="delete"></tr>'


# Partials are rendered once per event and per variant (may the user operate
# the VM or not), without any request or user: nothing of one user can end up
# in what another receives. Each consumer asks the policy for its own user,
# picks the variant, and puts in its own CSRF token for the placeholder.
CSRF_PLACEHOLDER = "vmdashlivecsrfplaceholder" + "0" * 39


def _neutral(name: str, context: dict[str, Any]) -> str:
    return render_to_string(name, {**context, "csrf_token": CSRF_PLACEHOLDER})


def row_html(d: DomainSummary, can_operate: bool) -> str:
    from domains.views import ROW_OPS

    return _neutral(
        "domains/list.html#row", {"d": d, "row_ops": ROW_OPS, "can_operate": can_operate}
    )


def header_html(host: HostRef, d: DomainSummary, can_operate: bool) -> str:
    return _neutral(
        "domains/detail.html#header",
        {"d": d, "host": host, "all_ops": list(Op), "can_operate": can_operate},
    )


def gone_html(host: HostRef, uuid: str, name: str) -> str:
    return _neutral("live/_gone.html", {"host": host, "uuid": uuid, "name": name})


def host_card_html(result: PerHost[HostInfo]) -> str:
    return _neutral("vmdash/_host_card.html", {"r": result})


def host_facts_html(result: PerHost[HostInfo]) -> str:
    return _neutral("vmdash/host_detail.html#facts", {"host": result.host, "result": result})


def totals_html(counts: list[PerHost[dict[DomainState, int]]]) -> str:
    """The overview's totals over `counts` (the hosts a user may see)."""
    totals: dict[DomainState, int] = {}
    for result in counts:
        for state, n in (result.value or {}).items():
            totals[state] = totals.get(state, 0) + n
    ordered = sorted(totals.items(), key=lambda kv: list(DomainState).index(kv[0]))
    return _neutral("vmdash/overview.html#totals", {"totals": ordered})


def toast_html(text: str, level: str = "info") -> str:
    return _neutral("live/_toast.html", {"text": text, "level": level})


class Renderer:
    """What is personal to one WebSocket: its CSRF token, and the VM table,
    which the list view renders for this user and this page's query."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        self.csrf_token = get_token(request) if "CSRF_COOKIE" in request.META else ""

    def personal(self, html: str) -> str:
        return html.replace(CSRF_PLACEHOLDER, self.csrf_token)

    def table(self, query: str) -> str:
        from domains.views import domain_list

        response = domain_list(_copy(self.request, "/domains/", query))
        return response.content.decode()


def _copy(request: HttpRequest, path: str, query: str) -> HttpRequest:
    clone = HttpRequest()
    clone.method = "GET"
    clone.path = clone.path_info = path
    clone.GET = QueryDict(query.lstrip("?"))
    clone.META = {**request.META, "QUERY_STRING": query.lstrip("?"), "PATH_INFO": path}
    clone.COOKIES = request.COOKIES
    clone.user = request.user
    if hasattr(request, "session"):
        clone.session = request.session
    clone.htmx = HtmxDetails(clone)  # type: ignore[attr-defined]
    return clone


def host_timeout() -> float:
    return float(settings.VMDASH_HOST_TIMEOUT)
