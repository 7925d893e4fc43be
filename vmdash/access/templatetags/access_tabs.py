"""The Access tab link each object page shows to those who may see it."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from vmdash import door
from vmdash.access import here
from vmdash.virt.refs import DomainRef, HostRef, NetworkRef, PoolRef

register = template.Library()

_REFS: dict[str, type[PoolRef | NetworkRef]] = {
    "pool": PoolRef,
    "network": NetworkRef,
}


@register.inclusion_tag("access/_tab_link.html", takes_context=True)
def access_tab(
    context: dict[str, Any],
    kind: str,
    host: str,
    name: str = "",
    uuid: str = "",
    tags: frozenset[str] | None = None,
) -> dict[str, Any]:
    """{% access_tab "vm" d.host d.name d.uuid d.tags %}: the link, if the policy lets them
    see it (a VM's tags: for grants on a tag). Cosmetic like every button: the tab's own
    view asks the door again."""
    request = context.get("request")
    if request is None:  # a live push renders without a request: the page has the link
        return {"show": False}
    who = door.who(request)
    if kind == "host":
        ref: here.Here = HostRef(host, "")
        url = reverse("access-host", args=[host])
    elif kind == "vm":
        ref = DomainRef(host, name, uuid, tags)
        url = reverse("access-vm", args=[host, name])
    else:
        ref = _REFS[kind](host, name, uuid)
        url = reverse(f"access-{kind}", args=[host, name])
    return {"show": here.may_see(who, ref), "url": url, "tab": kind == "vm"}


@register.filter
def action_label(action: str) -> str:
    return here.label(action)
