"""The VM page's Snapshots tab: the tree, and take, revert, delete.

Seeing it needs Action.VIEW; the rest Action.SNAPSHOT. What this host's
libvirt and the VM's disks and firmware allow is decided in
vmdash/virt/snapshots.py and what is not offered is said with the reason.
Taking a snapshot runs as a job with a progress bar (the memory of a running
VM is saved with it); revert and delete ask first. All are audited.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from domains.views import detail_context
from vmdash import door, jobs, policy
from vmdash.audit import Actor, Outcome, record
from vmdash.policy import Action
from vmdash.render import is_htmx
from vmdash.virt import domains as virt_domains
from vmdash.virt import snapshots
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import DomainRef, HostRef


def _context(request: HttpRequest, host: HostRef, ref: DomainRef, **extra: Any) -> dict[str, Any]:
    who = door.who(request)
    detail = virt_domains.get_detail(host, ref.name)
    context: dict[str, Any] = {
        **detail_context(host, detail, policy.can(who, Action.OPERATE, ref)),
        "tab": "snapshots",
        "may_snapshot": policy.can(who, Action.SNAPSHOT, ref),
        **extra,
    }
    try:
        found = snapshots.read(host, ref.name)
        context.update(offer=found.offer, tree=found.tree)
    except VirtError as err:
        context.update(offer=None, tree=[], snap_error=str(err))
    return context


@require_http_methods(["GET", "POST"])
def domain_snapshots(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """GET: the tree (and a job's progress, ?job=). POST: take a snapshot."""
    action = Action.SNAPSHOT if request.method == "POST" else Action.VIEW
    host_ref, ref = door.domain(door.who(request), host, name, action)
    if request.method == "GET":
        job = jobs.get(request.GET.get("job", ""))
        if job is not None and not _ours(job, ref):
            job = None
        return render(request, "domains/detail.html", _context(request, host_ref, ref, job=job))
    snap_name = request.POST.get("name", "").strip()
    description = request.POST.get("description", "").strip()[:1000]
    problem = snapshots.check_name(snap_name)
    context = _context(request, host_ref, ref, snap_name=snap_name, description=description)
    if not problem and any(s.name == snap_name for s in context["tree"]):
        problem = _("There is a snapshot of that name already.")
    if not problem and context["offer"] is not None and not context["offer"].internal:
        problem = _("This VM cannot take a snapshot here: see why above.")
    if problem:
        record(Actor.of_request(request), "snapshot-create", ref, Outcome.ERROR, problem)
        return render(
            request, "domains/detail.html", {**context, "name_error": problem}, status=400
        )
    job = jobs.start(
        Actor.of_request(request),
        "snapshot-create",
        ref,
        lambda j: snapshots.create(host_ref, name, snap_name, description, j.report),
        label=snap_name,
    )
    return redirect(f"{reverse('domain-snapshots', args=[host, name])}?job={job.id}")


@require_GET
def snapshot_job(request: HttpRequest, host: str, name: str, job: str) -> HttpResponse:
    """A taking's progress (htmx polls it every second)."""
    host_ref, ref = door.domain(door.who(request), host, name)
    found = jobs.get(job)
    if found is None or not _ours(found, ref):
        raise Http404(_("There is no such job (jobs are kept ten minutes after they end)."))
    return render(request, "domains/_snapshot_job.html", {"job": found, "d": ref, "host": host_ref})


def _ours(job: jobs.Job, ref: DomainRef) -> bool:
    return job.action == "snapshot-create" and getattr(job.ref, "uuid", None) == ref.uuid


def _done(request: HttpRequest, host: str, name: str) -> HttpResponse:
    url = reverse("domain-snapshots", args=[host, name])
    return HttpResponseClientRedirect(url) if is_htmx(request) else redirect(url)


@require_POST
def snapshot_revert(request: HttpRequest, host: str, name: str, snap: str) -> HttpResponse:
    host_ref, ref = door.domain(door.who(request), host, name, Action.SNAPSHOT)
    actor = Actor.of_request(request)
    try:
        snapshots.revert(host_ref, name, snap)
    except VirtError as err:
        record(actor, "snapshot-revert", ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return _done(request, host, name)
    record(actor, "snapshot-revert", ref, Outcome.OK, snap)
    messages.success(
        request, _("%(vm)s is back at snapshot %(snap)s.") % {"vm": name, "snap": snap}
    )
    return _done(request, host, name)


@require_POST
def snapshot_delete(request: HttpRequest, host: str, name: str, snap: str) -> HttpResponse:
    host_ref, ref = door.domain(door.who(request), host, name, Action.SNAPSHOT)
    children = request.POST.get("children") == "on"
    actor = Actor.of_request(request)
    try:
        snapshots.delete(host_ref, name, snap, children)
    except VirtError as err:
        record(actor, "snapshot-delete", ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return _done(request, host, name)
    record(
        actor,
        "snapshot-delete",
        ref,
        Outcome.OK,
        f"{snap}{' and its children' if children else ''}",
    )
    if children:
        messages.success(
            request, _("Snapshot %(snap)s and those after it are deleted.") % {"snap": snap}
        )
    else:
        messages.success(request, _("Snapshot %(snap)s is deleted.") % {"snap": snap})
    return _done(request, host, name)
