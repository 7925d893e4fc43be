"""Grants: who may do what where. Listing, giving and taking them back."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vmdash import door
from vmdash.access.forms import GrantForm
from vmdash.access.models import Grant, Role
from vmdash.audit import Actor, Outcome, record
from vmdash.policy import Action, Ref, Who, can, can_somewhere, require
from vmdash.virt.refs import DomainRef, HostRef, NetworkRef, PoolRef


def scope_ref(grant: Grant) -> Ref:
    """The object a grant is about, as the policy names it (None: the site)."""
    kinds: dict[str, type[DomainRef | PoolRef | NetworkRef]] = {
        "vm": DomainRef,
        "pool": PoolRef,
        "network": NetworkRef,
    }
    if grant.scope == Grant.Scope.HOST:
        return HostRef(grant.host, "")
    if grant.scope in kinds:
        return kinds[grant.scope](grant.host, grant.object_name, grant.object_uuid)
    return None


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
