"""Grants: who may do what where. Listing, giving and taking them back, on the
Access page (every grant one may manage) and on each object's Access tab."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vmdash import door
from vmdash.access import here
from vmdash.access.forms import GrantForm
from vmdash.access.here import scope_ref
from vmdash.access.models import Grant, Role
from vmdash.audit import Actor, Outcome, record
from vmdash.policy import Action, Who, can, can_somewhere, require
from vmdash.render import error_response, is_htmx, wants_partial
from vmdash.virt.refs import HostRef


def _may_manage(who: Who, grant: Grant) -> bool:
    return can(who, Action.MANAGE_ACCESS, scope_ref(grant))


@require_GET
def grant_list(request: HttpRequest) -> HttpResponse:
    who = door.who(request)
    grants = [
        g
        for g in Grant.objects.select_related("user", "group", "role", "created_by")
        if _may_manage(who, g)
    ]
    if not can_somewhere(who, Action.MANAGE_ACCESS):
        require(who, Action.MANAGE_ACCESS)
    return render(
        request,
        "access/grant_list.html",
        {"grants": grants, "roles": Role.objects.all(), "form": GrantForm()},
    )


@require_http_methods(["GET", "POST"])
def grant_add(request: HttpRequest) -> HttpResponse:
    who = door.who(request)
    if not can_somewhere(who, Action.MANAGE_ACCESS):
        require(who, Action.MANAGE_ACCESS)
    form = GrantForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        probe = Grant(
            scope=form.cleaned_data["scope"],
            host=getattr(form.cleaned_data.get("host"), "slug", ""),
        )
        ref = form.cleaned_data.get("ref")
        if ref is not None:
            probe.object_uuid, probe.object_name = ref.uuid, ref.name
        require(who, Action.MANAGE_ACCESS, scope_ref(probe))
        grant = form.grant(request.user)
        record(
            Actor.of_request(request),
            "grant-add",
            scope_ref(grant),
            Outcome.OK,
            str(grant),
            object_type="grant",
            object_name=grant.where,
        )
        messages.success(request, _("Granted: %(grant)s.") % {"grant": grant})
        return redirect("grant-list")
    status = 400 if form.is_bound else 200
    return render(request, "access/grant_form.html", {"form": form}, status=status)


@require_POST
def grant_delete(request: HttpRequest, pk: int) -> HttpResponse:
    grant = get_object_or_404(Grant.objects.select_related("role", "user", "group"), pk=pk)
    require(door.who(request), Action.MANAGE_ACCESS, scope_ref(grant))
    text, ref, where = str(grant), scope_ref(grant), grant.where
    grant.delete()
    record(
        Actor.of_request(request),
        "grant-delete",
        ref,
        Outcome.OK,
        text,
        object_type="grant",
        object_name=where,
    )
    messages.success(request, _("Taken back: %(grant)s.") % {"grant": text})
    return redirect("grant-list")


# The Access tab of one object (kind: host, vm, pool, network). The same view
# renders the page and, for htmx, the panel; adding and taking back answer
# htmx with the panel and a plain POST with a redirect to the tab.


def _tab_form(data: Any = None) -> GrantForm:
    form = GrantForm(data)
    form.fields["expires_at"].widget.attrs["step"] = "1"  # seconds: "until 18:00:30" works
    return form


def _tab_context(
    request: HttpRequest, ref: here.Here, form: GrantForm | None = None
) -> dict[str, Any]:
    who = door.who(request)
    form = form or _tab_form()
    lines = here.grants_here(who, ref)
    for line in lines:
        line.remove_url = reverse(f"access-{ref.kind}-remove", args=[*_args(ref), line.grant.pk])
    return {
        "ref": ref,
        "kind": ref.kind,
        "kind_label": here.KIND_LABELS[ref.kind],
        "object_name": ref.label if isinstance(ref, HostRef) else ref.name,
        "lines": lines,
        "people": here.people_here(ref, lines),
        "may_manage": can(who, Action.MANAGE_ACCESS, ref),
        "form": form,
        "form_fields": [form[n] for n in ("user", "group", "role", "expires_at", "note")],
        "urls": _tab_urls(ref),
    }


def _args(ref: here.Here) -> list[str]:
    return [ref.host] if isinstance(ref, HostRef) else [ref.host, ref.name]


def _tab_urls(ref: here.Here) -> dict[str, str]:
    args = _args(ref)
    back = {"host": "host-detail", "vm": "domain-detail", "pool": "pool-detail"}
    return {
        "tab": reverse(f"access-{ref.kind}", args=args),
        "add": reverse(f"access-{ref.kind}-add", args=args),
        "object": reverse(back.get(ref.kind, "network-detail"), args=args),
    }


def _panel(
    request: HttpRequest, ref: here.Here, form: GrantForm | None = None, status: int = 200
) -> HttpResponse:
    context = _tab_context(request, ref, form)
    template = "access/object.html#panel" if wants_partial(request) else "access/object.html"
    return render(request, template, context, status=status)


@require_GET
def object_access(request: HttpRequest, kind: str, host: str, name: str = "") -> HttpResponse:
    """Who may do what on this object, and why; the grant form for those who manage it."""
    who = door.who(request)
    ref = here.find(who, kind, host, name)
    here.require_to_see(who, ref)
    return _panel(request, ref)


@require_POST
def object_grant_add(request: HttpRequest, kind: str, host: str, name: str = "") -> HttpResponse:
    """Give a role on this object to a user or a group, maybe until a time."""
    ref = here.find(door.who(request), kind, host, name, Action.MANAGE_ACCESS)
    fixed = {"scope": kind, "host": ref.host, "object_name": "" if kind == "host" else ref.name}
    form = _tab_form({**request.POST.dict(), **fixed})
    if not form.is_valid():
        return _panel(request, ref, form, status=400)
    grant = form.grant(request.user)
    record(
        Actor.of_request(request),
        "grant-add",
        scope_ref(grant),
        Outcome.OK,
        str(grant),
        object_type="grant",
        object_name=grant.where,
    )
    if is_htmx(request):
        return _panel(request, ref)
    messages.success(request, _("Granted: %(grant)s.") % {"grant": grant})
    return redirect(_tab_urls(ref)["tab"])


@require_POST
def object_grant_remove(
    request: HttpRequest, kind: str, host: str, pk: int, name: str = ""
) -> HttpResponse:
    """Take back one grant that reaches this object (needs managing access where it was given)."""
    who = door.who(request)
    ref = here.find(who, kind, host, name)
    line = next((x for x in here.grants_here(who, ref) if x.grant.pk == pk), None)
    if line is None:
        return error_response(request, _("This grant does not reach here any more."), 404)
    require(who, Action.MANAGE_ACCESS, scope_ref(line.grant))
    text, where = str(line.grant), line.grant.where
    grant_ref = scope_ref(line.grant)
    line.grant.delete()
    record(
        Actor.of_request(request),
        "grant-delete",
        grant_ref,
        Outcome.OK,
        text,
        object_type="grant",
        object_name=where,
    )
    if is_htmx(request):
        return _panel(request, ref)
    messages.success(request, _("Taken back: %(grant)s.") % {"grant": text})
    return redirect(_tab_urls(ref)["tab"])
