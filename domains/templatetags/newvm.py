"""Links to the new-VM wizard, shown only to who may create on that host (cosmetic:
the view asks the door again)."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest

from vmdash import door, policy

register = template.Library()


@register.inclusion_tag("domains/newvm/_links.html")
def new_vm_links(request: HttpRequest, hosts: Any) -> dict[str, Any]:
    """`hosts`: one Host or HostRef, or several; the ones `request`'s person may create on."""
    many = hosts if isinstance(hosts, list | tuple) else [hosts]
    who = door.who(request)
    refs = [getattr(h, "ref", h) for h in many]
    return {"hosts": [r for r in refs if policy.can(who, policy.Action.CREATE, r)]}
