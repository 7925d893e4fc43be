"""The VM pages' live regions (vmdash/live/regions.py routes events to them).

domain-table   domain-table      domains/list.html#table     the list, for the page's query
domain-row     dom-<uuid>        domains/list.html#row
domain-header  dom-head-<uuid>   domains/detail.html#header  (live/_gone.html once deleted)
domain-facts   dom-facts-<uuid>  domains/detail.html#facts   the overview tab's facts
domain-devices dom-devices-<uuid> domains/detail.html#devices the devices tab
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict

from domains import (
    timeline,  # noqa: F401 - its events sink and live region
    versions,  # noqa: F401 - its events sink (the History tab)
)
from domains.views import detail_context, list_context, list_hosts, row_context
from vmdash.live.regions import (
    Happening,
    ObjectRegion,
    PageRegion,
    register,
    registry,
)
from vmdash.policy import Who
from vmdash.virt.domains import DomainDetail, get_detail, known_ref
from vmdash.virt.errors import NotFound
from vmdash.virt.events import STATE, Change, ObjectKind, read_domain
from vmdash.virt.refs import HostRef


def read_detail(host: HostRef, uuid: str) -> DomainDetail | None:
    """The VM page's facts: found by UUID (it survives a rename), then read in full."""
    summary = read_domain(host, uuid)
    if summary is None:
        return None
    try:
        return get_detail(host, summary.name)
    except NotFound:
        return None  # renamed or deleted between the two reads: the next event tells


def _table_wants(happening: Happening) -> bool:
    """Does the table need a full re-render (a VM came, went, or left the filter)?"""
    message = happening.message
    change = message["change"]
    if change == "down":
        return True  # the table says which host does not answer
    if happening.query.get("state") and change in STATE:
        return True
    if happening.shown:
        return happening.gone  # gone: the count and the pages shift
    if change == Change.DEFINED:
        return message["detail"] != "updated"
    return change in (Change.STARTED, Change.UNDEFINED)  # STARTED: maybe a new transient VM


def _table_context(who: Who, query: QueryDict, hosts: list[HostRef]) -> dict[str, Any]:
    return list_context(who, query)


def _table_hosts(query: QueryDict, visible: dict[str, HostRef]) -> set[str]:
    return list_hosts(query, set(visible))


register(
    PageRegion(
        name="domain-table",
        element_id="domain-table",
        partial="domains/list.html#table",
        context=_table_context,
        wants=_table_wants,
        hosts=_table_hosts,
    )
)
register(
    ObjectRegion(
        name="domain-row",
        element_id="dom-{uuid}",
        partial="domains/list.html#row",
        read=read_domain,
        context=lambda host, d, may_act: row_context(d, may_act),
        tag="tr",
    )
)
register(
    ObjectRegion(
        name="domain-header",
        element_id="dom-head-{uuid}",
        partial="domains/detail.html#header",
        read=read_domain,
        context=lambda host, d, may_act: {"d": d, "host": host, "can_operate": may_act},
        gone="live/_gone.html",
        tag="section",
    )
)
register(
    ObjectRegion(
        name="domain-facts",
        element_id="dom-facts-{uuid}",
        partial="domains/detail.html#facts",
        read=read_detail,
        context=lambda host, detail, may_act: detail_context(host, detail, may_act),
        act=None,
        tag="section",
    )
)
registry().ref_maker(ObjectKind.DOMAIN, known_ref)  # with the tags read last
register(
    ObjectRegion(
        name="domain-devices",
        element_id="dom-devices-{uuid}",
        partial="domains/detail.html#devices",
        read=read_detail,
        context=lambda host, detail, may_act: detail_context(host, detail, may_act),
        act=None,
        tag="section",
    )
)
