"""VM list, VM detail, lifecycle operations."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from vmdash import door
from vmdash.audit import Actor, perform
from vmdash.policy import Action, can, visible
from vmdash.render import is_htmx
from vmdash.virt import domains as virt_domains
from vmdash.virt.domains import OPS, DomainSummary, Op
from vmdash.virt.enums import DomainState
from vmdash.virt.hosts import each_host
from vmdash.virt.refs import HostRef

STATE_FILTERS: dict[str, set[DomainState]] = {
    "running": {DomainState.RUNNING, DomainState.BLOCKED, DomainState.SHUTDOWN},
    "paused": {DomainState.PAUSED, DomainState.PMSUSPENDED},
    "shutoff": {DomainState.SHUTOFF, DomainState.NOSTATE},
    "crashed": {DomainState.CRASHED},
}
SORTS: dict[str, Any] = {
    "name": lambda d: (d.name.casefold(), d.host),
    "host": lambda d: (d.host, d.name.casefold()),
    "state": lambda d: (list(DomainState).index(d.state), d.name.casefold()),
    "vcpus": lambda d: (d.vcpus, d.name.casefold()),
    "memory": lambda d: (d.memory_kib, d.name.casefold()),
    "autostart": lambda d: (not d.autostart, d.name.casefold()),
}
COLUMNS = [
    ("name", "Name"),
    ("host", "Host"),
    ("state", "State"),
    ("vcpus", "vCPUs"),
    ("memory", "Memory"),
    ("autostart", "Autostart"),
]
# The operations a list row offers; the VM page offers all of them.
ROW_OPS = (Op.START, Op.SHUTDOWN, Op.REBOOT, Op.PAUSE, Op.RESUME, Op.FORCE_OFF)


@require_GET
def domain_list(request: HttpRequest) -> HttpResponse:
    hosts = door.visible_hosts(door.who(request))
    host_filter = request.GET.get("host", "")
    if host_filter:
        hosts = [h for h in hosts if h.slug == host_filter]
    results = each_host(
        [h.ref for h in hosts], virt_domains.list_domains, settings.VMDASH_HOST_TIMEOUT
    )
    rows: list[DomainSummary] = []
    for result in results:
        rows += result.value or []
    allowed = {r for r in visible(door.who(request), [d.ref for d in rows])}
    rows = [d for d in rows if d.ref in allowed]

    state = request.GET.get("state", "")
    if state in STATE_FILTERS:
        rows = [d for d in rows if d.state in STATE_FILTERS[state]]
    q = request.GET.get("q", "").strip()
    if q:
        rows = [d for d in rows if q.casefold() in d.name.casefold()]
    sort = request.GET.get("sort", "name")
    key = SORTS.get(sort.lstrip("-"), SORTS["name"])
    rows.sort(key=key, reverse=sort.startswith("-"))

    page = Paginator(rows, settings.VMDASH_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = _with_metadata(list(page.object_list), {h.slug: h.ref for h in hosts})
    context = {
        "page": page,
        "results": results,
        "errors": [r for r in results if r.error],
        "hosts": door.visible_hosts(door.who(request)),
        "host_filter": host_filter,
        "state": state,
        "states": list(STATE_FILTERS),
        "q": q,
        "sort": sort,
        "total": len(rows),
        "row_ops": ROW_OPS,
        "columns": COLUMNS,
        "can_operate": can(door.who(request), Action.OPERATE),
    }
    template = "domains/list.html#table" if is_htmx(request) else "domains/list.html"
    return render(request, template, context)


def _with_metadata(rows: list[DomainSummary], refs: dict[str, HostRef]) -> list[DomainSummary]:
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
def domain_detail(request: HttpRequest, host: str, name: str, tab: str) -> HttpResponse:
    host_ref, _ref = door.domain(door.who(request), host, name)
    detail = virt_domains.get_detail(host_ref, name)
    return render(
        request,
        "domains/detail.html",
        {
            "d": detail.summary,
            "detail": detail,
            "host": host_ref,
            "tab": tab,
            "all_ops": list(Op),
            "can_operate": can(door.who(request), Action.OPERATE, detail.ref),
        },
    )


def _op(op: str) -> Op:
    try:
        return Op(op)
    except ValueError:
        raise Http404(f"There is no operation '{op}'.") from None


@require_GET
def domain_confirm(request: HttpRequest, host: str, name: str, op: str) -> HttpResponse:
    """The confirmation page for operations that destroy something (no JS needed)."""
    operation = _op(op)
    host_ref, _ref = door.domain(door.who(request), host, name, _action_for(operation))
    summary = virt_domains.get_summary(host_ref, name)
    return render(
        request,
        "domains/confirm.html",
        {"d": summary, "op": operation, "info": OPS[operation], "next": request.GET.get("next")},
    )


def _action_for(op: Op) -> Action:
    return Action.DELETE if op == Op.DELETE else Action.OPERATE


@require_POST
def domain_op(request: HttpRequest, host: str, name: str, op: str) -> HttpResponse:
    operation = _op(op)
    host_ref, ref = door.domain(door.who(request), host, name, _action_for(operation))
    info = OPS[operation]
    if info.confirm and request.POST.get("confirm") != name:
        return redirect("domain-confirm", host, name, operation.value)
    done = perform(
        Actor.of_request(request),
        operation.value,
        ref,
        lambda: virt_domains.run_op(host_ref, name, operation),
    )
    view = request.POST.get("view", "detail")
    if is_htmx(request):
        if operation == Op.DELETE:
            if view == "row":
                return HttpResponse("")
            response = HttpResponse(status=204)
            response["HX-Redirect"] = _list_url()
            return response
        summary = virt_domains.with_metadata(host_ref, [virt_domains.get_summary(host_ref, name)])[
            0
        ]
        template = "domains/list.html#row" if view == "row" else "domains/detail.html#header"
        return render(
            request,
            template,
            {
                "d": summary,
                "row_ops": ROW_OPS,
                "all_ops": list(Op),
                "can_operate": True,
                "host": host_ref,
            },
        )
    messages.success(request, f"{info.label}: done for VM '{done.name}'.")
    if operation == Op.DELETE or view == "row":
        return redirect("domain-list")
    return redirect("domain-detail", host, name)


def _list_url() -> str:
    from django.urls import reverse

    return reverse("domain-list")
