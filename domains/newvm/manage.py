"""Clone a VM (a job), delete it with the volumes a person ticks, define one from
XML, and recreate a deleted one from the definitions vmdash kept.

Rights: a clone needs CREATE on the source VM (a host grant covers it: the
copy lands on the same host and holds the source's data) and MANAGE_STORAGE
on each pool it copies into; delete-with-storage needs DELETE on the VM and
MANAGE_STORAGE on each pool whose volume is ticked.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from domains.models import DomainVersion
from vmdash import door, jobs
from vmdash.audit import Actor, Outcome, record
from vmdash.policy import Action
from vmdash.virt import clone as virt_clone
from vmdash.virt import importxml as virt_import
from vmdash.virt.domains import get_summary, list_domains
from vmdash.virt.errors import VirtError


@require_http_methods(["GET", "POST"])
def clone_vm(request: HttpRequest, host: str, name: str) -> HttpResponse:
    who = door.who(request)
    href, ref = door.domain(who, host, name, Action.CREATE)
    disks = virt_clone.disk_volumes(href, name)
    summary = get_summary(href, name)
    context = {"host": href, "d": summary, "disks": disks, "new_name": f"{name}-clone"}
    if request.method == "GET":
        return render(request, "domains/newvm/clone.html", context)
    for pool_name in {d.pool for d in disks}:
        door.pool(who, host, pool_name, Action.MANAGE_STORAGE)
    new_name = request.POST.get("new_name", "").strip()
    pause = request.POST.get("pause") == "on"
    error = clone_problem(new_name, summary.state.is_active, pause)
    if error:
        record(Actor.of_request(request), "vm-clone", ref, Outcome.ERROR, error)
        return render(
            request, "domains/newvm/clone.html", {**context, "new_name": new_name, "error": error},
            status=400,
        )  # fmt: skip
    job = jobs.start(
        Actor.of_request(request),
        "vm-clone",
        ref,
        lambda j: CloneResult(virt_clone.clone_vm(href, name, new_name, pause, j.report)),
        label=f"{name} -> {new_name}",
    )
    return redirect(reverse("newvm-job", args=[host, job.id]))


class CloneResult:
    """What the job page shows when done (the same shape as a create's result)."""

    def __init__(self, ref: object) -> None:
        self.ref, self.virt_type = ref, ""


def clone_problem(new_name: str, active: bool, pause: bool) -> str:
    if not new_name:
        return _("Give the clone a name.")
    if active and not pause:
        return _(
            "The VM is running: shut it down first, or accept that it is paused while its "
            "disks are copied (a crash-consistent copy)."
        )
    return ""


@require_http_methods(["GET", "POST"])
def delete_vm(request: HttpRequest, host: str, name: str) -> HttpResponse:
    who = door.who(request)
    href, ref = door.domain(who, host, name, Action.DELETE)
    disks = virt_clone.disk_volumes(href, name)
    context = {"host": href, "d": get_summary(href, name), "disks": disks}
    if request.method == "GET":
        return render(request, "domains/newvm/delete.html", context)
    ticked = set(request.POST.getlist("volume"))
    for d in disks:
        if d.key in ticked:
            door.pool(who, host, d.pool, Action.MANAGE_STORAGE)
    if request.POST.get("confirm") != name:
        context["error"] = _("Type the VM's name to confirm.")
        return render(request, "domains/newvm/delete.html", context, status=400)
    actor = Actor.of_request(request)
    try:
        done = virt_clone.delete_with_storage(href, name, ticked)
    except VirtError as err:
        record(actor, "vm-delete", ref, Outcome.ERROR, str(err))
        context["error"] = str(err)
        return render(request, "domains/newvm/delete.html", context, status=409)
    record(actor, "vm-delete", done.ref, Outcome.OK, done.message)
    messages.success(
        request, _("VM '%(name)s' deleted; %(what)s.") % {"name": name, "what": done.message}
    )
    return redirect("domain-list")


MAX_IMPORT = 1_000_000  # characters: a domain XML of a few hundred lines is ~20 kB


def _kept_version(host: str, pk: str) -> DomainVersion | None:
    return DomainVersion.objects.filter(host=host, pk=int(pk)).first() if pk.isdigit() else None


@require_GET
def deleted_vms(request: HttpRequest, host: str) -> HttpResponse:
    """The VMs of this host that are gone but whose definitions vmdash kept
    (domains/versions.py): their last name and definition, and "Recreate"."""
    href = door.host(door.who(request), host, Action.CREATE)
    present = {d.uuid for d in list_domains(href)}
    last: dict[str, DomainVersion] = {}
    counts: dict[str, int] = {}
    kept = DomainVersion.objects.filter(host=href.slug).exclude(uuid__in=present)
    for version in kept.order_by("-at", "-pk").iterator():
        last.setdefault(version.uuid, version)
        counts[version.uuid] = counts.get(version.uuid, 0) + 1
    rows = [(v, counts[v.uuid]) for v in sorted(last.values(), key=lambda v: v.at, reverse=True)]
    return render(request, "domains/newvm/deleted.html", {"host": href, "rows": rows})


@require_http_methods(["GET", "POST"])
def import_vm(request: HttpRequest, host: str) -> HttpResponse:
    """Paste or upload a domain XML; define it and list what libvirt did not keep."""
    href = door.host(door.who(request), host, Action.CREATE)
    context: dict[str, object] = {"host": href, "text": ""}
    if request.method == "GET":
        kept = _kept_version(href.slug, request.GET.get("version", ""))
        if kept is not None:  # "Recreate" of a deleted VM: its last definition
            context.update(text=kept.xml, recreating=kept)
        return render(request, "domains/newvm/import.html", context)
    upload = request.FILES.get("file")
    text = upload.read(MAX_IMPORT).decode("utf-8", "replace") if upload else ""
    text = text or request.POST.get("xml", "")[:MAX_IMPORT]
    context["text"] = text
    actor = Actor.of_request(request)
    try:
        problems = virt_import.check(href, text)
        if problems:
            context["problems"] = problems
            return render(request, "domains/newvm/import.html", context, status=400)
        done = virt_import.define(href, text, validate=request.POST.get("unchecked") != "on")
    except VirtError as err:
        record(actor, "vm-import", href, Outcome.ERROR, str(err))
        context["error"] = str(err)
        return render(request, "domains/newvm/import.html", context, status=400)
    summary = "; ".join(done.lost) or "libvirt kept every element and attribute"
    record(actor, "vm-import", done.ref, Outcome.OK, summary)
    context.update({"done": done, "text": ""})
    return render(request, "domains/newvm/import.html", context)
