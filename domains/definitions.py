"""The VM page's XML tab (an editor with a guard) and its History tab.

XML: those who may change the VM (Action.CHANGE) edit its definition; the
form carries the digest of the text it started from, so an apply after
anybody else's change (vmdash, virsh) is refused with that change shown.
Show the change (htmx) gives the diff first; after an apply, what libvirt
did not keep of the text is listed. Others see the live XML, read-only.

History: every definition vmdash made or saw (domains/versions.py), newest
first, who and what; any two compared; a revert defines an old one again
(itself a new version). Every apply and revert is audited with its diff.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from domains import versions
from domains.models import DomainVersion
from domains.views import detail_context
from vmdash import door, policy
from vmdash.audit import Actor, Outcome, record
from vmdash.policy import Action
from vmdash.render import is_htmx
from vmdash.virt import definition
from vmdash.virt import domains as virt_domains
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import DomainRef, HostRef

PAGE_SIZE = 50
_LINE = re.compile(r"\bline (\d+)\b")


def _page(
    request: HttpRequest, host: HostRef, ref: DomainRef, tab: str, **extra: Any
) -> dict[str, Any]:
    detail = virt_domains.get_detail(host, ref.name)
    who = door.who(request)
    return {
        **detail_context(host, detail, policy.can(who, Action.OPERATE, ref)),
        "tab": tab,
        "may_change": policy.can(who, Action.CHANGE, ref) and detail.summary.persistent,
        **extra,
    }


# --- the XML tab --------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def domain_xml(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """GET: the editor (or the read-only XML). POST preview=1: the diff (htmx
    partial); POST: replace the definition."""
    action = Action.CHANGE if request.method == "POST" else Action.VIEW
    host_ref, ref = door.domain(door.who(request), host, name, action)
    if request.method == "GET":
        context = _page(request, host_ref, ref, "xml")
        if context["may_change"]:
            current = definition.read(host_ref, name)
            context.update(text=current.text, digest=current.digest)
            # Kept, so that a refused stale apply can show what changed since.
            versions.looked_at(host_ref.slug, ref.uuid, name, current.text)
        return render(request, "domains/detail.html", context)
    text = request.POST.get("xml", "")
    started_from = request.POST.get("digest", "")
    partial = "domains/detail.html#xml-result" if is_htmx(request) else "domains/detail.html"
    actor = Actor.of_request(request)
    try:
        if request.POST.get("preview"):
            diff = definition.preview(host_ref, name, text, started_from)
            context = _page(request, host_ref, ref, "xml", text=text, digest=started_from)
            return render(request, partial, {**context, "diff": diff, "previewed": True})
        done = definition.replace(host_ref, name, text, started_from)
    except definition.Stale as err:
        record(actor, "xml-edit", ref, Outcome.ERROR, str(err))
        other = _other_change(host_ref, ref, started_from, err.current)
        context = _page(request, host_ref, ref, "xml", text=text, digest=started_from)
        context.update(error=str(err), stale=True, other=other)
        return render(request, partial, context, status=409)
    except VirtError as err:
        record(actor, "xml-edit", ref, Outcome.ERROR, str(err))
        context = _page(request, host_ref, ref, "xml", text=text, digest=started_from)
        context.update(error=str(err), error_line=_error_line(str(err)))
        return render(request, partial, context, status=err.status)
    reason = versions.XML_EDITED
    versions.remember(host_ref.slug, ref.uuid, name, done.stored, actor.username, reason)
    record(actor, "xml-edit", ref, Outcome.OK, _lost_line(done.lost), diff=done.diff)
    if not done.diff:
        messages.info(request, _("Nothing changed."))
    elif done.lost:
        messages.warning(
            request,
            _("Saved. libvirt did not keep these lines: %(lines)s")
            % {"lines": "; ".join(done.lost)},
        )
    else:
        messages.success(request, _("Saved. It applies when the VM next starts."))
    url = reverse("domain-xml", args=[host, name])
    return HttpResponseClientRedirect(url) if is_htmx(request) else redirect(url)


def _other_change(host: HostRef, ref: DomainRef, started_from: str, current: str) -> str:
    """The change made meanwhile: from the version the editor started from, if kept."""
    base = DomainVersion.objects.filter(host=host.slug, uuid=ref.uuid, digest=started_from).first()
    if base is None:
        return ""
    return definition.text_diff(base.xml, current, "when you opened it", "now")


def _error_line(message: str) -> int | None:
    found = _LINE.findall(message)  # the parser's position is the last one named
    return int(found[-1]) if found else None


def _lost_line(lost: tuple[str, ...]) -> str:
    return f"libvirt did not keep: {'; '.join(lost)}" if lost else ""


# --- the History tab ----------------------------------------------------------


@require_http_methods(["GET"])
def domain_history(request: HttpRequest, host: str, name: str) -> HttpResponse:
    host_ref, ref = door.domain(door.who(request), host, name)
    versions.remember_now(host_ref, name, ref.uuid)
    kept = DomainVersion.objects.filter(host=host_ref.slug, uuid=ref.uuid)
    page = Paginator(kept, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    older = {row.pk: nxt for row, nxt in zip(rows, [*rows[1:], None], strict=True)}
    if rows and older[rows[-1].pk] is None:  # the page's oldest: its predecessor, if any
        older[rows[-1].pk] = kept.filter(at__lt=rows[-1].at).first()
    context = _page(
        request,
        host_ref,
        ref,
        "history",
        page=page,
        versions=[(v, versions.summary(v, older.get(v.pk)), versions.told(v.reason)) for v in rows],
        latest=kept.first(),
        compare=_compare(kept, request),
    )
    return render(request, "domains/detail.html", context)


def _compare(kept: Any, request: HttpRequest) -> dict[str, Any] | None:
    a, b = request.GET.get("a", ""), request.GET.get("b", "")
    if not (a.isdigit() and b.isdigit()):
        return None
    old, new = kept.filter(pk=int(a)).first(), kept.filter(pk=int(b)).first()
    if old is None or new is None:
        return None
    if old.at > new.at:
        old, new = new, old
    label_old, label_new = f"{old.at:%Y-%m-%d %H:%M:%S}", f"{new.at:%Y-%m-%d %H:%M:%S}"
    return {
        "a": old,
        "b": new,
        "diff": definition.text_diff(old.xml, new.xml, label_old, label_new),
    }


@require_POST
def domain_history_revert(request: HttpRequest, host: str, name: str, pk: int) -> HttpResponse:
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    version = DomainVersion.objects.filter(pk=pk, host=host_ref.slug, uuid=ref.uuid).first()
    if version is None:
        raise Http404(_("There is no such version of this VM."))
    actor = Actor.of_request(request)
    when = f"{version.at:%Y-%m-%d %H:%M:%S}"
    try:
        done = definition.restore(host_ref, name, version.xml)
    except VirtError as err:
        record(actor, "definition-revert", ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return redirect("domain-history", host, name)
    reason = versions.REVERTED + when
    versions.remember(host_ref.slug, ref.uuid, name, done.stored, actor.username, reason)
    record(actor, "definition-revert", ref, Outcome.OK, f"to {when}", diff=done.diff)
    if done.diff:
        messages.success(
            request, _("Reverted to the version of %(when)s. It applies when the VM next starts.")
            % {"when": when},
        )  # fmt: skip
    else:
        messages.info(request, _("That version is the definition already."))
    return redirect("domain-history", host, name)
