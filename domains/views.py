"""VM list, VM detail, lifecycle operations.

Each page's context comes from one plain function (`list_context`,
`detail_context`, `row_context`) that the view and the live push
(domains/live.py) both call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from domains.templatetags.domains import op_done
from stats.load import Load, loads
from vmdash import door
from vmdash.audit import Actor, perform
from vmdash.policy import Action, Who, can, visible
from vmdash.render import is_htmx, partial_or_redirect, wants_partial
from vmdash.virt import domains as virt_domains
from vmdash.virt.domains import OPS, DomainDetail, DomainSummary, Op
from vmdash.virt.enums import DomainState
from vmdash.virt.hosts import PerHost, each_host
from vmdash.virt.refs import HostRef

STATE_FILTERS: dict[str, set[DomainState]] = {
    "running": {DomainState.RUNNING, DomainState.BLOCKED, DomainState.SHUTDOWN},
    "paused": {DomainState.PAUSED, DomainState.PMSUSPENDED},
    "shutoff": {DomainState.SHUTOFF, DomainState.NOSTATE},
    "crashed": {DomainState.CRASHED},
}
SORTS: dict[str, Callable[[DomainSummary], Any]] = {
    "name": lambda d: (d.name.casefold(), d.host),
    "host": lambda d: (d.host, d.name.casefold()),
    "state": lambda d: (list(DomainState).index(d.state), d.name.casefold()),
    "vcpus": lambda d: (d.vcpus, d.name.casefold()),
    "memory": lambda d: (d.memory_kib, d.name.casefold()),
    "autostart": lambda d: (not d.autostart, d.name.casefold()),
}
# From the sampler (stats/load.py); the busiest first on the first click, and
# VMs without a value (not running) last either way.
LOAD_SORTS: dict[str, Callable[[Load], float | None]] = {
    "cpu": lambda load: load.cpu,
    "used": lambda load: load.used,
}
COLUMNS = [
    ("name", gettext_lazy("Name")),
    ("host", gettext_lazy("Host")),
    ("state", gettext_lazy("State")),
    ("cpu", gettext_lazy("CPU")),
    ("used", gettext_lazy("Memory use")),
    ("vcpus", gettext_lazy("vCPUs")),
    ("memory", gettext_lazy("Memory")),
    ("autostart", gettext_lazy("Autostart")),
]


def list_hosts(query: QueryDict, visible_slugs: set[str]) -> set[str]:
    """The hosts the list shows for `query` (the host filter), among those visible."""
    only = query.get("host", "")
    return ({only} & visible_slugs) if only else set(visible_slugs)


def read_rows(who: Who, hosts: list[HostRef]) -> tuple[list[DomainSummary], list[PerHost[Any]]]:
    results = each_host(hosts, virt_domains.list_domains, settings.VMDASH_HOST_TIMEOUT)
    rows = [d for r in results for d in r.value or []]
    allowed = set(visible(who, [d.ref for d in rows]))
    return [d for d in rows if d.ref in allowed], [r for r in results if r.error]


def filtered(
    rows: list[DomainSummary], query: QueryDict, load: dict[tuple[str, str], Load]
) -> list[DomainSummary]:
    state, q = query.get("state", ""), query.get("q", "").strip().casefold()
    if state in STATE_FILTERS:
        rows = [d for d in rows if d.state in STATE_FILTERS[state]]
    if q.startswith("tag:"):  # tags are case-sensitive names (vmdash/virt/xml/tags.py)
        tag = query.get("q", "").strip()[4:]
        rows = [d for d in rows if tag in (d.tags or ())]
    elif q:
        rows = [d for d in rows if q in d.name.casefold()]
    sort = query.get("sort", "name")
    pick = LOAD_SORTS.get(sort.lstrip("-"))
    if pick is None:
        return sorted(rows, key=SORTS.get(sort.lstrip("-"), SORTS["name"]), reverse=sort[:1] == "-")
    by_name = sorted(rows, key=SORTS["name"])
    value = {d.uuid: pick(load[(d.host, d.uuid)]) for d in rows if (d.host, d.uuid) in load}
    known = [d for d in by_name if value.get(d.uuid) is not None]
    known.sort(key=lambda d: value[d.uuid] or 0.0, reverse=sort[:1] == "-")
    return known + [d for d in by_name if value.get(d.uuid) is None]


def _sort_target(col: str, sort: str) -> str:
    """The sort a column's header asks for: again reversed, or its first order."""
    if col in LOAD_SORTS:
        return col if sort == f"-{col}" else f"-{col}"
    return f"-{col}" if sort == col else col


def list_context(who: Who, query: QueryDict) -> dict[str, Any]:
    """Everything the VM list shows for `who` and the page's query (page and push)."""
    hosts = door.visible_hosts(who)
    shown = list_hosts(query, {h.slug for h in hosts})
    refs = {h.slug: h.ref for h in hosts if h.slug in shown}
    rows, errors = read_rows(who, list(refs.values()))
    sort = query.get("sort", "name")
    # Every row's load only to sort by it; else only the page's rows'.
    load = loads((d.host, d.uuid) for d in rows) if sort.lstrip("-") in LOAD_SORTS else {}
    rows = filtered(rows, query, load)
    page = Paginator(rows, settings.VMDASH_PAGE_SIZE).get_page(query.get("page"))
    page_rows = with_metadata(list(page.object_list), refs)
    if not load:
        load = loads((d.host, d.uuid) for d in page_rows)
    return {
        "page": page,
        "rows": [
            (d, can(who, Action.OPERATE, d.ref), load.get((d.host, d.uuid))) for d in page_rows
        ],
        "errors": [_host_error(r) for r in errors],
        "hosts": hosts,
        "query": query,
        "host_filter": query.get("host", ""),
        "state": query.get("state", ""),
        "states": list(STATE_FILTERS),
        "q": query.get("q", "").strip(),
        "sort": sort,
        "total": len(rows),
        "columns": [(col, label, _sort_target(col, sort)) for col, label in COLUMNS],
    }


def _host_error(result: PerHost[Any]) -> dict[str, Any]:
    """A host that did not answer, and since when the live stream knows it is down."""
    from vmdash.live.recent import recorder

    return {
        "host": result.host,
        "error": result.error,
        "since": recorder().down_since(result.host.slug),
    }


def row_context(d: DomainSummary, can_operate: bool) -> dict[str, Any]:
    load = loads([(d.host, d.uuid)]).get((d.host, d.uuid))
    return {"d": d, "can_operate": can_operate, "load": load}


def detail_context(host: HostRef, detail: DomainDetail, can_operate: bool) -> dict[str, Any]:
    return {"d": detail.summary, "detail": detail, "host": host, "can_operate": can_operate}


def with_metadata(rows: list[DomainSummary], refs: dict[str, HostRef]) -> list[DomainSummary]:
    """Titles and descriptions for the rows on this page only, host by host."""
    by_host: dict[str, list[DomainSummary]] = defaultdict(list)
    for row in rows:
        by_host[row.host].append(row)
    filled: dict[str, DomainSummary] = {}
    for slug, host_rows in by_host.items():
        for row in virt_domains.with_metadata(refs[slug], host_rows):
            filled[row.uuid] = row
    return [filled.get(r.uuid, r) for r in rows]


@require_GET
@vary_on_headers("HX-Request", "HX-History-Restore-Request")
def domain_list(request: HttpRequest) -> HttpResponse:
    context = list_context(door.who(request), request.GET)
    # Back after a filter: htmx restores the history entry with a request of
    # its own, which must get the whole page (issue 7 §14).
    template = "domains/list.html#table" if wants_partial(request) else "domains/list.html"
    return render(request, template, context)


@require_GET
def domain_detail(request: HttpRequest, host: str, name: str, tab: str) -> HttpResponse:
    host_ref, _ref = door.domain(door.who(request), host, name)
    detail = virt_domains.get_detail(host_ref, name)
    can_operate = can(door.who(request), Action.OPERATE, detail.ref)
    context = {**detail_context(host_ref, detail, can_operate), "tab": tab}
    return render(request, "domains/detail.html", context)


def _op(op: str) -> Op:
    try:
        return Op(op)
    except ValueError:
        raise Http404(_("There is no operation '%(op)s'.") % {"op": op}) from None


def _action_for(op: Op) -> Action:
    return Action.DELETE if op == Op.DELETE else Action.OPERATE


@require_GET
def domain_confirm(request: HttpRequest, host: str, name: str, op: str) -> HttpResponse:
    """The confirmation page for operations that destroy something (no JS needed)."""
    operation = _op(op)
    host_ref, _ref = door.domain(door.who(request), host, name, _action_for(operation))
    summary = virt_domains.get_summary(host_ref, name)
    context = {"d": summary, "op": operation, "next": request.GET.get("next")}
    return render(request, "domains/confirm.html", context)


@require_POST
def domain_op(request: HttpRequest, host: str, name: str, op: str) -> HttpResponse:
    operation = _op(op)
    host_ref, ref = door.domain(door.who(request), host, name, _action_for(operation))
    if OPS[operation].confirm and request.POST.get("confirm") != name:
        return redirect("domain-confirm", host, name, operation.value)
    fresh = perform(
        Actor.of_request(request), operation.value, ref,
        lambda: virt_domains.run_op(host_ref, name, operation),
    )  # fmt: skip
    row = request.POST.get("view") == "row"
    done = op_done(operation, fresh.name)
    if operation == Op.DELETE:
        if row and is_htmx(request):
            return HttpResponse("")  # the row is simply removed
        return partial_or_redirect(request, None, {}, reverse("domain-list"), message=done)
    template = "domains/list.html#row" if row else "domains/detail.html#header"
    to = reverse("domain-list") if row else reverse("domain-detail", args=[host, fresh.name])
    context = {**row_context(fresh, True), "host": host_ref}
    return partial_or_redirect(request, template, context, to, message=done)
