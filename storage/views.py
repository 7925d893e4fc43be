"""Storage pools and volumes of a host: list, create, lifecycle, resize, clone, download."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from storage.forms import CloneForm, PoolForm, ResizeForm, VolumeForm, errors_text
from storage.models import IsoLibrary
from vmdash import door, jobs
from vmdash.audit import Actor, Outcome, perform, record
from vmdash.policy import Action, can
from vmdash.render import is_htmx
from vmdash.virt import storage as virt
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import HostRef, PoolRef
from vmdash.virt.storage import PoolOp
from vmdash.virt.xml.pool import PoolType

PAGE = 50  # rows per page: a pool of 5,000 volumes is paged and searched, not scrolled


def _library_uuid(host: HostRef) -> str:
    found = IsoLibrary.objects.filter(host=host.slug).first()
    return found.pool_uuid if found else ""


def pools_context(request: HttpRequest, host: HostRef) -> dict[str, Any]:
    """What the pools page and its table partial show (the live region reuses it)."""
    return {
        "host": host,
        "pools": virt.list_pools(host),
        "library_uuid": _library_uuid(host),
        "can_manage": can(door.who(request), Action.MANAGE_STORAGE, host),
    }


@require_GET
def pool_list(request: HttpRequest, host: str) -> HttpResponse:
    href = door.host(door.who(request), host)
    template = "storage/pools.html#table" if is_htmx(request) else "storage/pools.html"
    return render(request, template, pools_context(request, href))


def _pool_op(op: str) -> PoolOp:
    try:
        return PoolOp(op)
    except ValueError:
        raise Http404(_("There is no such pool operation.")) from None


@require_POST
def pool_op(request: HttpRequest, host: str, name: str, op: str) -> HttpResponse:
    operation = _pool_op(op)
    href, ref = door.pool(door.who(request), host, name, Action.MANAGE_STORAGE)
    if operation == PoolOp.DELETE and request.POST.get("confirm") != name:
        return redirect("pool-confirm", host, name)
    with_storage = operation == PoolOp.DELETE and request.POST.get("with_storage") == "on"
    perform(
        Actor.of_request(request),
        f"pool-{operation.value}" + ("-with-storage" if with_storage else ""),
        ref,
        lambda: virt.run_pool_op(href, name, operation, with_storage),
    )
    if operation == PoolOp.DELETE:
        IsoLibrary.objects.filter(host=host, pool_uuid=ref.uuid).delete()
    if is_htmx(request):
        if operation == PoolOp.DELETE:
            return HttpResponseClientRedirect(reverse("pool-list", args=[host]))
        return render(request, "storage/pools.html#table", pools_context(request, href))
    messages.success(request, _("Pool '%(name)s': done.") % {"name": name})
    return redirect("pool-list", host)


@require_GET
def pool_confirm(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """The delete confirmation: names the volumes that would go with the storage."""
    href, _ref = door.pool(door.who(request), host, name, Action.MANAGE_STORAGE)
    summary = virt.get_pool(href, name)
    page = virt.list_volumes(href, name, limit=20) if summary.active else None
    return render(request, "storage/pool_confirm.html", {"p": summary, "host": href, "vols": page})


@require_POST
def pool_library(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """Mark (or unmark) the ISO library of the host; stored by vmdash, see storage/models.py."""
    href, ref = door.pool(door.who(request), host, name, Action.MANAGE_STORAGE)
    if request.POST.get("on") == "1":
        IsoLibrary.objects.update_or_create(host=host, defaults={"pool_uuid": ref.uuid})
    else:
        IsoLibrary.objects.filter(host=host, pool_uuid=ref.uuid).delete()
    record(
        Actor.of_request(request), "pool-iso-library", ref, Outcome.OK, request.POST.get("on", "0")
    )
    if is_htmx(request):
        return render(request, "storage/pools.html#table", pools_context(request, href))
    return redirect("pool-list", host)


@require_http_methods(["GET", "POST"])
def pool_new(request: HttpRequest, host: str) -> HttpResponse:
    href = door.host(door.who(request), host, Action.MANAGE_STORAGE)
    if request.method == "GET":
        form = PoolForm(
            initial={"type": request.GET.get("type", "dir"), "autostart": True, "build": True}
        )
        if is_htmx(request):
            form = PoolForm(request.GET)  # the type changed: the fields of that type
            return render(request, "storage/pool_new.html#fields", {"form": form, "host": href})
        return render(request, "storage/pool_new.html", {"form": form, "host": href})
    form = PoolForm(request.POST)
    actor = Actor.of_request(request)
    if not form.is_valid():
        record(actor, "pool-create", href, Outcome.ERROR, errors_text(form), object_type="pool",
               object_name=request.POST.get("name", ""))  # fmt: skip
        return render(request, "storage/pool_new.html", {"form": form, "host": href}, status=400)
    try:
        ref, _text = _create_pool(actor, href, form)
    except VirtError as err:
        form.add_error(None, str(err))
        return render(
            request, "storage/pool_new.html", {"form": form, "host": href}, status=err.status
        )
    messages.success(request, _("Pool '%(name)s' is ready.") % {"name": ref.name})
    return redirect("pool-detail", host, ref.name)


def _create_pool(actor: Actor, href: HostRef, form: PoolForm) -> tuple[PoolRef, str]:
    spec = form.spec()
    try:
        ref, text = virt.create_pool(href, spec, float(settings.VMDASH_HOST_TIMEOUT))
    except VirtError as err:
        record(actor, "pool-create", PoolRef(href.slug, spec.name), Outcome.ERROR, str(err))
        raise
    record(actor, "pool-create", ref, Outcome.OK, diff=text)
    return ref, text


@require_GET
def pool_sources(request: HttpRequest, host: str) -> HttpResponse:
    """What the host offers for a pool type (NFS exports, iSCSI targets, volume groups)."""
    href = door.host(door.who(request), host, Action.MANAGE_STORAGE)
    try:
        kind = PoolType(request.GET.get("type", ""))
    except ValueError:
        raise Http404(_("There is no such pool type.")) from None
    context: dict[str, Any] = {"host": href, "kind": kind, "sources": [], "error": ""}
    try:
        context["sources"] = virt.find_sources(
            href,
            kind,
            request.GET.get("source_host", "").strip(),
            float(settings.VMDASH_HOST_TIMEOUT),
        )
    except VirtError as err:
        context["error"] = str(err)
    return render(request, "storage/pool_new.html#sources", context)


# Volumes


def volumes_context(request: HttpRequest, href: HostRef, name: str) -> dict[str, Any]:
    # No refresh here: it rescans every file of the pool (seconds for thousands);
    # libvirt reads each row's sizes fresh, and the pools page and its button refresh.
    summary = virt.get_pool(href, name, refresh=False)
    q = request.GET.get("q", "").strip()
    number = _page_number(request)
    page = None
    if summary.active:
        page = virt.list_volumes(href, name, q, (number - 1) * PAGE, PAGE)
    pager = Paginator(range(page.total if page else 0), PAGE).get_page(number)
    return {
        "host": href,
        "p": summary,
        "vols": page,
        "pager": pager,
        "q": q,
        # reverse() once, not per row: a page has 100 of them.
        "volume_base": reverse("volume-detail", args=[href.slug, name, "-"])[:-2],
        "is_library": _library_uuid(href) == summary.uuid,
        "can_manage": can(door.who(request), Action.MANAGE_STORAGE, summary.ref),
    }


def _page_number(request: HttpRequest) -> int:
    try:
        return max(1, int(request.GET.get("page", "1")))
    except ValueError:
        return 1


@require_GET
def pool_detail(request: HttpRequest, host: str, name: str) -> HttpResponse:
    href, _ref = door.pool(door.who(request), host, name)
    context = volumes_context(request, href, name)
    vols = context["vols"]
    names = virt.volume_names(href, name) if vols and vols.all <= 500 else []
    context["form"] = VolumeForm(backing_choices=names, initial={"format": "qcow2"})
    template = "storage/pool.html#volumes" if is_htmx(request) else "storage/pool.html"
    return render(request, template, context)


@require_POST
def volume_create(request: HttpRequest, host: str, name: str) -> HttpResponse:
    href, ref = door.pool(door.who(request), host, name, Action.MANAGE_STORAGE)
    form = VolumeForm(request.POST, backing_choices=virt.volume_names(href, name))
    actor = Actor.of_request(request)
    if not form.is_valid():
        record(actor, "volume-create", ref, Outcome.ERROR, errors_text(form))
        return _volume_form_again(request, href, name, form, 400)
    try:
        vref, text = virt.create_volume(href, name, form.spec())
    except VirtError as err:
        record(actor, "volume-create", ref, Outcome.ERROR, str(err))
        form.add_error(None, str(err))
        return _volume_form_again(request, href, name, form, err.status)
    record(actor, "volume-create", vref, Outcome.OK, diff=text)
    messages.success(request, _("Volume '%(name)s' created.") % {"name": vref.name})
    if is_htmx(request):
        return HttpResponseClientRedirect(reverse("pool-detail", args=[host, name]))
    return redirect("pool-detail", host, name)


def _volume_form_again(
    request: HttpRequest, href: HostRef, name: str, form: VolumeForm, status: int
) -> HttpResponse:
    context = {**volumes_context(request, href, name), "form": form}
    template = "storage/pool.html#create" if is_htmx(request) else "storage/pool.html"
    return render(request, template, context, status=status)


def volume_page(
    request: HttpRequest, href: HostRef, pool: str, name: str, **extra: Any
) -> dict[str, Any]:
    row = virt.get_volume(href, pool, name)
    return {
        "host": href,
        "pool": pool,
        "v": row,
        "resize_form": extra.pop("resize_form", None) or ResizeForm(),
        "clone_form": extra.pop("clone_form", None)
        or CloneForm(
            pools=virt.pool_names(href), initial={"new_name": f"{name}-copy", "target_pool": pool}
        ),
        "can_manage": can(door.who(request), Action.MANAGE_STORAGE, row.ref),
        **extra,
    }


@require_GET
def volume_detail(request: HttpRequest, host: str, name: str, volume: str) -> HttpResponse:
    href, _ref = door.volume(door.who(request), host, name, volume)
    return render(request, "storage/volume.html", volume_page(request, href, name, volume))


@require_POST
def volume_resize(request: HttpRequest, host: str, name: str, volume: str) -> HttpResponse:
    href, ref = door.volume(door.who(request), host, name, volume, Action.MANAGE_STORAGE)
    form = ResizeForm(request.POST)
    if not form.is_valid():
        record(Actor.of_request(request), "volume-resize", ref, Outcome.ERROR, errors_text(form))
        context = volume_page(request, href, name, volume, resize_form=form)
        return render(request, "storage/volume.html", context, status=400)
    size = form.cleaned_data["size"]
    perform(
        Actor.of_request(request),
        "volume-resize",
        ref,
        lambda: virt.resize_volume(href, name, volume, size),
    )
    messages.success(request, _("Volume '%(name)s' resized.") % {"name": volume})
    return redirect("volume-detail", host, name, volume)


@require_POST
def volume_wipe(request: HttpRequest, host: str, name: str, volume: str) -> HttpResponse:
    href, ref = door.volume(door.who(request), host, name, volume, Action.MANAGE_STORAGE)
    if request.POST.get("confirm") != volume:
        return redirect("volume-confirm", host, name, volume)
    perform(
        Actor.of_request(request), "volume-wipe", ref, lambda: virt.wipe_volume(href, name, volume)
    )
    messages.success(request, _("Volume '%(name)s' wiped.") % {"name": volume})
    return redirect("volume-detail", host, name, volume)


@require_GET
def volume_confirm(request: HttpRequest, host: str, name: str, volume: str) -> HttpResponse:
    href, _ref = door.volume(door.who(request), host, name, volume, Action.MANAGE_STORAGE)
    return render(request, "storage/volume_confirm.html", volume_page(request, href, name, volume))


@require_POST
def volume_delete(request: HttpRequest, host: str, name: str, volume: str) -> HttpResponse:
    """Delete after a confirmation; a volume some VM uses needs a second one."""
    href, ref = door.volume(door.who(request), host, name, volume, Action.MANAGE_STORAGE)
    if request.POST.get("confirm") != volume:
        return redirect("volume-confirm", host, name, volume)
    even = request.POST.get("even_in_use") == "on"
    perform(
        Actor.of_request(request),
        "volume-delete",
        ref,
        lambda: virt.delete_volume(href, name, volume, even),
    )
    messages.success(request, _("Volume '%(name)s' deleted.") % {"name": volume})
    if is_htmx(request):
        return HttpResponseClientRedirect(reverse("pool-detail", args=[host, name]))
    return redirect("pool-detail", host, name)


@require_POST
def volume_clone(request: HttpRequest, host: str, name: str, volume: str) -> HttpResponse:
    """Start a clone job; the page follows its progress (storage/_job.html)."""
    href, ref = door.volume(door.who(request), host, name, volume, Action.MANAGE_STORAGE)
    form = CloneForm(request.POST, pools=virt.pool_names(href))
    actor = Actor.of_request(request)
    if form.is_valid():
        target = form.cleaned_data["target_pool"]
        door.pool(door.who(request), host, target, Action.MANAGE_STORAGE)  # the target too
        new = form.cleaned_data["new_name"]
        job = jobs.start(
            actor,
            "volume-clone",
            ref,
            lambda j: virt.clone_volume(
                href, name, volume, new, target, j.report, lambda: j.cancelled
            ),
            label=f"{name}/{volume} -> {target}/{new}",
        )
        return redirect(reverse("storage-job", args=[host, name, job.id]))
    record(actor, "volume-clone", ref, Outcome.ERROR, errors_text(form))
    context = volume_page(request, href, name, volume, clone_form=form)
    return render(request, "storage/volume.html", context, status=400)


def _job(request: HttpRequest, host: str, name: str, job_id: str) -> jobs.Job:
    door.pool(door.who(request), host, name, Action.MANAGE_STORAGE)
    job = jobs.get(job_id)
    if job is None or job.ref.host != host:
        raise Http404(_("There is no such job (jobs are kept ten minutes after they end)."))
    return job


@require_GET
def job_status(request: HttpRequest, host: str, name: str, job: str) -> HttpResponse:
    found = _job(request, host, name, job)
    template = "storage/job.html#progress" if is_htmx(request) else "storage/job.html"
    return render(request, template, {"job": found, "host": host, "pool": name})


@require_POST
def job_cancel(request: HttpRequest, host: str, name: str, job: str) -> HttpResponse:
    found = _job(request, host, name, job)
    found.cancel()
    if is_htmx(request):
        return render(
            request, "storage/job.html#progress", {"job": found, "host": host, "pool": name}
        )
    return redirect("storage-job", host, name, job)


@require_GET
def volume_download(
    request: HttpRequest, host: str, name: str, volume: str
) -> StreamingHttpResponse:
    """The volume's bytes, streamed from libvirt (virStorageVolDownload) chunk by chunk."""
    return volume_download_response(request, host, name, volume)


def volume_download_response(
    request: HttpRequest, host: str, name: str, volume: str, via: str = "web"
) -> StreamingHttpResponse:
    """The page's download and the API's (api/): the door, the audit, the stream.

    A volume's bytes are a VM's disk: they need the right to manage storage,
    not only to see that the volume exists."""
    href, ref = door.volume(door.who(request), host, name, volume, Action.MANAGE_STORAGE)
    download = virt.Download(href, name, volume)
    perform(Actor.of_request(request, via=via), "volume-download", ref, download.open)
    response = StreamingHttpResponse(_chunks(download), content_type="application/octet-stream")
    response["Content-Length"] = str(download.size)
    response["Content-Disposition"] = _attachment(volume)
    return response


async def _chunks(download: virt.Download) -> AsyncIterator[bytes]:
    """An async iterator: Django would read a sync one whole into memory under ASGI."""
    try:
        while data := await asyncio.to_thread(download.read):
            yield data
    finally:
        await asyncio.to_thread(download.close)


def _attachment(name: str) -> str:
    from urllib.parse import quote

    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


@require_GET
def upload_page(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """The upload form; the bytes go over the WebSocket of storage/consumers.py."""
    href, _ref = door.pool(door.who(request), host, name, Action.MANAGE_STORAGE)
    summary = virt.get_pool(href, name)
    return render(
        request,
        "storage/upload.html",
        {"host": href, "p": summary, "volumes": virt.volume_names(href, name), "chunk": 1 << 20},
    )
