"""The VM page's Hardware tab: memory and vCPUs, live and pending side by side.

GET shows what the running VM has beside what its next start gets (the
"pending" values, with "Revert pending"); the form previews a change (htmx:
what applies now, what after shutdown, and the definition's diff) before it
is applied. Seeing it needs Action.VIEW, changing it Action.CHANGE; every
change is audited with its diff. The work is in vmdash/virt/sizing.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from domains import versions
from domains.views import detail_context
from vmdash import door, policy
from vmdash.audit import Actor, Outcome, record
from vmdash.policy import Action
from vmdash.render import is_htmx
from vmdash.virt import boot, cpu, definition, numa, pinning, placement, sizing
from vmdash.virt import domains as virt_domains
from vmdash.virt.errors import InvalidInput, VirtError
from vmdash.virt.refs import DomainRef, HostRef

MIB = 1024
LABELS = {
    "memory": gettext_lazy("Memory"),
    "max_memory": gettext_lazy("Maximum memory"),
    "vcpus": gettext_lazy("vCPUs"),
    "max_vcpus": gettext_lazy("Maximum vCPUs"),
}


class SizingForm(forms.Form):
    memory = forms.IntegerField(
        label=LABELS["memory"], min_value=16, help_text=gettext_lazy("MiB, what the guest gets now")
    )
    max_memory = forms.IntegerField(
        label=LABELS["max_memory"],
        min_value=16,
        help_text=gettext_lazy("MiB; the balloon can grow the memory up to this while it runs"),
    )
    vcpus = forms.IntegerField(label=LABELS["vcpus"], min_value=1)
    max_vcpus = forms.IntegerField(
        label=LABELS["max_vcpus"],
        min_value=1,
        help_text=gettext_lazy("vCPUs can be plugged in up to this while the VM runs"),
    )

    def __init__(self, *args: Any, facts: sizing.Resources, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.facts = facts
        if facts.numa:
            self.fields["max_memory"].disabled = True
            self.fields["max_memory"].help_text = _("Set by the VM's NUMA cells (edit its XML).")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        wanted = self.wanted()
        facts = self.facts
        if wanted.vcpus > wanted.max_vcpus:
            self.add_error("vcpus", _("More than the maximum vCPUs."))
        # A definition above the host's bounds stays as it is (overcommit is
        # the admin's call); only a new value is held against them.
        config = facts.config
        if wanted.max_vcpus != config.max_vcpus and wanted.max_vcpus > facts.host_vcpus:
            self.add_error(
                "max_vcpus",
                _("This host gives one VM at most %(n)d vCPUs.") % {"n": facts.host_vcpus},
            )
        if wanted.memory > wanted.max_memory:
            self.add_error("memory", _("More than the maximum memory."))
        if wanted.max_memory != config.max_memory and wanted.max_memory > facts.host_memory_kib:
            self.add_error(
                "max_memory",
                _("This host has %(mib)d MiB in all.") % {"mib": facts.host_memory_kib // MIB},
            )
        return data

    def wanted(self) -> sizing.Sizing:
        """The form's values in KiB; a size left as shown keeps the definition's exact KiB."""
        config = self.facts.config
        data = self.cleaned_data

        def kib(name: str) -> int:
            had = config.get(name)
            mib = int(data[name]) if name in data and data[name] is not None else had // MIB
            return had if mib == had // MIB else mib * MIB

        return sizing.Sizing(
            memory=kib("memory"),
            max_memory=kib("max_memory"),
            vcpus=int(data["vcpus"]),
            max_vcpus=int(data["max_vcpus"]),
        )


def initial_sizing(facts: sizing.Resources) -> dict[str, int]:
    c = facts.config
    return {
        "memory": c.memory // MIB,
        "max_memory": c.max_memory // MIB,
        "vcpus": c.vcpus,
        "max_vcpus": c.max_vcpus,
    }


def _rows(facts: sizing.Resources) -> list[dict[str, Any]]:
    """One row per value: now (running), after shutdown, pending or not."""
    memory = {"memory", "max_memory"}
    rows = []
    for what in sizing.FIELDS:
        live = facts.live.get(what) if facts.live else None
        rows.append(
            {
                "label": LABELS[what],
                "memory": what in memory,
                "live": live,
                "config": facts.config.get(what),
                "pending": what in facts.pending,
            }
        )
    return rows


def _page(
    request: HttpRequest,
    host: HostRef,
    ref: DomainRef,
    facts: sizing.Resources,
    form: SizingForm,
    **extra: Any,
) -> dict[str, Any]:
    detail = virt_domains.get_detail(host, ref.name)
    who = door.who(request)
    found_cpu = _cpu(host, ref.name)
    return {
        **detail_context(host, detail, policy.can(who, Action.OPERATE, ref)),
        "tab": "hardware",
        "facts": facts,
        "rows": _rows(facts),
        "form": form,
        "may_change": policy.can(who, Action.CHANGE, ref) and facts.persistent,
        "pins": _pins(host, ref.name),
        "numa": _numa(host, ref.name),
        "placement": _placement(host, ref.name),
        "boot": _boot(host, ref.name),
        "cpu": found_cpu,
        "cpu_features": [*found_cpu.features, ("", "require")] if found_cpu else [],
        "cpu_policies": cpu.POLICIES,
        **extra,
    }


@require_http_methods(["GET", "POST"])
def domain_hardware(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """GET: the values and the form. POST preview=1: what would change (htmx
    partial). POST: do it."""
    action = Action.CHANGE if request.method == "POST" else Action.VIEW
    host_ref, ref = door.domain(door.who(request), host, name, action)
    facts = sizing.read(host_ref, name)
    posted = request.POST if request.method == "POST" else None
    form = SizingForm(posted, initial=initial_sizing(facts), facts=facts)
    partial = "domains/detail.html#sizing-preview" if is_htmx(request) else "domains/detail.html"
    if request.method == "GET":
        return render(request, "domains/detail.html", _page(request, host_ref, ref, facts, form))
    actor = Actor.of_request(request)
    if not form.is_valid():
        record(actor, "vm-resize", ref, Outcome.ERROR, form_errors(form))
        context = _page(request, host_ref, ref, facts, form)
        return render(request, partial, context, status=400)
    wanted = form.wanted()
    try:
        if request.POST.get("preview"):
            result = sizing.preview(host_ref, name, wanted)
            context = _page(
                request, host_ref, ref, facts, form, result=result, previewed=True,
                live_changes=_changes(result.live), pending_changes=_changes(result.pending),
            )  # fmt: skip
            return render(request, partial, context)
        result = sizing.apply(host_ref, name, wanted)
    except VirtError as err:
        record(actor, "vm-resize", ref, Outcome.ERROR, str(err))
        form.add_error(None, str(err))
        context = _page(request, host_ref, ref, facts, form)
        return render(request, partial, context, status=err.status)
    record(actor, "vm-resize", ref, Outcome.OK, sizing_summary(result), diff=result.diff)
    remember(host_ref, ref, actor, versions.RESIZED)
    messages.add_message(request, *_told(result))
    return _back(request, host, name)


@require_POST
def domain_hardware_revert(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """The pending values back to what the running VM has."""
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    actor = Actor.of_request(request)
    try:
        result = sizing.revert_pending(host_ref, name)
    except VirtError as err:
        record(actor, "vm-resize", ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return _back(request, host, name)
    record(actor, "vm-resize", ref, Outcome.OK, "pending reverted", diff=result.diff)
    remember(host_ref, ref, actor, versions.PENDING_REVERTED)
    messages.success(request, _("The pending changes are reverted: the definition has what runs."))
    return _back(request, host, name)


def _pins(host: HostRef, name: str) -> dict[str, Any] | None:
    """The vCPU pinning card: each vCPU's pin now and in the definition."""
    try:
        found = pinning.read(host, name)
    except VirtError:
        return None
    rows = [
        {"vcpu": v, "config": found.config[v], "live": (found.live or {}).get(v)}
        for v in range(found.vcpus)
    ]
    unpinned = (
        _("the VM's default (%(cpus)s)") % {"cpus": found.default} if found.default
        else _("any CPU")
    )  # fmt: skip
    return {"host_cpus": found.host_cpus, "last_cpu": found.host_cpus - 1,
            "running": found.running, "rows": rows, "unpinned": unpinned}  # fmt: skip


def _numa(host: HostRef, name: str) -> dict[str, Any] | None:
    """The guest NUMA card: its cells (and one empty row to add one), the host's."""
    try:
        found = numa.read(host, name)
    except VirtError:
        return None
    rows = [{"i": i, "cpus": c.cpus, "mib": c.memory_kib // MIB} for i, c in enumerate(found.cells)]
    rows.append({"i": len(rows), "cpus": "", "mib": ""})
    return {"rows": rows, "host_cells": found.host_cells, "running": found.running,
            "vcpus": found.vcpus, "memory_mib": found.memory_kib // MIB}  # fmt: skip


def _next_start_change(
    request: HttpRequest,
    host_ref: HostRef,
    ref: DomainRef,
    action: str,
    reason: str,
    work: Callable[[], str],
    said: str,
) -> HttpResponse:
    """One change of the definition for the next start (`work` gives its diff and
    may raise VirtError to refuse): audited either way, kept as a version, told."""
    actor = Actor.of_request(request)
    try:
        diff = work()
    except VirtError as err:
        record(actor, action, ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return _back(request, host_ref.slug, ref.name)
    record(actor, action, ref, Outcome.OK, said, diff=diff)
    if diff:
        remember(host_ref, ref, actor, reason)
        messages.success(request, _("Saved. It applies when the VM next starts."))
    else:
        messages.info(request, _("Nothing changed."))
    return _back(request, host_ref.slug, ref.name)


def _refused(why: str) -> Callable[[], str]:
    def refuse() -> str:
        raise InvalidInput(why)

    return refuse


def _placement(host: HostRef, name: str) -> dict[str, Any] | None:
    """The memory placement card: the definition's numatune, hugepages and emulator
    pin, beside the host's nodes, page sizes and free pages."""
    try:
        found = placement.read(host, name)
    except VirtError:
        return None
    pages = [{"label": placement.page_label(s), "kib": s, "free": found.free_pages.get(s, 0),
              "need": -(-found.memory_kib // s)} for s in found.page_sizes]  # fmt: skip
    return {"facts": found, "wanted": found.wanted, "pages": pages, "modes": placement.MODES,
            "cells": ",".join(str(c) for c in found.host_cells)}  # fmt: skip


@require_POST
def domain_placement(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """numatune mode and nodeset, hugepage size (KiB; 0: none), emulator CPUs,
    I/O threads and their CPUs."""
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    page = request.POST.get("page_kib", "0").strip()
    threads = request.POST.get("iothreads", "").strip() or "0"
    wanted = placement.Wanted(
        mode=request.POST.get("mode", "").strip(),
        nodeset=request.POST.get("nodeset", "").strip(),
        page_kib=int(page) if page.isdigit() else -1,
        emulator_cpus=request.POST.get("emulator_cpus", "").strip(),
        iothreads=int(threads) if threads.isdigit() else -1,
        iothread_cpus=request.POST.get("iothread_cpus", "").strip(),
    )
    said = (f"memory {wanted.mode or 'anywhere'} {wanted.nodeset}, pages {wanted.page_kib} KiB, "
            f"emulator {wanted.emulator_cpus or 'anywhere'}, {wanted.iothreads} I/O threads "
            f"on {wanted.iothread_cpus or 'anywhere'}")  # fmt: skip
    work = (
        _refused(_("Choose a page size from the list."))
        if wanted.page_kib < 0
        else lambda: placement.apply(host_ref, name, wanted)
    )
    return _next_start_change(request, host_ref, ref, "vm-placement", versions.PLACEMENT,
                              work, said)  # fmt: skip


@require_POST
def domain_numa(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """Guest NUMA cells: cell-N-cpus (vCPU list) and cell-N-memory (MiB); an
    empty row is no cell."""
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    cells: list[tuple[str, int]] = []
    bad = ""
    for i in range(64):
        cpus = request.POST.get(f"cell-{i}-cpus", "").strip()
        mib = request.POST.get(f"cell-{i}-memory", "").strip()
        if not cpus and not mib:
            continue
        if not mib.isdigit():
            bad = _("Cell %(i)d: give its memory in MiB.") % {"i": len(cells)}
            break
        cells.append((cpus, int(mib) * MIB))
    work = _refused(bad) if bad else lambda: numa.apply(host_ref, name, cells)
    return _next_start_change(request, host_ref, ref, "vm-numa", versions.NUMA, work,
                              f"{len(cells)} cell(s)")  # fmt: skip


def _cpu(host: HostRef, name: str) -> cpu.CpuFacts | None:
    try:
        return cpu.read(host, name)
    except VirtError:
        return None


@require_POST
def domain_cpu(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """CPU mode, model (custom) and topology (all four empty: none)."""
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    mode, model = request.POST.get("mode", ""), request.POST.get("model", "").strip()
    parts = [request.POST.get(k, "").strip() for k in ("sockets", "dies", "cores", "threads")]
    said = f"{mode or 'default'} {model}".strip()
    if any(parts) and not all(p.isdigit() for p in parts):
        work = _refused(_("Sockets, dies, cores and threads are whole numbers."))
    else:
        topo = cpu.Topology(*(int(p) for p in parts)) if any(parts) else None
        work = lambda: cpu.apply(host_ref, name, mode, model, topo)  # noqa: E731
    return _next_start_change(request, host_ref, ref, "vm-cpu", versions.CPU, work, said)


@require_POST
def domain_cpu_features(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """CPU features: feature-N-name and feature-N-policy; an empty name is no feature."""
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    features: list[tuple[str, str]] = []
    for i in range(256):
        feature = request.POST.get(f"feature-{i}-name", "").strip().lower()
        if feature:
            features.append((feature, request.POST.get(f"feature-{i}-policy", "require")))
    said = ", ".join(f"{p} {n}" for n, p in features) or "none"
    work = lambda: cpu.apply_features(host_ref, name, features)  # noqa: E731
    return _next_start_change(request, host_ref, ref, "vm-cpu-features", versions.CPU, work, said)


def _boot(host: HostRef, name: str) -> boot.BootOptions | None:
    try:
        return boot.read(host, name)
    except VirtError:
        return None


@require_POST
def domain_boot(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """Boot order (boot-<device key>: a position, empty for none), menu, title, description."""
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    orders: dict[str, int] = {}
    bad = ""
    for key in request.POST:
        if not key.startswith("boot-"):
            continue
        value = request.POST.get(key, "").strip()
        if not value:
            continue
        if not value.isdigit():
            bad = _("A boot position is a number: %(value)s.") % {"value": value[:20]}
            break
        orders[key[5:]] = int(value)
    title = request.POST.get("title", "").strip()[:255]
    description = request.POST.get("description", "").strip()[:4000]
    menu = request.POST.get("menu") == "on"
    work = (
        _refused(bad)
        if bad
        else lambda: boot.apply(host_ref, name, orders, menu, title, description)
    )
    said = ", ".join(f"{k}={v}" for k, v in orders.items())
    return _next_start_change(request, host_ref, ref, "vm-boot", versions.BOOT, work, said)


@require_POST
def domain_pins(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """vCPU pinning: one host CPU list per vCPU ("" for any CPU)."""
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    wanted: dict[int, str] = {}
    for key in request.POST:
        if key.startswith("pin-") and key[4:].isdigit():
            wanted[int(key[4:])] = request.POST.get(key, "").strip()
    actor = Actor.of_request(request)
    try:
        result = pinning.apply(host_ref, name, wanted)
    except VirtError as err:
        record(actor, "vcpu-pin", ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return _back(request, host, name)
    pins = ", ".join(f"{v}:{p or 'any'}" for v, p in sorted(wanted.items()))
    record(actor, "vcpu-pin", ref, Outcome.OK, pins, diff=result.diff)
    remember(host_ref, ref, actor, versions.PINNED)
    if result.refused:
        why = "; ".join(f"vCPU {v}: {m}" for v, m in result.refused.items())
        messages.warning(
            request,
            _("Saved. The running VM did not take it now (%(why)s): it applies after shutdown.")
            % {"why": why},
        )
    elif not result.diff and not result.live:
        messages.info(request, _("Nothing changed."))
    elif result.live:
        messages.success(request, _("Pinned in the running VM and saved in its definition."))
    else:
        messages.success(request, _("Saved. It applies when the VM starts."))
    return _back(request, host, name)


def remember(host: HostRef, ref: DomainRef, actor: Actor, reason: str) -> None:
    """The new definition in the VM's history, as this person's (domains/versions.py)."""
    try:
        current = definition.read(host, ref.name)
    except VirtError:
        return  # the events service's sink keeps it when it hears the change
    versions.remember(host.slug, ref.uuid, ref.name, current.text, actor.username, reason)


def _back(request: HttpRequest, host: str, name: str) -> HttpResponse:
    url = reverse("domain-hardware", args=[host, name])
    return HttpResponseClientRedirect(url) if is_htmx(request) else redirect(url)


def _changes(changes: tuple[sizing.Change, ...]) -> list[dict[str, Any]]:
    return [
        {
            "label": LABELS[c.what],
            "memory": "memory" in c.what,
            "before": c.before,
            "after": c.after,
        }
        for c in changes
    ]


def form_errors(form: forms.Form) -> str:
    return "; ".join(f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items())


def sizing_summary(result: sizing.Result) -> str:
    def said(changes: tuple[sizing.Change, ...]) -> str:
        return ", ".join(f"{c.what} {c.before}->{c.after}" for c in changes) or "none"

    refused = "; ".join(f"{k}: {v}" for k, v in result.refused.items())
    line = f"live: {said(result.live)}; after shutdown: {said(result.pending)}"
    return f"{line}; refused live: {refused}" if refused else line


def _told(result: sizing.Result) -> tuple[int, str]:
    """What the person is told after a change: what applies now, what waits."""
    if not result.diff and not result.live:
        return messages.INFO, _("Nothing changed.")
    if result.refused:
        why = "; ".join(result.refused.values())
        return messages.WARNING, _(
            "Saved. The running VM did not take it now (%(why)s): it applies after shutdown."
        ) % {"why": why}
    if not result.running:
        return messages.SUCCESS, _("Saved. It applies when the VM starts.")
    if result.pending:
        return messages.WARNING, _("Saved. Some values apply only after shutdown: see “Pending”.")
    return messages.SUCCESS, _("Changed in the running VM and saved in its definition.")
