"""The tags editor on the VM page's overview: an htmx partial, read and POSTed.

Tags live in the VM's libvirt <metadata> (vmdash/virt/xml/tags.py); grants
on a tag (vmdash/access) reach every VM carrying it. Seeing them needs
Action.VIEW, changing them Action.CHANGE; every change is audited with the
tags before and after.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from vmdash import door, policy
from vmdash.audit import Actor, Outcome, record
from vmdash.policy import Action
from vmdash.render import is_htmx
from vmdash.virt import domains as virt_domains
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import DomainRef
from vmdash.virt.xml.tags import MAX_TAGS, tag_problem

TEMPLATE = "domains/_tags.html"
_SPLIT = re.compile(r"[\s,]+")


def parse_tags(text: str) -> tuple[frozenset[str], str]:
    """Tags typed as "web, db prod" and the first problem with them ("" if none)."""
    tags = frozenset(t for t in _SPLIT.split(text.strip()) if t)
    if len(tags) > MAX_TAGS:
        return tags, _("A VM carries at most %(n)d tags.") % {"n": MAX_TAGS}
    for tag in sorted(tags):
        problem = tag_problem(tag)
        if problem is not None:
            return tags, _("“%(tag)s”: %(why)s.") % {"tag": tag, "why": problem}
    return tags, ""


def _context(request: HttpRequest, ref: DomainRef, **extra: Any) -> dict[str, Any]:
    tags = sorted(ref.tags or ())
    return {
        "ref": ref,
        "tags": tags,
        "text": " ".join(tags),
        "may_change": policy.can(door.who(request), Action.CHANGE, ref),
        **extra,
    }


@require_http_methods(["GET", "POST"])
def domain_tags(request: HttpRequest, host: str, name: str) -> HttpResponse:
    action = Action.CHANGE if request.method == "POST" else Action.VIEW
    host_ref, ref = door.domain(door.who(request), host, name, action)
    if ref.tags is None:
        ref = DomainRef(ref.host, ref.name, ref.uuid, virt_domains.get_tags(host_ref, name))
    if request.method == "GET":
        return render(request, TEMPLATE, _context(request, ref))
    text = request.POST.get("tags", "")
    tags, problem = parse_tags(text)
    if problem:
        return render(request, TEMPLATE, _context(request, ref, text=text, error=problem))
    actor = Actor.of_request(request)
    try:
        ref, change = virt_domains.set_tags(host_ref, name, tags)
    except VirtError as err:
        record(actor, "tags", ref, Outcome.ERROR, str(err))
        return render(request, TEMPLATE, _context(request, ref, text=text, error=str(err)))
    record(actor, "tags", ref, Outcome.OK, change)
    if not is_htmx(request):
        return redirect("domain-detail", host, ref.name)
    return render(request, TEMPLATE, _context(request, ref, saved=True))
