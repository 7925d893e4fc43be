"""The host pages' live regions (vmdash/live/regions.py routes events to them).

    host-card     host-<slug>        hosts/_host_card.html            overview, host list
    host-facts    host-facts-<slug>  hosts/host_detail.html#facts     a host's page
    state-totals  state-totals       hosts/overview.html#totals      the overview's totals

host-card-partial and host-facts-partial are the same parts for a person who
sees only some VMs of the host: no host-wide counts. The totals are per person.

Each re-reads the host when one of its VMs changes state or the host goes
down or comes back; a host that does not answer renders as unreachable.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import QueryDict

from hosts.counts import counts_for
from vmdash.live.regions import Happening, HostRegion, PageRegion, register
from vmdash.policy import Who, sees_every_vm
from vmdash.virt.enums import DomainState
from vmdash.virt.events import STATE
from vmdash.virt.hosts import HostInfo, PerHost, each_host, host_info
from vmdash.virt.refs import HostRef


def read_host(host: HostRef) -> PerHost[HostInfo]:
    """One host's facts, or the error to show (never raises for a host that is down)."""
    return each_host([host], host_info, settings.VMDASH_HOST_TIMEOUT)[0]


def totals(counts: list[dict[DomainState, int]]) -> list[tuple[DomainState, int]]:
    """VM counts by state over several hosts, in the states' order (page and push)."""
    summed: dict[DomainState, int] = {}
    for per_host in counts:
        for state, n in per_host.items():
            summed[state] = summed.get(state, 0) + n
    order = list(DomainState)
    return sorted(summed.items(), key=lambda kv: order.index(kv[0]))


def _totals_context(who: Who, query: QueryDict, hosts: list[HostRef]) -> dict[str, Any]:
    """Per person: the VMs they may see, not the hosts' totals (a count says something)."""
    results = each_host(hosts, lambda h: counts_for(who, h), settings.VMDASH_HOST_TIMEOUT)
    return {"totals": totals([r.value for r in results if r.value])}


def _totals_wants(happening: Happening) -> bool:
    return happening.message["change"] in STATE | {"up", "down"}


register(
    HostRegion(
        name="host-card",
        element_id="host-{host}",
        partial="hosts/_host_card.html",
        read=read_host,
        context=lambda host, result: {"r": result},
        may_see=sees_every_vm,
    )
)
register(
    HostRegion(
        name="host-facts",
        element_id="host-facts-{host}",
        partial="hosts/host_detail.html#facts",
        read=read_host,
        context=lambda host, result: {"host": host, "result": result},
        may_see=sees_every_vm,
    )
)
# The same parts for people who see only some VMs of the host: without the
# host-wide VM counts (the page chose the name, hosts/counts.partial_hosts).
register(
    HostRegion(
        name="host-card-partial",
        element_id="host-{host}",
        partial="hosts/_host_card.html",
        read=read_host,
        context=lambda host, result: {"r": result, "partial_hosts": {host.slug}},
    )
)
register(
    HostRegion(
        name="host-facts-partial",
        element_id="host-facts-{host}",
        partial="hosts/host_detail.html#facts",
        read=read_host,
        context=lambda host, result: {"host": host, "result": result, "partial_hosts": {host.slug}},
    )
)
register(
    PageRegion(
        name="state-totals",
        element_id="state-totals",
        partial="hosts/overview.html#totals",
        context=_totals_context,
        wants=_totals_wants,
        personal=True,
    )
)
