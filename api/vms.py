"""VMs: the list with the page's filters, one VM, life cycle, XML with its guard,
snapshots, definition history, console, load. Each operation asks the door."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from django.http import Http404, HttpRequest, QueryDict
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from api.core import answers
from api.schemas import (
    ConsoleOut,
    LoadOut,
    OpDone,
    Page,
    Paging,
    VersionOut,
    XmlDone,
    XmlIn,
    XmlOut,
    page_of,
)
from domains import versions
from domains.models import DomainVersion
from domains.newvm.forms import NewVmForm
from domains.newvm.manage import CloneResult, clone_problem
from domains.newvm.views import check_pools, errors_line, place_problems, pools_of
from domains.sizing import MIB, SizingForm, form_errors, initial_sizing, remember, sizing_summary
from domains.templatetags.domains import LABELS, op_done
from domains.views import LOAD_SORTS, STATE_FILTERS, filtered, list_hosts, read_rows, with_metadata
from stats.load import loads
from vmdash import door, jobs
from vmdash.audit import Actor, Outcome, perform, record
from vmdash.policy import Action
from vmdash.virt import clone as virt_clone
from vmdash.virt import create, definition, sizing, snapshots
from vmdash.virt import disks as virt_disks
from vmdash.virt import domains as virt_domains
from vmdash.virt import media as virt_media
from vmdash.virt import nics as virt_nics
from vmdash.virt.domains import OPS, Disk, Graphics, Nic, Op, Serial
from vmdash.virt.errors import InvalidInput, VirtError
from vmdash.virt.refs import HostRef
from vmdash.virt.snapshots import Snapshot

router = Router(tags=["VMs"])

StateFilter = Literal["", "running", "paused", "shutoff", "crashed"]
Sort = Literal[
    "name", "-name", "host", "-host", "state", "-state", "vcpus", "-vcpus",
    "memory", "-memory", "autostart", "-autostart", "cpu", "-cpu", "used", "-used",
]  # fmt: skip
assert set(STATE_FILTERS) == {s for s in StateFilter.__args__ if s}  # type: ignore[attr-defined]


class VmOut(Schema):
    host: str
    name: str
    uuid: str
    state: str
    reason: str
    vcpus: int
    memory_kib: int
    max_memory_kib: int
    persistent: bool
    autostart: bool
    managed_save: bool
    title: str
    description: str
    tags: list[str] | None
    ops: list[str]  # what may be done now (POST …/actions/<op>/)


class Unreachable(Schema):
    host: str
    error: str


class VmPage(Page[VmOut]):
    unreachable: list[Unreachable]


class VmFilters(Paging):
    host: str = Field("", max_length=50, description="only this host's VMs")
    state: StateFilter = ""
    q: str = Field("", max_length=200, description="part of the name, or tag:<name>")
    sort: Sort = "name"


class VmDetailOut(Schema):
    vm: VmOut
    os_type: str
    arch: str
    machine: str
    firmware: str
    boot_order: list[str]
    emulator: str
    domain_type: str
    disks: list[Disk]
    nics: list[Nic]
    graphics: list[Graphics]
    serials: list[Serial]


class SnapshotsOut(Schema):
    internal_offered: bool
    why_not: list[str]
    snapshots: list[Snapshot]


def _vm(d: virt_domains.DomainSummary) -> VmOut:
    return VmOut(
        host=d.host, name=d.name, uuid=d.uuid, state=d.state.value, reason=d.reason,
        vcpus=d.vcpus, memory_kib=d.memory_kib, max_memory_kib=d.max_memory_kib,
        persistent=d.persistent, autostart=d.autostart, managed_save=d.managed_save,
        title=d.title, description=d.description,
        tags=sorted(d.tags) if d.tags is not None else None, ops=[o.value for o in d.ops],
    )  # fmt: skip


@router.get("/vms/", response=answers(VmPage), summary="VMs of every host you may see")
def vm_list(request: HttpRequest, filters: Query[VmFilters]) -> VmPage:
    who = door.who(request)
    hosts = door.visible_hosts(who)
    query = QueryDict(mutable=True)
    query.update({k: str(v) for k, v in filters.dict().items() if v not in ("", None)})
    shown = list_hosts(query, {h.slug for h in hosts})
    rows, errors = read_rows(who, [h.ref for h in hosts if h.slug in shown])
    # Every row's load only to sort by it, as the page does.
    by_load = filters.sort.lstrip("-") in LOAD_SORTS
    rows = filtered(rows, query, loads((d.host, d.uuid) for d in rows) if by_load else {})
    page = page_of(rows, filters.page, filters.per_page)
    # Titles and descriptions for this page's rows only, as the page reads them.
    items = with_metadata(list(page.items), {h.slug: h.ref for h in hosts if h.slug in shown})
    return VmPage(
        items=[_vm(d) for d in items],
        total=page.total, page=page.page, pages=page.pages,
        unreachable=[Unreachable(host=r.host.slug, error=str(r.error or "")) for r in errors],
    )  # fmt: skip


@router.get("/hosts/{host}/vms/{name}/", response=answers(VmDetailOut), summary="One VM")
def vm_detail(request: HttpRequest, host: str, name: str) -> VmDetailOut:
    href, _ref = door.domain(door.who(request), host, name)
    d = virt_domains.get_detail(href, name)
    return VmDetailOut(
        vm=_vm(d.summary), os_type=d.os_type, arch=d.arch, machine=d.machine,
        firmware=d.firmware, boot_order=list(d.boot_order), emulator=d.emulator,
        domain_type=d.domain_type, disks=list(d.disks), nics=list(d.nics),
        graphics=list(d.graphics), serials=list(d.serials),
    )  # fmt: skip


@router.post(
    "/hosts/{host}/vms/{name}/actions/{op}/",
    response=answers(OpDone, 400),
    summary="Start, shut down, reboot, force off, pause, resume, save, autostart, delete",
    description="force-off, discard-save and delete ask for `confirm`: the VM's name again.",
)
def vm_action(
    request: HttpRequest,
    host: str,
    name: str,
    op: Op,
    confirm: str = Query("", max_length=255),  # type: ignore[type-arg]
) -> OpDone:
    action = Action.DELETE if op == Op.DELETE else Action.OPERATE
    href, ref = door.domain(door.who(request), host, name, action)
    if OPS[op].confirm and confirm != name:
        raise InvalidInput(
            _("“%(label)s” of VM '%(name)s' needs confirm=%(name)s: its name again.")
            % {"label": LABELS[op], "name": name}
        )
    fresh = perform(
        Actor.of_request(request, via="api"), op.value, ref,
        lambda: virt_domains.run_op(href, name, op),
    )  # fmt: skip
    return OpDone(host=host, name=fresh.name, done=op_done(op, fresh.name))


@router.get("/hosts/{host}/vms/{name}/xml/", response=answers(XmlOut), summary="Definition")
def vm_xml(request: HttpRequest, host: str, name: str) -> XmlOut:
    href, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    current = definition.read(href, name)
    versions.looked_at(href.slug, ref.uuid, name, current.text)
    return XmlOut(xml=current.text, digest=current.digest)


@router.put(
    "/hosts/{host}/vms/{name}/xml/",
    response=answers(XmlDone, 400),
    summary="Replace the definition",
    description="Refused (409) when the definition changed since `digest` was read.",
)
def vm_xml_replace(request: HttpRequest, host: str, name: str, body: XmlIn) -> XmlDone:
    href, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    actor = Actor.of_request(request, via="api")
    try:
        done = definition.replace(href, name, body.xml, body.digest)
    except VirtError as err:
        record(actor, "xml-edit", ref, Outcome.ERROR, str(err))
        raise
    versions.remember(href.slug, ref.uuid, name, done.stored, actor.username, versions.XML_EDITED)
    record(actor, "xml-edit", ref, Outcome.OK, "; ".join(done.lost), diff=done.diff)
    return XmlDone(diff=done.diff, lost=list(done.lost), digest=definition.digest(done.stored))


@router.get(
    "/hosts/{host}/vms/{name}/snapshots/", response=answers(SnapshotsOut), summary="Snapshots"
)
def vm_snapshots(request: HttpRequest, host: str, name: str) -> SnapshotsOut:
    href, _ref = door.domain(door.who(request), host, name)
    found = snapshots.read(href, name)
    return SnapshotsOut(
        internal_offered=found.offer.internal,
        why_not=list(found.offer.why_not),
        snapshots=found.tree,
    )


@router.get(
    "/hosts/{host}/vms/{name}/history/",
    response=answers(Page[VersionOut]),
    summary="Every definition vmdash made or saw, newest first",
)
def vm_history(
    request: HttpRequest, host: str, name: str, paging: Query[Paging]
) -> Page[VersionOut]:
    href, ref = door.domain(door.who(request), host, name)
    versions.remember_now(href, name, ref.uuid)
    kept = list(DomainVersion.objects.filter(host=href.slug, uuid=ref.uuid))
    page = page_of(kept, paging.page, paging.per_page)
    start = (page.page - 1) * paging.per_page
    older = [*kept[start + 1 : start + 1 + len(page.items)], None]
    items = [
        VersionOut(
            id=v.pk,
            at=v.at,
            name=v.name,
            username=v.username,
            reason=versions.told(v.reason),
            summary=versions.summary(v, before),
            digest=v.digest,
        )
        for v, before in zip(page.items, older, strict=False)
    ]
    return Page[VersionOut](items=items, total=page.total, page=page.page, pages=page.pages)


@router.get(
    "/hosts/{host}/vms/{name}/console/",
    response=answers(ConsoleOut),
    summary="Where the VM's console opens",
    description=(
        "Console tickets stay bound to a browser session: a token alone never opens "
        "a console; the URL opens it for the same person logged in."
    ),
)
def vm_console(request: HttpRequest, host: str, name: str) -> ConsoleOut:
    _href, _ref, view_only = door.console(door.who(request), host, name)
    path = reverse("domain-console", args=[host, name])
    return ConsoleOut(url=request.build_absolute_uri(path), view_only=view_only)


@router.get(
    "/hosts/{host}/vms/{name}/load/", response=answers(LoadOut), summary="CPU and memory now"
)
def vm_load(request: HttpRequest, host: str, name: str) -> LoadOut:
    _href, ref = door.domain(door.who(request), host, name)
    load = loads([(host, ref.uuid)]).get((host, ref.uuid))
    if load is None:
        return LoadOut(cpu_percent=None, memory_used=None, memory_total=None)
    return LoadOut(cpu_percent=load.cpu, memory_used=load.used, memory_total=load.total)


# --- snapshots: take (a job), revert, delete ---------------------------------------


class SnapshotIn(Schema):
    name: str = Field(..., max_length=200)
    description: str = Field("", max_length=1000)


class JobOut(Schema):
    id: str
    action: str
    label: str
    state: str  # running, done, failed, cancelled
    percent: int
    note: str
    message: str  # the outcome's sentence once it ended
    made: str | None = None  # the name of what it made (a VM, a snapshot), once done


def job_out(job: jobs.Job) -> JobOut:
    result = job.result
    made = getattr(getattr(result, "ref", None), "name", None)
    if made is None and isinstance(result, str):
        made = result  # a snapshot's name
    return JobOut(
        id=job.id, action=job.action, label=job.label, state=job.state.value,
        percent=job.percent, note=job.note, message=job.message, made=made,
    )  # fmt: skip


@router.post(
    "/hosts/{host}/vms/{name}/snapshots/",
    response=answers(JobOut, 400),
    summary="Take a snapshot (a job: follow it at /jobs/{id}/)",
)
def snapshot_take(request: HttpRequest, host: str, name: str, body: SnapshotIn) -> JobOut:
    href, ref = door.domain(door.who(request), host, name, Action.SNAPSHOT)
    snap_name = body.name.strip()
    actor = Actor.of_request(request, via="api")
    problem = snapshots.check_name(snap_name)
    found = snapshots.read(href, name)
    if not problem and any(s.name == snap_name for s in found.tree):
        problem = _("There is a snapshot of that name already.")
    if not problem and not found.offer.internal:
        problem = " ".join(found.offer.why_not)
    if problem:
        record(actor, "snapshot-create", ref, Outcome.ERROR, problem)
        raise InvalidInput(problem)
    description = body.description.strip()
    job = jobs.start(
        actor, "snapshot-create", ref,
        lambda j: snapshots.create(href, name, snap_name, description, j.report),
        label=snap_name,
    )  # fmt: skip
    return job_out(job)


@router.post(
    "/hosts/{host}/vms/{name}/snapshots/{snapshot}/revert/",
    response=answers(OpDone, 400),
    summary="Go back to a snapshot",
)
def snapshot_revert(request: HttpRequest, host: str, name: str, snapshot: str) -> OpDone:
    href, ref = door.domain(door.who(request), host, name, Action.SNAPSHOT)
    perform(
        Actor.of_request(request, via="api"), "snapshot-revert", ref,
        lambda: snapshots.revert(href, name, snapshot),
    )  # fmt: skip
    done = _("%(vm)s is back at snapshot %(snap)s.") % {"vm": name, "snap": snapshot}
    return OpDone(host=host, name=name, done=done)


@router.delete(
    "/hosts/{host}/vms/{name}/snapshots/{snapshot}/",
    response=answers(OpDone, 400),
    summary="Delete a snapshot (children=true: and its children; else they move up)",
)
def snapshot_delete(
    request: HttpRequest, host: str, name: str, snapshot: str, children: bool = False
) -> OpDone:
    href, ref = door.domain(door.who(request), host, name, Action.SNAPSHOT)
    perform(
        Actor.of_request(request, via="api"), "snapshot-delete", ref,
        lambda: snapshots.delete(href, name, snapshot, children),
    )  # fmt: skip
    done = _("Snapshot %(snap)s of %(vm)s is deleted.") % {"vm": name, "snap": snapshot}
    return OpDone(host=host, name=name, done=done)


@router.get("/jobs/{job}/", response=answers(JobOut), tags=["Jobs"], summary="A job of yours")
def job_detail(request: HttpRequest, job: str) -> JobOut:
    who = door.who(request)
    found = jobs.get(job)
    if found is None or found.actor.user_id != who.user_id or not who.active:
        raise Http404(_("There is no such job (jobs are kept ten minutes after they end)."))
    return job_out(found)


# --- memory and vCPUs ----------------------------------------------------------------


class SizingOut(Schema):
    memory_mib: int
    max_memory_mib: int
    vcpus: int
    max_vcpus: int


class HardwareOut(Schema):
    running: bool
    live: SizingOut | None  # what the running VM has
    config: SizingOut  # what its next start gets
    pending: list[str]  # what differs: applies after shutdown


class HardwareIn(Schema):
    memory_mib: int = Field(..., ge=16, le=2**40)
    max_memory_mib: int = Field(..., ge=16, le=2**40)
    vcpus: int = Field(..., ge=1, le=16384)
    max_vcpus: int = Field(..., ge=1, le=16384)


class ChangeOut(Schema):
    what: str
    before: int
    after: int


class HardwareDone(Schema):
    live: list[ChangeOut]  # applied to the running VM now (and saved)
    pending: list[ChangeOut]  # saved; applies after shutdown
    refused: dict[str, str]  # live changes the hypervisor refused, why (saved all the same)
    diff: str


def _mib(s: sizing.Sizing) -> SizingOut:
    return SizingOut(
        memory_mib=s.memory // MIB, max_memory_mib=s.max_memory // MIB,
        vcpus=s.vcpus, max_vcpus=s.max_vcpus,
    )  # fmt: skip


def _hardware(facts: sizing.Resources) -> HardwareOut:
    live = _mib(facts.live) if facts.live is not None else None
    config = _mib(facts.config)
    return HardwareOut(running=facts.running, live=live, config=config, pending=list(facts.pending))


@router.get("/hosts/{host}/vms/{name}/hardware/", response=answers(HardwareOut),
            summary="Memory and vCPUs: live beside defined")  # fmt: skip
def hardware(request: HttpRequest, host: str, name: str) -> HardwareOut:
    href, _ref = door.domain(door.who(request), host, name)
    return _hardware(sizing.read(href, name))


@router.put(
    "/hosts/{host}/vms/{name}/hardware/",
    response=answers(HardwareDone, 400),
    summary="Change memory and vCPUs",
    description="Live where the hypervisor takes it, else pending until the VM is shut down.",
)
def hardware_change(request: HttpRequest, host: str, name: str, body: HardwareIn) -> HardwareDone:
    href, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    facts = sizing.read(href, name)
    posted = {
        "memory": body.memory_mib, "max_memory": body.max_memory_mib,
        "vcpus": body.vcpus, "max_vcpus": body.max_vcpus,
    }  # fmt: skip
    form = SizingForm(posted, initial=initial_sizing(facts), facts=facts)
    actor = Actor.of_request(request, via="api")
    if not form.is_valid():
        why = form_errors(form)
        record(actor, "vm-resize", ref, Outcome.ERROR, why)
        raise InvalidInput(why)
    try:
        result = sizing.apply(href, name, form.wanted())
    except VirtError as err:
        record(actor, "vm-resize", ref, Outcome.ERROR, str(err))
        raise
    record(actor, "vm-resize", ref, Outcome.OK, sizing_summary(result), diff=result.diff)
    remember(href, ref, actor, versions.RESIZED)

    def changes(found: tuple[sizing.Change, ...]) -> list[ChangeOut]:
        return [ChangeOut(what=c.what, before=c.before, after=c.after) for c in found]

    return HardwareDone(
        live=changes(result.live), pending=changes(result.pending),
        refused=dict(result.refused), diff=result.diff,
    )  # fmt: skip


@router.post(
    "/hosts/{host}/vms/{name}/history/{version}/revert/",
    response=answers(XmlDone, 400),
    summary="Define an old version again (itself a new version)",
)
def history_revert(request: HttpRequest, host: str, name: str, version: int) -> XmlDone:
    href, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    kept = DomainVersion.objects.filter(pk=version, host=href.slug, uuid=ref.uuid).first()
    if kept is None:
        raise Http404(_("There is no such version of this VM."))
    actor = Actor.of_request(request, via="api")
    when = f"{kept.at:%Y-%m-%d %H:%M:%S}"
    try:
        done = definition.restore(href, name, kept.xml)
    except VirtError as err:
        record(actor, "definition-revert", ref, Outcome.ERROR, str(err))
        raise
    versions.remember(href.slug, ref.uuid, name, done.stored, actor.username,
                      versions.REVERTED + when)  # fmt: skip
    record(actor, "definition-revert", ref, Outcome.OK, f"to {when}", diff=done.diff)
    return XmlDone(diff=done.diff, lost=list(done.lost), digest=definition.digest(done.stored))


# --- new VMs and clones (jobs) -------------------------------------------------------


class VmIn(Schema):
    """The new-VM form's fields (docs/newvm.md); what it leaves out takes its default."""

    name: str = Field(..., max_length=200)
    os_id: str = Field("linux2022", max_length=100, description="an osinfo id")
    source: Literal["iso", "import", "network", "kernel"] = "network"
    iso: str = Field("", max_length=1000, description="pool/volume.iso")
    import_volume: str = Field("", max_length=1000, description="pool/volume")
    kernel: str = Field("", max_length=1000)
    initrd: str = Field("", max_length=1000)
    cmdline: str = Field("", max_length=1000)
    memory_mib: int = Field(1024, ge=16, le=2**30)
    vcpus: int = Field(1, ge=1, le=4096)
    new_disk: bool = False
    disk_pool: str = Field("", max_length=255)
    disk_gib: int | None = Field(None, ge=1, le=2**20)
    disk_format: Literal["qcow2", "raw"] = "qcow2"
    disk_bus: Literal["virtio", "sata", "scsi", "ide"] = "virtio"
    network: str = Field("", max_length=255)
    bridge: str = Field("", max_length=15)
    nic_model: Literal["virtio", "e1000e", "e1000", "rtl8139"] = "virtio"
    firmware: str = Field("bios", max_length=20)
    machine: Literal["q35", "pc"] = "q35"
    tpm: bool = False
    vnc: bool = True
    serial: bool = True
    autostart: bool = False
    start: bool = False
    ci_hostname: str = Field("", max_length=63)
    ci_user: str = Field("", max_length=32)
    ci_ssh_key: str = Field("", max_length=10_000)
    ci_user_data: str = Field("", max_length=100_000)


class CloneIn(Schema):
    new_name: str = Field(..., max_length=200)
    pause: bool = Field(False, description="a running VM is paused while its disks are copied")


@router.post(
    "/hosts/{host}/vms/",
    response=answers(JobOut, 400),
    summary="Create a VM (a job: follow it at /jobs/{id}/)",
    description="The checks and sentences of the new-VM page; a failed create removes "
    "what it made.",
)
def vm_create(request: HttpRequest, host: str, body: VmIn) -> JobOut:
    href = door.host(door.who(request), host, Action.CREATE)
    facts = create.host_facts(href)
    volumes = create.volumes_of(href, {p.name for p in facts.pools if p.active})
    posted = {k: v for k, v in body.dict().items() if v not in (None, False)}
    form = NewVmForm(posted, facts=facts, volumes=volumes)
    actor = Actor.of_request(request, via="api")
    spec = None
    if form.is_valid():
        try:
            spec = form.spec()
            found = create.problems(spec, facts, create.volumes_of(href, pools_of(spec)),
                                    body.start)  # fmt: skip
            place_problems(form, found)
        except VirtError as err:
            form.add_error(None, str(err))
    if spec is None or form.errors:
        why = errors_line(form)
        record(actor, "vm-create", href, Outcome.ERROR, why)
        raise InvalidInput(why)
    check_pools(request, host, spec)
    start, autostart = body.start, body.autostart
    job = jobs.start(
        actor, "vm-create", href,
        lambda j: create.create_vm(href, spec, start, autostart, j.report),
        label=f"{spec.name} ({spec.virt_type})",
    )  # fmt: skip
    return job_out(job)


@router.post(
    "/hosts/{host}/vms/{name}/clone/",
    response=answers(JobOut, 400),
    summary="Clone a VM with copies of its disks (a job)",
)
def vm_clone(request: HttpRequest, host: str, name: str, body: CloneIn) -> JobOut:
    who = door.who(request)
    href, ref = door.domain(who, host, name, Action.CREATE)
    disks = virt_clone.disk_volumes(href, name)
    for pool_name in {d.pool for d in disks}:
        door.pool(who, host, pool_name, Action.MANAGE_STORAGE)
    new_name = body.new_name.strip()
    actor = Actor.of_request(request, via="api")
    error = clone_problem(new_name, virt_domains.get_summary(href, name).state.is_active,
                          body.pause)  # fmt: skip
    if error:
        record(actor, "vm-clone", ref, Outcome.ERROR, error)
        raise InvalidInput(error)
    pause = body.pause
    job = jobs.start(
        actor, "vm-clone", ref,
        lambda j: CloneResult(virt_clone.clone_vm(href, name, new_name, pause, j.report)),
        label=f"{name} -> {new_name}",
    )  # fmt: skip
    return job_out(job)


# --- a disk's bus and modes, a NIC's connection, model and MAC ----------------------


class DiskTuneIn(Schema):
    bus: Literal["virtio", "scsi", "sata", "ide"]
    cache: Literal["", "none", "writeback", "writethrough", "directsync", "unsafe"] = ""
    io: Literal["", "native", "threads", "io_uring"] = ""
    discard: Literal["", "unmap", "ignore"] = ""


class NicTuneIn(Schema):
    kind: Literal["network", "bridge", "ovs", "direct"]
    source: str = Field(..., max_length=255, description="the network, bridge or device")
    model: Literal["virtio", "e1000e", "e1000", "rtl8139"] = "virtio"
    mac: str = Field("", max_length=17, description="a new MAC; empty keeps it")
    mode: Literal["bridge", "vepa", "private", "passthrough"] = "bridge"


class DeviceDone(Schema):
    diff: str  # "" when nothing changed
    now: str  # the disk's target or the NIC's MAC after the change
    applies: str  # "next start": the definition changed, not the running VM


def _device(
    request: HttpRequest, host: str, name: str, action: str, reason: str,
    work: Callable[[HostRef], tuple[str, str]],
) -> DeviceDone:  # fmt: skip
    href, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    actor = Actor.of_request(request, via="api")
    try:
        diff, now = work(href)
    except VirtError as err:
        record(actor, action, ref, Outcome.ERROR, str(err))
        raise
    record(actor, action, ref, Outcome.OK, now, diff=diff)
    if diff:
        remember(href, ref, actor, reason)
    return DeviceDone(diff=diff, now=now, applies="next start")


@router.put(
    "/hosts/{host}/vms/{name}/disks/{target}/",
    response=answers(DeviceDone, 400),
    summary="A disk's bus, cache, I/O and discard mode (for the next start)",
)
def disk_tune(
    request: HttpRequest, host: str, name: str, target: str, body: DiskTuneIn
) -> DeviceDone:
    wanted = virt_disks.Tuning(body.bus, body.cache, body.io, body.discard)
    return _device(request, host, name, "disk-tune", versions.DISKS,
                   lambda h: virt_disks.tune(h, name, target, wanted))  # fmt: skip


@router.put(
    "/hosts/{host}/vms/{name}/nics/{mac}/",
    response=answers(DeviceDone, 400),
    summary="What a NIC connects to, its model and MAC (for the next start)",
)
def nic_tune(request: HttpRequest, host: str, name: str, mac: str, body: NicTuneIn) -> DeviceDone:
    wanted = virt_nics.NicTuning(body.kind, body.source.strip(), body.model,
                                 body.mac.strip().lower(), body.mode)  # fmt: skip
    return _device(request, host, name, "nic-tune", versions.NICS,
                   lambda h: virt_nics.tune(h, name, mac, wanted))  # fmt: skip


# --- CD media, attaching and detaching disks and NICs, link state (live) -----------


class MediaIn(Schema):
    volume: str = Field("", max_length=1000, description="pool/name.iso; empty ejects")


class DiskAddIn(Schema):
    volume: str = Field(..., max_length=1000, description="pool/volume")
    bus: Literal["virtio", "scsi", "sata", "ide"] = "virtio"


class NicAddIn(Schema):
    network: str = Field(..., max_length=255)
    model: Literal["virtio", "e1000e", "e1000", "rtl8139"] = "virtio"
    mac: str = Field("", max_length=17, description="empty: libvirt chooses")


class LinkIn(Schema):
    up: bool


class LiveDone(Schema):
    device: str  # the drive or disk target, or the NIC's MAC
    live: bool  # the running guest has it now (and the next start keeps it)
    waiting: bool = False  # a removal the running guest has not let go of yet


def _live(
    request: HttpRequest, host: str, name: str, action: str, reason: str,
    work: Callable[[HostRef], LiveDone],
) -> LiveDone:  # fmt: skip
    """A device change through the door (CHANGE), audited either way, kept as a version."""
    href, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    actor = Actor.of_request(request, via="api")
    done = perform(actor, action, ref, lambda: work(href))
    remember(href, ref, actor, reason)
    return done


@router.put(
    "/hosts/{host}/vms/{name}/media/{target}/", response=answers(LiveDone, 400),
    summary="Insert an ISO volume into a CD-ROM drive, or eject it",
)  # fmt: skip
def media_change(
    request: HttpRequest, host: str, name: str, target: str, body: MediaIn
) -> LiveDone:
    def work(h: HostRef) -> LiveDone:
        done = virt_media.change(h, name, target, body.volume)
        return LiveDone(device=target, live=done.live)

    return _live(request, host, name, "media", versions.MEDIA, work)


@router.post(
    "/hosts/{host}/vms/{name}/disks/", response=answers(LiveDone, 400),
    summary="Attach a volume as a disk (live where the bus allows)",
)  # fmt: skip
def disk_add(request: HttpRequest, host: str, name: str, body: DiskAddIn) -> LiveDone:
    who = door.who(request)
    door.domain(who, host, name, Action.CHANGE)  # the VM first, then
    if "/" in body.volume:  # the volume's pool, an object of its own
        door.pool(who, host, body.volume.partition("/")[0], Action.MANAGE_STORAGE)

    def work(h: HostRef) -> LiveDone:
        done = virt_disks.add(h, name, body.volume, body.bus)
        return LiveDone(device=done.target, live=done.live)

    return _live(request, host, name, "disk-add", versions.DISKS, work)


@router.delete(
    "/hosts/{host}/vms/{name}/disks/{target}/", response=answers(LiveDone, 400),
    summary="Detach a disk (its volume stays)",
)  # fmt: skip
def disk_remove(request: HttpRequest, host: str, name: str, target: str) -> LiveDone:
    def work(h: HostRef) -> LiveDone:
        done = virt_disks.remove(h, name, target)
        return LiveDone(device=target, live=done.live, waiting=done.waiting)

    return _live(request, host, name, "disk-remove", versions.DISKS, work)


@router.post(
    "/hosts/{host}/vms/{name}/nics/", response=answers(LiveDone, 400),
    summary="Add a NIC on a virtual network (live while the VM runs)",
)  # fmt: skip
def nic_add(request: HttpRequest, host: str, name: str, body: NicAddIn) -> LiveDone:
    def work(h: HostRef) -> LiveDone:
        done = virt_nics.add(h, name, body.network, body.model, body.mac.strip().lower())
        return LiveDone(device=done.mac, live=done.live)

    return _live(request, host, name, "nic-add", versions.NICS, work)


@router.delete(
    "/hosts/{host}/vms/{name}/nics/{mac}/", response=answers(LiveDone, 400),
    summary="Remove a NIC",
)  # fmt: skip
def nic_remove(request: HttpRequest, host: str, name: str, mac: str) -> LiveDone:
    def work(h: HostRef) -> LiveDone:
        done = virt_nics.remove(h, name, mac)
        return LiveDone(device=mac, live=done.live, waiting=done.waiting)

    return _live(request, host, name, "nic-remove", versions.NICS, work)


@router.put(
    "/hosts/{host}/vms/{name}/nics/{mac}/link/", response=answers(LiveDone, 400),
    summary="Set a NIC's link up or down",
)  # fmt: skip
def nic_link(request: HttpRequest, host: str, name: str, mac: str, body: LinkIn) -> LiveDone:
    def work(h: HostRef) -> LiveDone:
        done = virt_nics.set_link(h, name, mac, body.up)
        return LiveDone(device=mac, live=done.live)

    return _live(request, host, name, "nic-link", versions.NICS, work)
