"""Overview, hosts, audit."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vmdash import door
from vmdash.audit import Actor, Outcome, record
from vmdash.forms import HostForm
from vmdash.models import AuditEntry, Host
from vmdash.policy import Action, can, require
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


@require_GET
def host_list(request: HttpRequest) -> HttpResponse:
    hosts = door.visible_hosts(door.who(request))
    results = each_host([h.ref for h in hosts], host_info, settings.VMDASH_HOST_TIMEOUT)
    can_manage = can(door.who(request), Action.MANAGE_HOSTS)
    disabled = list(Host.objects.filter(enabled=False)) if can_manage else []
    return render(
        request,
        "vmdash/host_list.html",
        {"results": results, "disabled": disabled, "can_manage": can_manage},
    )


@require_GET
def host_detail(request: HttpRequest, host: str) -> HttpResponse:
    href = door.host(door.who(request), host)
    obj = Host.objects.get(slug=href.slug)
    result = each_host([obj.ref], host_info, settings.VMDASH_HOST_TIMEOUT)[0]
    return render(
        request,
        "vmdash/host_detail.html",
        {"host": obj, "result": result, "can_manage": can(door.who(request), Action.MANAGE_HOSTS)},
    )


@require_http_methods(["GET", "POST"])
def host_add(request: HttpRequest) -> HttpResponse:
    require(door.who(request), Action.MANAGE_HOSTS)
    form = HostForm(request.POST or None, initial={"enabled": True})
    if request.method == "POST" and form.is_valid():
        host = form.save()
        record(Actor.of_request(request), "host-add", host.ref, Outcome.OK, host.uri)
        messages.success(request, f"Host '{host}' added.")
        return redirect("host-detail", host.slug)
    return render(
        request, "vmdash/host_form.html", {"form": form, "host": None}, status=_status(form)
    )


@require_http_methods(["GET", "POST"])
def host_edit(request: HttpRequest, host: str) -> HttpResponse:
    obj = door.host_record(door.who(request), host)
    form = HostForm(request.POST or None, instance=obj)
    if request.method == "POST" and form.is_valid():
        obj = form.save()
        _forget(obj)
        record(Actor.of_request(request), "host-edit", obj.ref, Outcome.OK, obj.uri)
        messages.success(request, f"Host '{obj}' saved.")
        return redirect("host-detail", obj.slug)
    return render(
        request, "vmdash/host_form.html", {"form": form, "host": obj}, status=_status(form)
    )


@require_POST
def host_toggle(request: HttpRequest, host: str) -> HttpResponse:
    obj = door.host_record(door.who(request), host)
    obj.enabled = not obj.enabled
    obj.save(update_fields=["enabled"])
    _forget(obj)
    action = "host-enable" if obj.enabled else "host-disable"
    record(Actor.of_request(request), action, obj.ref, Outcome.OK)
    messages.success(request, f"Host '{obj}' {'enabled' if obj.enabled else 'disabled'}.")
    return redirect("host-list")


@require_http_methods(["GET", "POST"])
def host_delete(request: HttpRequest, host: str) -> HttpResponse:
    """GET asks for confirmation; POST removes the host from vmdash (not its VMs)."""
    obj = door.host_record(door.who(request), host)
    if request.method == "POST":
        ref = obj.ref
        obj.delete()
        _forget_ref(ref.uri)
        record(Actor.of_request(request), "host-delete", ref, Outcome.OK, ref.uri)
        messages.success(request, f"Host '{ref.label}' removed from vmdash; its VMs are untouched.")
        return redirect("host-list")
    return render(request, "vmdash/host_delete.html", {"host": obj})


@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    require(door.who(request), Action.AUDIT)
    entries = AuditEntry.objects.all()
    if q := request.GET.get("q", "").strip():
        entries = entries.filter(object_name__icontains=q) | entries.filter(username__icontains=q)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "vmdash/audit.html", {"page": page, "q": q})


def _status(form: HostForm) -> int:
    return 400 if form.is_bound and form.errors else 200


def _forget(host: Host) -> None:
    _forget_ref(host.uri)


def _forget_ref(uri: str) -> None:
    from vmdash.virt.connection import pool

    pool().drop(uri)
