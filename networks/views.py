"""Virtual networks of a host: list, detail, lifecycle, create, edit, DHCP hosts."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from networks.forms import NetworkCreateForm, NetworkEditForm, StaticHostForm, network_family
from networks.ops import OP_INFO, edit_change, edit_initial, form_errors
from vmdash import door
from vmdash.audit import Actor, Outcome, perform, record
from vmdash.policy import Action, can, visible
from vmdash.render import is_htmx
from vmdash.virt import networks as virt_networks
from vmdash.virt.errors import VirtError
from vmdash.virt.names import name_problem
from vmdash.virt.networks import NetworkDetail, Op
from vmdash.virt.refs import HostRef, NetworkRef


@require_GET
def network_list(request: HttpRequest, host: str) -> HttpResponse:
    href = door.host(door.who(request), host)
    rows = virt_networks.list_networks(href)
    allowed = set(visible(door.who(request), [r.ref for r in rows]))
    context = {
        "host": href,
        "rows": [r for r in rows if r.ref in allowed],
        "can_manage": can(door.who(request), Action.MANAGE_NETWORKS, href),
    }
    template = "networks/list.html#table" if is_htmx(request) else "networks/list.html"
    return render(request, template, context)


def _detail_context(request: HttpRequest, href: HostRef, detail: NetworkDetail) -> dict[str, Any]:
    return {
        "host": href,
        "n": detail.summary,
        "detail": detail,
        "can_manage": can(door.who(request), Action.MANAGE_NETWORKS, detail.ref),
        "reserved": {h.mac for s in detail.summary.subnets for h in s.hosts},
    }


@require_GET
def network_detail(request: HttpRequest, host: str, name: str) -> HttpResponse:
    href, _ref = door.network(door.who(request), host, name)
    detail = virt_networks.get_detail(href, name)
    context = {
        **_detail_context(request, href, detail),
        "host_form": StaticHostForm(subnets=(), leases={}),
    }
    return render(request, "networks/detail.html", context)


def _op(op: str) -> Op:
    try:
        return Op(op)
    except ValueError:
        raise Http404(_("There is no operation “%(op)s”.") % {"op": op}) from None


@require_GET
def network_confirm(request: HttpRequest, host: str, name: str, op: str) -> HttpResponse:
    """The confirmation page for deleting (no JS needed); names the running VMs."""
    operation = _op(op)
    href, _ref = door.network(door.who(request), host, name, Action.MANAGE_NETWORKS)
    if not OP_INFO[operation].confirm:
        raise Http404(_("“%(op)s” needs no confirmation.") % {"op": op})
    summary = virt_networks.get_summary(href, name)
    context = {"host": href, "n": summary, "op": operation, "info": OP_INFO[operation]}
    return render(request, "networks/confirm.html", context)


@require_POST
def network_op(request: HttpRequest, host: str, name: str, op: str) -> HttpResponse:
    operation = _op(op)
    href, ref = door.network(door.who(request), host, name, Action.MANAGE_NETWORKS)
    if OP_INFO[operation].confirm and request.POST.get("confirm") != name:
        return redirect("network-confirm", host, name, operation.value)
    done = perform(
        Actor.of_request(request),
        f"network-{operation.value}",
        ref,
        lambda: virt_networks.run_op(href, name, operation),
    )
    list_url = reverse("network-list", args=[host])
    if operation == Op.RESTART:
        messages.success(request, _("Network “%(name)s” was restarted.") % {"name": name})
        url = reverse("network-detail", args=[host, name])
        return HttpResponseClientRedirect(url) if is_htmx(request) else redirect(url)
    if operation == Op.DELETE:
        if is_htmx(request):
            return HttpResponseClientRedirect(list_url)
        messages.success(request, _("Network “%(name)s” was deleted.") % {"name": name})
        return redirect(list_url)
    if is_htmx(request):
        part = "list.html#row" if request.POST.get("view") == "row" else "detail.html#header"
        context = {"host": href, "n": done, "can_manage": True}
        return render(request, f"networks/{part}", context)
    if request.POST.get("view") == "row":
        return redirect(list_url)
    return redirect("network-detail", host, name)


@require_http_methods(["GET", "POST"])
def network_new(request: HttpRequest, host: str) -> HttpResponse:
    href = door.host(door.who(request), host, Action.MANAGE_NETWORKS)
    facts = virt_networks.host_networking(href)
    form = NetworkCreateForm(request.POST or None, facts=facts)
    if request.method == "POST":
        created = _create(request, href, form)
        if created is not None:
            messages.success(request, _("Network “%(name)s” was created.") % {"name": created.name})
            return redirect("network-detail", host, created.name)
    status = 400 if form.errors else 200
    return render(
        request, "networks/new.html", {"host": href, "form": form, "facts": facts}, status=status
    )


def _create(request: HttpRequest, href: HostRef, form: NetworkCreateForm) -> NetworkRef | None:
    """Create from a valid form; every attempt is audited, a refusal goes on the form."""
    actor = Actor.of_request(request)
    name = str(form.data.get("name", ""))[:255]
    if not form.is_valid() or form.spec is None:
        record(
            actor,
            "network-create",
            href,
            Outcome.ERROR,
            form_errors(form),
            object_type="network",
            object_name=name,
        )
        return None
    spec = form.spec
    try:
        return perform(
            actor,
            "network-create",
            NetworkRef(href.slug, spec.name),
            lambda: virt_networks.create(href, spec),
        )
    except VirtError as err:
        form.add_error(None, str(err))
        return None


@require_http_methods(["GET", "POST"])
def network_edit(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """GET: the form. POST preview=1: the changes and the diff (htmx partial). POST: do it."""
    href, ref = door.network(door.who(request), host, name, Action.MANAGE_NETWORKS)
    detail = virt_networks.get_detail(href, name)
    family = network_family(detail.summary) if detail.summary.persistent else ""
    form = NetworkEditForm(
        request.POST if request.method == "POST" else None,
        initial=edit_initial(detail.summary),
        facts=virt_networks.host_networking(href),
        own_name=name,
        family=family,
    )
    context = {"host": href, "n": detail.summary, "form": form, "editable": bool(family),
               "family": family, "result": None, "pending": detail.pending}  # fmt: skip
    if request.method == "POST" and not family:
        raise Http404(_("This network cannot be edited here."))
    if request.method == "POST" and form.is_valid():
        change = edit_change(form)
        if not request.POST.get("preview"):
            return _apply_edit(request, href, ref, change, context)
        context["result"] = virt_networks.preview(href, name, change)
        context["previewed"] = True
    elif request.method == "POST":
        record(Actor.of_request(request), "network-edit", ref, Outcome.ERROR, form_errors(form))
    template = "networks/edit.html#preview" if is_htmx(request) else "networks/edit.html"
    return render(request, template, context, status=400 if form.errors else 200)


def _apply_edit(
    request: HttpRequest, href: HostRef, ref: NetworkRef, change: Any, context: dict[str, Any]
) -> HttpResponse:
    actor = Actor.of_request(request)
    try:
        result = virt_networks.edit(href, ref.name, change)
    except VirtError as err:
        record(actor, "network-edit", ref, Outcome.ERROR, str(err))
        context["form"].add_error(None, str(err))
        template = "networks/edit.html#preview" if is_htmx(request) else "networks/edit.html"
        return render(request, template, context, status=err.status)
    summary = f"applied live: {len(result.applied)}; waiting for a restart: {len(result.pending)}"
    record(actor, "network-edit", ref, Outcome.OK, summary if result.diff else "", diff=result.diff)
    messages.add_message(request, *_edit_message(result))
    url = reverse("network-detail", args=[href.slug, ref.name])
    return HttpResponseClientRedirect(url) if is_htmx(request) else redirect(url)


def _edit_message(result: virt_networks.EditResult) -> tuple[int, str]:
    """What the person is told after an edit: what applies now, what waits."""
    if not result.diff:
        return messages.INFO, _("Nothing changed.")
    if not result.active:
        return messages.SUCCESS, _("Saved. It applies when the network starts.")
    now, later = len(result.applied), len(result.pending)
    if not later:
        return messages.SUCCESS, _("Applied to the running network and saved in its definition.")
    if not now:
        return messages.WARNING, _(
            "Saved. It applies when the network restarts: see “Waiting for a restart”."
        )
    return messages.WARNING, _(
        "%(now)d change(s) applied to the running network; %(later)d wait for a restart."
    ) % {"now": now, "later": later}


def _leases_by_ip(detail: NetworkDetail) -> dict[str, str]:
    return {lease.ip: lease.mac for lease in detail.leases}


@require_POST
def network_host_add(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """Reserve an address for a MAC, live (when running) and in the config."""
    href, ref = door.network(door.who(request), host, name, Action.MANAGE_NETWORKS)
    detail = virt_networks.get_detail(href, name)
    form = StaticHostForm(
        request.POST, subnets=detail.summary.subnets, leases=_leases_by_ip(detail)
    )
    actor = Actor.of_request(request)
    if not form.is_valid() or form.subnet is None:
        record(actor, "network-host-add", ref, Outcome.ERROR, form_errors(form))
        return _hosts_response(request, href, detail, form, 400)
    entry, index = form.entry(), form.subnet.index
    try:
        perform(
            actor,
            "network-host-add",
            ref,
            lambda: virt_networks.add_static_host(href, name, index, entry),
        )
    except VirtError as err:
        form.add_error(None, str(err))
        return _hosts_response(request, href, detail, form, err.status)
    if not is_htmx(request):  # htmx: the swapped table shows it
        done = _("%(mac)s now always gets %(ip)s.") % {"mac": entry.mac, "ip": entry.ip}
        messages.success(request, done)
    return _hosts_response(
        request,
        href,
        virt_networks.get_detail(href, name),
        StaticHostForm(subnets=(), leases={}),
        200,
    )


@require_POST
def network_host_remove(request: HttpRequest, host: str, name: str) -> HttpResponse:
    href, ref = door.network(door.who(request), host, name, Action.MANAGE_NETWORKS)
    detail = virt_networks.get_detail(href, name)
    mac, ip = request.POST.get("mac", "").lower(), request.POST.get("ip", "")
    found = [
        (s.index, h) for s in detail.summary.subnets for h in s.hosts if h.mac == mac and h.ip == ip
    ]
    if not found:
        raise Http404(
            _("Network “%(name)s” has no DHCP host %(mac)s.") % {"name": name, "mac": mac}
        )
    index, entry = found[0]
    perform(
        Actor.of_request(request),
        "network-host-remove",
        ref,
        lambda: virt_networks.remove_static_host(href, name, index, entry),
    )
    return _hosts_response(
        request,
        href,
        virt_networks.get_detail(href, name),
        StaticHostForm(subnets=(), leases={}),
        200,
    )


def _back(request: HttpRequest, href: HostRef, name: str) -> str:
    """The VM page a "reserve this address" came from (POST vm=<name>), else the network's."""
    vm = request.POST.get("vm", "")
    if vm and name_problem(vm) is None and "/" not in vm:
        return reverse("domain-devices", args=[href.slug, vm])
    return reverse("network-detail", args=[href.slug, name])


def _hosts_response(
    request: HttpRequest, href: HostRef, detail: NetworkDetail, form: StaticHostForm, status: int
) -> HttpResponse:
    if not is_htmx(request) and status == 200:
        return redirect(_back(request, href, detail.summary.name))
    context = {**_detail_context(request, href, detail), "host_form": form}
    template = "networks/detail.html#dhcp" if is_htmx(request) else "networks/detail.html"
    return render(request, template, context, status=status)
