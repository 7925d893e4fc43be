"""New VM wizard (one page, a summary with the XML, a job with a progress bar).

Rights: Action.CREATE on the host; a new disk volume also needs
MANAGE_STORAGE on its pool (the same as making that volume by hand, and as
a volume clone asks for its target pool), so a person who may create VMs
but not touch a pool can still install onto an existing volume.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from domains.newvm.forms import NewVmForm, initial_for
from vmdash import door, jobs
from vmdash.audit import Actor, Outcome, record
from vmdash.policy import Action
from vmdash.render import is_htmx
from vmdash.virt import create
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import HostRef
from vmdash.virt.xml.newdomain import DiskKind, VmSpec

# Where each problem of vmdash.virt.create.problems is shown on the form.
FIELD_OF = {
    "ci_hostname": "ci_hostname",
    "iso": "iso",
    "disk_gib": "disk_gib",
    "tpm": "tpm",
    "firmware": "firmware",
}


def _form(request: HttpRequest, href: HostRef, facts: create.HostFacts) -> NewVmForm:
    pools = {p.name for p in facts.pools if p.active}
    volumes = create.volumes_of(href, pools)
    if request.method == "POST":
        return NewVmForm(request.POST, facts=facts, volumes=volumes)
    initial = initial_for(request.GET.get("os", "linux2022"), facts)
    return NewVmForm(initial=initial, facts=facts, volumes=volumes)


def place_problems(form: NewVmForm, found: dict[str, str]) -> None:
    for key, message in found.items():
        field = FIELD_OF.get(key, key)
        if key == "disk":
            field = "import_volume" if form.cleaned_data["source"] == "import" else "disk_pool"
        form.add_error(field if field in form.fields else None, message)


def check_pools(request: HttpRequest, host: str, spec: VmSpec) -> None:
    for d in spec.disks:
        if d.kind in (DiskKind.NEW, DiskKind.SEED):
            door.pool(door.who(request), host, d.pool, Action.MANAGE_STORAGE)


@require_http_methods(["GET", "POST"])
def new_vm(request: HttpRequest, host: str) -> HttpResponse:
    href = door.host(door.who(request), host, Action.CREATE)
    facts = create.host_facts(href)
    form = _form(request, href, facts)
    context: dict[str, Any] = {"host": href, "facts": facts, "form": form}
    if request.method == "GET" or not form.is_valid():
        return render(request, "domains/newvm/new.html", context, status=_status(request, form))
    try:
        spec = form.spec()
        volumes = create.volumes_of(href, pools_of(spec))
        place_problems(
            form, create.problems(spec, facts, volumes, bool(form.cleaned_data["start"]))
        )
        xml = create.preview(spec)
    except VirtError as err:
        form.add_error(None, str(err))
    if form.errors:
        record(Actor.of_request(request), "vm-create", href, Outcome.ERROR, errors_line(form))
        return render(request, "domains/newvm/new.html", context, status=400)
    if "preview" in request.POST:
        return render(request, "domains/newvm/new.html", {**context, "xml": xml})
    check_pools(request, host, spec)
    return _start_job(request, href, spec, form.cleaned_data)


def _status(request: HttpRequest, form: NewVmForm) -> int:
    return 400 if request.method == "POST" else 200


def pools_of(spec: VmSpec) -> set[str]:
    return {d.pool for d in spec.disks}


def errors_line(form: NewVmForm) -> str:
    return "; ".join(f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items())


def _start_job(
    request: HttpRequest, href: HostRef, spec: VmSpec, data: dict[str, Any]
) -> HttpResponse:
    start, autostart = bool(data.get("start")), bool(data.get("autostart"))
    job = jobs.start(
        Actor.of_request(request),
        "vm-create",
        href,
        lambda j: create.create_vm(href, spec, start, autostart, j.report),
        label=f"{spec.name} ({spec.virt_type})",
    )
    return redirect(reverse("newvm-job", args=[href.slug, job.id]))


JOB_ACTIONS = {"vm-create", "vm-clone"}


def _host_of(job: jobs.Job) -> str:
    ref = job.ref
    return ref.slug if isinstance(ref, HostRef) else ref.host


@require_GET
def job_status(request: HttpRequest, host: str, job: str) -> HttpResponse:
    href = door.host(door.who(request), host, Action.CREATE)
    found = jobs.get(job)
    if found is None or found.action not in JOB_ACTIONS or _host_of(found) != href.slug:
        raise Http404(_("There is no such job (jobs are kept ten minutes after they end)."))
    template = "domains/newvm/job.html#progress" if is_htmx(request) else "domains/newvm/job.html"
    return render(request, template, {"job": found, "host": href})
