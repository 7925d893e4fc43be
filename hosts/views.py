"""Hosts: the list, one host's page, and managing them (add, edit, enable, remove).

Every view starts at the door; every change and every refused change is audited.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from hosts.counts import counts_for, partial_hosts
from hosts.forms import HostForm, probe_error
from hosts.live import totals
from vmdash import door
from vmdash.audit import Actor, Outcome, record
from vmdash.models import Host
from vmdash.policy import Action, Who, can, require
from vmdash.virt.connection import pool
from vmdash.virt.hosts import PerHost, each_host, host_info
from vmdash.virt.refs import HostRef
from vmdash.virt.uris import redact


@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """Every host the person may see, and their VMs by state."""
    who = door.who(request)
    hosts = door.visible_hosts(who)
    refs = [h.ref for h in hosts]
    results = each_host(refs, host_info, settings.VMDASH_HOST_TIMEOUT)
    partial = partial_hosts(who, refs)
    counted = totals(
        [r.value.counts for r in results if r.value and r.host.slug not in partial]
        + [own.value for own in _own_counts(who, refs, partial) if own.value]
    )
    context = {
        "results": results,
        "partial_hosts": partial,
        "totals": counted,
        "total": sum(n for _state, n in counted),
        "can_manage": can(who, Action.MANAGE_HOSTS),
    }
    return render(request, "hosts/overview.html", context)


def _own_counts(who: Who, refs: list[HostRef], partial: frozenset[str]) -> list[PerHost[Any]]:
    """For the hosts of which `who` sees only some VMs: the counts of those VMs."""
    mine = [h for h in refs if h.slug in partial]
    return each_host(mine, lambda h: counts_for(who, h), settings.VMDASH_HOST_TIMEOUT)


@require_GET
def host_list(request: HttpRequest) -> HttpResponse:
    who = door.who(request)
    refs = [h.ref for h in door.visible_hosts(who)]
    results = each_host(refs, host_info, settings.VMDASH_HOST_TIMEOUT)
    can_manage = can(who, Action.MANAGE_HOSTS)
    disabled = list(Host.objects.filter(enabled=False)) if can_manage else []
    return render(
        request,
        "hosts/host_list.html",
        {
            "results": results,
            "disabled": disabled,
            "can_manage": can_manage,
            "partial_hosts": partial_hosts(who, refs),
        },
    )


@require_GET
def host_detail(request: HttpRequest, host: str) -> HttpResponse:
    who = door.who(request)
    href = door.host(who, host)
    obj = Host.objects.get(slug=href.slug)
    result = each_host([obj.ref], host_info, settings.VMDASH_HOST_TIMEOUT)[0]
    context = {
        "host": obj,
        "result": result,
        "can_manage": can(who, Action.MANAGE_HOSTS),
        "partial_hosts": partial_hosts(who, [href]),
    }
    return render(request, "hosts/host_detail.html", context)


@require_http_methods(["GET", "POST"])
def host_add(request: HttpRequest) -> HttpResponse:
    require(door.who(request), Action.MANAGE_HOSTS)
    form = HostForm(request.POST or None, initial={"enabled": True})
    if request.method == "POST" and form.is_valid():
        host = form.save()
        record(Actor.of_request(request), "host-add", host.ref, Outcome.OK, host.uri)
        messages.success(request, _("Host '%(host)s' added.") % {"host": host})
        return _done(request, host)
    _audit_refusal(request, "host-add", form)
    return render(
        request, "hosts/host_form.html", {"form": form, "host": None}, status=_status(form)
    )


@require_http_methods(["GET", "POST"])
def host_edit(request: HttpRequest, host: str) -> HttpResponse:
    obj = door.host_record(door.who(request), host)
    old = obj.uri
    form = HostForm(request.POST or None, instance=obj)
    if request.method == "POST" and form.is_valid():
        obj = form.save()
        _forget(old, obj.uri)
        record(Actor.of_request(request), "host-edit", obj.ref, Outcome.OK, f"{old} → {obj.uri}")
        messages.success(request, _("Host '%(host)s' saved.") % {"host": obj})
        return _done(request, obj)
    _audit_refusal(request, "host-edit", form, old)
    return render(
        request, "hosts/host_form.html", {"form": form, "host": obj}, status=_status(form)
    )


@require_POST
def host_toggle(request: HttpRequest, host: str) -> HttpResponse:
    """Disable at once; enable only a host that answers now, as "Add host" checks."""
    obj = door.host_record(door.who(request), host)
    action = "host-disable" if obj.enabled else "host-enable"
    if not obj.enabled and (reason := probe_error(obj.uri)) is not None:
        record(Actor.of_request(request), action, obj.ref, Outcome.ERROR, reason)
        messages.error(request, reason)
        return _redirect(request, "host-list")
    obj.enabled = not obj.enabled
    obj.save(update_fields=["enabled"])
    _forget(obj.uri)
    record(Actor.of_request(request), action, obj.ref, Outcome.OK)
    done = _("Host '%(host)s' enabled.") if obj.enabled else _("Host '%(host)s' disabled.")
    messages.success(request, done % {"host": obj})
    return _redirect(request, "host-list")


@require_http_methods(["GET", "POST"])
def host_delete(request: HttpRequest, host: str) -> HttpResponse:
    """GET asks for confirmation; POST removes the host from vmdash (not its VMs)."""
    obj = door.host_record(door.who(request), host)
    if request.method == "POST":
        ref = obj.ref
        obj.delete()
        _forget(ref.uri)
        record(Actor.of_request(request), "host-delete", ref, Outcome.OK, ref.uri)
        messages.success(
            request,
            _("Host '%(host)s' removed from vmdash; its VMs are untouched.") % {"host": ref.label},
        )
        return _redirect(request, "host-list")
    return render(request, "hosts/host_delete.html", {"host": obj})


def _audit_refusal(request: HttpRequest, action: str, form: HostForm, old: str = "") -> None:
    """A refused add or edit: denied when the URI rule said no, else an error (host down)."""
    if request.method != "POST" or not form.errors:
        return
    uri = redact(str(form.data.get("uri", "")))
    errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
    ref = HostRef(slug=str(form.data.get("slug", ""))[:50], uri=uri)
    what = f"{old} → {uri}" if old else uri
    outcome = Outcome.DENIED if form.refused else Outcome.ERROR
    record(Actor.of_request(request), action, ref, outcome, f"{what}: {errors}")


def _done(request: HttpRequest, host: Host) -> HttpResponse:
    # A disabled host has no page (the door shows enabled hosts): back to the list.
    return (
        _redirect(request, "host-detail", host.slug)
        if host.enabled
        else _redirect(request, "host-list")
    )


def _redirect(request: HttpRequest, name: str, *args: str) -> HttpResponse:
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(resolve_url(name, *args))
    return redirect(name, *args)


def _status(form: HostForm) -> int:
    return 400 if form.is_bound and form.errors else 200


def _forget(*uris: str) -> None:
    for uri in set(uris):
        pool().drop(uri)
