"""The overview (hosts live in the hosts app, the audit page in people)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from vmdash import door
from vmdash.policy import Action, can
from vmdash.virt.enums import DomainState
from vmdash.virt.hosts import each_host, host_info


@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    hosts = door.visible_hosts(door.who(request))
    results = each_host([h.ref for h in hosts], host_info, settings.VMDASH_HOST_TIMEOUT)
    totals: dict[DomainState, int] = {}
    for r in results:
        if r.value:
            for state, n in r.value.counts.items():
                totals[state] = totals.get(state, 0) + n
    return render(
        request,
        "vmdash/overview.html",
        {
            "results": results,
            "totals": sorted(totals.items(), key=lambda kv: list(DomainState).index(kv[0])),
            "total": sum(totals.values()),
            "can_manage": can(door.who(request), Action.MANAGE_HOSTS),
        },
    )
