"""Hosts, networks, storage pools and volumes, the audit trail, and who is calling."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django import forms
from django.contrib.auth.models import Group, User
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from api.core import answers
from api.schemas import AuditOut, HostOut, Me, OpDone, Page, Paging
from people.models import ApiToken
from stats.history import HOST_KEY
from stats.views import series
from storage import views as storage_views
from storage.forms import ResizeForm, VolumeForm, errors_text
from vmdash import door
from vmdash.access.forms import GrantForm
from vmdash.access.here import scope_ref
from vmdash.access.models import Grant, Role
from vmdash.audit import Actor, Outcome, perform, record
from vmdash.models import AuditEntry
from vmdash.policy import Action, can, can_somewhere, require, visible
from vmdash.virt import networks as virt_networks
from vmdash.virt import storage as virt_storage
from vmdash.virt.errors import InvalidInput
from vmdash.virt.networks import Attachment, Lease, Subnet
from vmdash.virt.storage import PoolOp, VolumeUser

router = Router()


# --- who is calling -----------------------------------------------------------


@router.get("/me/", response=answers(Me), tags=["Account"], summary="Who this token or login is")
def me(request: HttpRequest) -> Me:
    who = door.who(request)
    token: ApiToken | None = getattr(request, "api_token", None)
    where = None
    if token is not None and token.role is not None:
        where = Grant(scope=token.scope, host=token.host, object_name=token.object_name,
                      tag=token.tag).where  # fmt: skip
    return Me(
        username=who.username,
        superuser=who.superuser,
        token=token.name if token else None,
        token_role=str(token.role) if token and token.role else None,
        token_scope=str(where) if where is not None else None,
        token_expires_at=token.expires_at if token else None,
    )


# --- hosts ----------------------------------------------------------------------


def _host(h: Any) -> HostOut:
    from vmdash.live.recent import recorder

    since = recorder().down_since(h.slug)
    return HostOut(
        slug=h.slug, name=h.name or h.slug, uri=h.uri,
        state="down" if since is not None else "up", down_since=since,
    )  # fmt: skip


@router.get("/hosts/", response=answers(list[HostOut]), tags=["Hosts"], summary="Hosts you may see")
def host_list(request: HttpRequest) -> list[HostOut]:
    return [_host(h) for h in door.visible_hosts(door.who(request))]


@router.get("/hosts/{host}/", response=answers(HostOut), tags=["Hosts"], summary="One host")
def host_detail(request: HttpRequest, host: str) -> HostOut:
    ref = door.host(door.who(request), host)
    found = next(h for h in door.visible_hosts(door.who(request)) if h.slug == ref.slug)
    return _host(found)


# --- networks -------------------------------------------------------------------


class NetworkOut(Schema):
    host: str
    name: str
    uuid: str
    active: bool
    persistent: bool
    autostart: bool
    mode: str
    bridge: str
    domain: str
    subnets: list[Subnet]
    attachments: list[Attachment]


class NetworkDetailOut(Schema):
    network: NetworkOut
    leases: list[Lease]


def _network(n: virt_networks.NetworkSummary) -> NetworkOut:
    return NetworkOut(
        host=n.host, name=n.name, uuid=n.uuid, active=n.active, persistent=n.persistent,
        autostart=n.autostart, mode=str(n.mode), bridge=n.bridge, domain=n.domain,
        subnets=list(n.subnets), attachments=list(n.attachments),
    )  # fmt: skip


@router.get(
    "/hosts/{host}/networks/", response=answers(list[NetworkOut]), tags=["Networks"],
    summary="Virtual networks of a host",
)  # fmt: skip
def network_list(request: HttpRequest, host: str) -> list[NetworkOut]:
    who = door.who(request)
    href = door.host(who, host)
    nets = virt_networks.list_networks(href)
    allowed = set(visible(who, [n.ref for n in nets]))
    return [_network(n) for n in nets if n.ref in allowed]


@router.get(
    "/hosts/{host}/networks/{name}/", response=answers(NetworkDetailOut), tags=["Networks"],
    summary="One virtual network, with its DHCP leases",
)  # fmt: skip
def network_detail(request: HttpRequest, host: str, name: str) -> NetworkDetailOut:
    href, _ref = door.network(door.who(request), host, name)
    d = virt_networks.get_detail(href, name)
    return NetworkDetailOut(network=_network(d.summary), leases=list(d.leases))


NetworkAction = Literal["start", "stop", "autostart-on", "autostart-off"]


@router.post(
    "/hosts/{host}/networks/{name}/actions/{op}/", response=answers(OpDone, 400),
    tags=["Networks"], summary="Start, stop, autostart on or off",
)  # fmt: skip
def network_action(request: HttpRequest, host: str, name: str, op: NetworkAction) -> OpDone:
    href, ref = door.network(door.who(request), host, name, Action.MANAGE_NETWORKS)
    operation = virt_networks.Op(op)
    perform(
        Actor.of_request(request, via="api"), f"network-{op}", ref,
        lambda: virt_networks.run_op(href, name, operation),
    )  # fmt: skip
    return OpDone(host=host, name=name, done=_("Network “%(name)s”: done.") % {"name": name})


# --- storage --------------------------------------------------------------------


class PoolOut(Schema):
    host: str
    name: str
    uuid: str
    type: str
    state: str
    active: bool
    autostart: bool
    persistent: bool
    capacity: int
    allocation: int
    available: int
    used_percent: int
    target_path: str
    source: str
    volume_count: int | None


class VolumeOut(Schema):
    name: str
    path: str
    type: str
    format: str
    capacity: int
    allocation: int
    backing: str
    users: list[VolumeUser]


class VolumeFilters(Paging):
    q: str = Field("", max_length=200, description="part of the name")


def _pool(p: virt_storage.PoolSummary) -> PoolOut:
    return PoolOut(
        host=p.ref.host, name=p.name, uuid=p.uuid, type=p.type, state=str(p.state),
        active=p.active, autostart=p.autostart, persistent=p.persistent, capacity=p.capacity,
        allocation=p.allocation, available=p.available, used_percent=p.used_percent,
        target_path=p.target_path, source=p.source, volume_count=p.volume_count,
    )  # fmt: skip


@router.get(
    "/hosts/{host}/pools/", response=answers(list[PoolOut]), tags=["Storage"],
    summary="Storage pools of a host",
)  # fmt: skip
def pool_list(request: HttpRequest, host: str) -> list[PoolOut]:
    who = door.who(request)
    href = door.host(who, host)
    pools = virt_storage.list_pools(href)
    allowed = set(visible(who, [p.ref for p in pools]))
    return [_pool(p) for p in pools if p.ref in allowed]


@router.get(
    "/hosts/{host}/pools/{name}/", response=answers(PoolOut), tags=["Storage"],
    summary="One storage pool",
)  # fmt: skip
def pool_detail(request: HttpRequest, host: str, name: str) -> PoolOut:
    href, _ref = door.pool(door.who(request), host, name)
    return _pool(virt_storage.get_pool(href, name))


PoolAction = Literal["start", "stop", "refresh", "autostart-on", "autostart-off"]


@router.post(
    "/hosts/{host}/pools/{name}/actions/{op}/", response=answers(OpDone, 400), tags=["Storage"],
    summary="Start, stop, refresh, autostart on or off",
)  # fmt: skip
def pool_action(request: HttpRequest, host: str, name: str, op: PoolAction) -> OpDone:
    href, ref = door.pool(door.who(request), host, name, Action.MANAGE_STORAGE)
    operation = PoolOp(op)
    perform(
        Actor.of_request(request, via="api"), f"pool-{op}", ref,
        lambda: virt_storage.run_pool_op(href, name, operation),
    )  # fmt: skip
    return OpDone(host=host, name=name, done=_("Pool '%(name)s': done.") % {"name": name})


@router.get(
    "/hosts/{host}/pools/{name}/volumes/", response=answers(Page[VolumeOut]), tags=["Storage"],
    summary="Volumes of a pool, searched and paged, with the VMs using each",
)  # fmt: skip
def volume_list(
    request: HttpRequest, host: str, name: str, filters: Query[VolumeFilters]
) -> Page[VolumeOut]:
    href, _ref = door.pool(door.who(request), host, name)
    found = virt_storage.list_volumes(
        href, name, q=filters.q, offset=(filters.page - 1) * filters.per_page,
        limit=filters.per_page,
    )  # fmt: skip
    pages = max(1, -(-found.total // filters.per_page))
    items = [
        VolumeOut(
            name=v.name,
            path=v.path,
            type=v.type,
            format=v.format,
            capacity=v.capacity,
            allocation=v.allocation,
            backing=v.backing,
            users=list(v.users),
        )
        for v in found.rows
    ]
    return Page[VolumeOut](items=items, total=found.total, page=filters.page, pages=pages)


# --- audit ----------------------------------------------------------------------


class AuditFilters(Paging):
    user: str = Field("", max_length=150)
    action: str = Field("", max_length=50)
    host: str = Field("", max_length=50)
    since: datetime | None = None


@router.get(
    "/audit/", response=answers(Page[AuditOut]), tags=["Audit"],
    summary="The audit trail, newest first (needs the audit right on the site)",
)  # fmt: skip
def audit_list(request: HttpRequest, filters: Query[AuditFilters]) -> Page[AuditOut]:
    require(door.who(request), Action.AUDIT)
    entries = AuditEntry.objects.all()
    if filters.user:
        entries = entries.filter(username__iexact=filters.user)
    if filters.action:
        entries = entries.filter(action=filters.action)
    if filters.host:
        entries = entries.filter(host=filters.host)
    if filters.since:
        entries = entries.filter(at__gte=filters.since)
    total = entries.count()
    per = filters.per_page
    pages = max(1, -(-total // per))
    page = min(filters.page, pages)
    rows = entries.order_by("-at", "-id")[(page - 1) * per : page * per]
    items = [AuditOut.model_validate(e, from_attributes=True) for e in rows]
    return Page[AuditOut](items=items, total=total, page=page, pages=pages)


# --- volumes: create, resize, delete, download ----------------------------------------


class VolumeIn(Schema):
    name: str = Field(..., max_length=1000)
    format: Literal["qcow2", "raw"] = "qcow2"
    size: str = Field(..., max_length=40, description="as on the page: 20 GiB, 512M, 1T")
    preallocate: bool = False
    backing: str = Field("", max_length=1000, description="a volume of this pool (qcow2 only)")


class SizeIn(Schema):
    size: str = Field(..., max_length=40, description="the new size, larger: 40 GiB")


def _volume(v: virt_storage.VolumeRow) -> VolumeOut:
    return VolumeOut(
        name=v.name, path=v.path, type=v.type, format=v.format, capacity=v.capacity,
        allocation=v.allocation, backing=v.backing, users=list(v.users),
    )  # fmt: skip


def _refused(form: forms.Form, actor: Actor, action: str, ref: Any) -> InvalidInput:
    why = errors_text(form)
    record(actor, action, ref, Outcome.ERROR, why)
    return InvalidInput(why)


@router.post(
    "/hosts/{host}/pools/{name}/volumes/", response=answers(VolumeOut, 400), tags=["Storage"],
    summary="Create a volume (qcow2 or raw, maybe an overlay of another)",
)  # fmt: skip
def volume_create(request: HttpRequest, host: str, name: str, body: VolumeIn) -> VolumeOut:
    href, ref = door.pool(door.who(request), host, name, Action.MANAGE_STORAGE)
    actor = Actor.of_request(request, via="api")
    names = virt_storage.volume_names(href, name) if body.backing else []
    form = VolumeForm(body.dict(), backing_choices=names)
    if not form.is_valid():
        raise _refused(form, actor, "volume-create", ref)
    vref, _text = perform(
        actor, "volume-create", ref, lambda: virt_storage.create_volume(href, name, form.spec())
    )
    return _volume(virt_storage.get_volume(href, name, vref.name))


@router.get(
    "/hosts/{host}/pools/{name}/volumes/{volume}/", response=answers(VolumeOut), tags=["Storage"],
    summary="One volume, with the VMs using it",
)  # fmt: skip
def volume_detail(request: HttpRequest, host: str, name: str, volume: str) -> VolumeOut:
    href, _ref = door.volume(door.who(request), host, name, volume)
    return _volume(virt_storage.get_volume(href, name, volume))


@router.put(
    "/hosts/{host}/pools/{name}/volumes/{volume}/size/", response=answers(VolumeOut, 400),
    tags=["Storage"], summary="Grow a volume (online for a running VM's disk)",
)  # fmt: skip
def volume_resize(
    request: HttpRequest, host: str, name: str, volume: str, body: SizeIn
) -> VolumeOut:
    href, ref = door.volume(door.who(request), host, name, volume, Action.MANAGE_STORAGE)
    actor = Actor.of_request(request, via="api")
    form = ResizeForm(body.dict())
    if not form.is_valid():
        raise _refused(form, actor, "volume-resize", ref)
    size = form.cleaned_data["size"]
    perform(actor, "volume-resize", ref,
            lambda: virt_storage.resize_volume(href, name, volume, size))  # fmt: skip
    return _volume(virt_storage.get_volume(href, name, volume))


@router.delete(
    "/hosts/{host}/pools/{name}/volumes/{volume}/", response=answers(OpDone, 400),
    tags=["Storage"], summary="Delete a volume",
    description="`confirm` is the volume's name again; one a VM uses also needs even_in_use=true.",
)  # fmt: skip
def volume_delete(
    request: HttpRequest, host: str, name: str, volume: str,
    confirm: str = "", even_in_use: bool = False,
) -> OpDone:  # fmt: skip
    href, ref = door.volume(door.who(request), host, name, volume, Action.MANAGE_STORAGE)
    if confirm != volume:
        raise InvalidInput(
            _("To delete volume '%(name)s', send confirm=%(name)s.") % {"name": volume}
        )
    perform(Actor.of_request(request, via="api"), "volume-delete", ref,
            lambda: virt_storage.delete_volume(href, name, volume, even_in_use))  # fmt: skip
    done = _("Volume '%(name)s' deleted.") % {"name": volume}
    return OpDone(host=host, name=volume, done=done)


_BYTES = {
    "description": "The volume's bytes, streamed from libvirt",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}


@router.get(
    "/hosts/{host}/pools/{name}/volumes/{volume}/content/", response=answers(None),
    tags=["Storage"], summary="Download a volume (streamed, never held whole)",
    openapi_extra={"responses": {200: _BYTES}},
)  # fmt: skip
def volume_download(
    request: HttpRequest, host: str, name: str, volume: str
) -> StreamingHttpResponse:
    return storage_views.volume_download_response(request, host, name, volume, via="api")


# --- grants ------------------------------------------------------------------------------


class GrantOut(Schema):
    id: int
    user: str | None
    group: str | None
    role: str  # its slug: viewer, operator, ...
    scope: str  # site, host, vm, pool, network, tag
    host: str
    object_name: str
    object_uuid: str
    tag: str
    expires_at: datetime | None
    note: str


class GrantIn(Schema):
    user: str = Field("", max_length=150, description="a username, or")
    group: str = Field("", max_length=150, description="a group's name")
    role: str = Field(..., max_length=50, description="viewer, operator, vm-admin, ...")
    scope: Literal["site", "host", "vm", "pool", "network", "tag"]
    host: str = Field("", max_length=50)
    object_name: str = Field("", max_length=255, description="the VM, pool or network")
    tag: str = Field("", max_length=40)
    expires_at: datetime | None = None
    note: str = Field("", max_length=200)


def _grant(g: Grant) -> GrantOut:
    return GrantOut(
        id=g.pk, user=g.user.get_username() if g.user else None,
        group=g.group.name if g.group else None, role=g.role.slug, scope=g.scope, host=g.host,
        object_name=g.object_name, object_uuid=g.object_uuid, tag=g.tag,
        expires_at=g.expires_at, note=g.note,
    )  # fmt: skip


@router.get("/grants/", response=answers(list[GrantOut]), tags=["Access"],
            summary="The grants you may manage")  # fmt: skip
def grant_list(request: HttpRequest) -> list[GrantOut]:
    who = door.who(request)
    if not can_somewhere(who, Action.MANAGE_ACCESS):
        require(who, Action.MANAGE_ACCESS)
    found = Grant.objects.select_related("user", "group", "role")
    return [_grant(g) for g in found if can(who, Action.MANAGE_ACCESS, scope_ref(g))]


@router.post("/grants/", response=answers(GrantOut, 400), tags=["Access"],
             summary="Give a role to a user or a group on a scope")  # fmt: skip
def grant_add(request: HttpRequest, body: GrantIn) -> GrantOut:
    who = door.who(request)
    if not can_somewhere(who, Action.MANAGE_ACCESS):
        require(who, Action.MANAGE_ACCESS)
    posted: dict[str, Any] = body.dict()
    missing = {
        "user": _("There is no user “%(name)s”."),
        "group": _("There is no group “%(name)s”."),
        "role": _("There is no role “%(name)s”."),
    }
    for field, model, key in (("user", User, "username"), ("group", Group, "name"),
                              ("role", Role, "slug")):  # fmt: skip
        if posted[field]:
            found = model.objects.filter(**{key: posted[field]}).first()
            if found is None:
                raise InvalidInput(missing[field] % {"name": posted[field]})
            posted[field] = found.pk
    form = GrantForm(posted)
    if not form.is_valid():
        raise InvalidInput(errors_text(form))
    probe = Grant(**form.where())
    require(who, Action.MANAGE_ACCESS, scope_ref(probe))
    grant = form.grant(request.user)
    record(Actor.of_request(request, via="api"), "grant-add", scope_ref(grant), Outcome.OK,
           str(grant), object_type="grant", object_name=grant.where)  # fmt: skip
    return _grant(grant)


@router.delete("/grants/{grant}/", response=answers(OpDone), tags=["Access"],
               summary="Take a grant back")  # fmt: skip
def grant_delete(request: HttpRequest, grant: int) -> OpDone:
    who = door.who(request)
    if not can_somewhere(who, Action.MANAGE_ACCESS):
        require(who, Action.MANAGE_ACCESS)  # 403, before telling which grants exist
    found = Grant.objects.select_related("role", "user", "group").filter(pk=grant).first()
    if found is None:
        raise Http404(_("There is no such grant."))
    require(who, Action.MANAGE_ACCESS, scope_ref(found))
    text, ref, where = str(found), scope_ref(found), found.where
    found.delete()
    record(Actor.of_request(request, via="api"), "grant-delete", ref, Outcome.OK, text,
           object_type="grant", object_name=where)  # fmt: skip
    return OpDone(host=found.host, name=where, done=_("Taken back: %(grant)s.") % {"grant": text})


# --- stats ---------------------------------------------------------------------------


class StatsOut(Schema):
    fields: list[str]  # what each point's values are, after its time
    interval: float  # seconds between samples
    range: int  # seconds the points cover
    down: str  # why the host's sampler has no figures now ("" when it has)
    points: list[list[float | None]]  # [unix time, value per field]


StatsRange = Literal["10m", "1h", "24h"]


@router.get(
    "/hosts/{host}/vms/{name}/stats/", response=answers(StatsOut), tags=["Stats"],
    summary="A VM's CPU, memory, disk and network figures over 10 minutes, an hour or a day",
)  # fmt: skip
def vm_stats(request: HttpRequest, host: str, name: str, range: StatsRange = "10m") -> StatsOut:
    _href, ref = door.domain(door.who(request), host, name)
    return StatsOut.model_validate(series(ref.host, ref.uuid, range))


@router.get(
    "/hosts/{host}/stats/", response=answers(StatsOut), tags=["Stats"],
    summary="A host's CPU and memory figures",
)  # fmt: skip
def host_stats(request: HttpRequest, host: str, range: StatsRange = "10m") -> StatsOut:
    ref = door.host(door.who(request), host)
    return StatsOut.model_validate(series(ref.slug, HOST_KEY, range))
