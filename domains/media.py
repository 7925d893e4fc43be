"""The Devices tab, with the CD-ROM drives' media: insert an ISO volume, eject.

Seeing the tab needs Action.VIEW; changing the media Action.CHANGE. The
change reaches the running guest at once and stays for the next start
(vmdash/virt/media.py); it is audited, and the new definition goes into the
VM's history.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from domains import versions
from domains.views import detail_context
from vmdash import door, policy
from vmdash.audit import Actor, Outcome, record
from vmdash.policy import Action
from vmdash.virt import definition, disks, media, nics
from vmdash.virt import domains as virt_domains
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import DomainRef, HostRef


@require_GET
def domain_devices(request: HttpRequest, host: str, name: str) -> HttpResponse:
    who = door.who(request)
    host_ref, ref = door.domain(who, host, name)
    detail = virt_domains.get_detail(host_ref, name)
    context = {
        **detail_context(host_ref, detail, policy.can(who, Action.OPERATE, ref)),
        "tab": "devices",
        "drives": [],
    }
    if policy.can(who, Action.CHANGE, ref) and detail.summary.persistent:
        context["may_change"] = True
        context["nic_models"] = nics.MODELS
        try:
            context["drives"] = media.drives(host_ref, name)
            context["isos"] = media.isos(host_ref) if context["drives"] else []
            context["networks"] = nics.networks(host_ref)
            context["disk_volumes"] = disks.volumes(host_ref)
            context["disk_buses"] = list(disks.BUSES)
        except VirtError as err:
            context["media_error"] = str(err)
    return render(request, "domains/detail.html", context)


@require_POST
def domain_media(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """Insert (volume=pool/name) or eject (volume empty) the media of one drive."""
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    target, volume = request.POST.get("target", ""), request.POST.get("volume", "")
    actor = Actor.of_request(request)
    try:
        done = media.change(host_ref, name, target, volume)
    except VirtError as err:
        record(actor, "media", ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return redirect("domain-devices", host, name)
    said = f"{target}: {done.before or '(empty)'} -> {done.after or '(empty)'}"
    record(actor, "media", ref, Outcome.OK, said)
    try:
        current = definition.read(host_ref, name)
        versions.remember(
            host_ref.slug, ref.uuid, name, current.text, actor.username, versions.MEDIA
        )
    except VirtError:
        pass  # the events service's sink keeps it when it hears the change
    if not volume:
        text = _("The media is ejected from %(target)s.") % {"target": target}
    else:
        text = _("%(volume)s is in %(target)s.") % {"volume": volume, "target": target}
    if done.live:
        text += " " + _("The running guest sees it now; the next start keeps it.")
    messages.success(request, text)
    return redirect("domain-devices", host, name)


def _nic_done(request: HttpRequest, host: str, name: str, text: str) -> HttpResponse:
    messages.success(request, text)
    return redirect("domain-devices", host, name)


@require_POST
def domain_nic_add(request: HttpRequest, host: str, name: str) -> HttpResponse:
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    network = request.POST.get("network", "")
    model = request.POST.get("model", "virtio")
    mac = request.POST.get("mac", "")
    actor = Actor.of_request(request)
    try:
        done = nics.add(host_ref, name, network, model, mac)
    except VirtError as err:
        record(actor, "nic-add", ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return redirect("domain-devices", host, name)
    record(actor, "nic-add", ref, Outcome.OK, f"{done.mac} on {network} ({model})")
    _remember_now(host_ref, ref, actor)
    text = _("A %(model)s NIC (%(mac)s) on network %(net)s is added.") % {
        "model": model, "mac": done.mac, "net": network,
    }  # fmt: skip
    if done.live:
        text += " " + _("The running guest sees it now; the next start keeps it.")
    return _nic_done(request, host, name, text)


@require_POST
def domain_nic_remove(request: HttpRequest, host: str, name: str) -> HttpResponse:
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    mac = request.POST.get("mac", "")
    actor = Actor.of_request(request)
    try:
        done = nics.remove(host_ref, name, mac)
    except VirtError as err:
        record(actor, "nic-remove", ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return redirect("domain-devices", host, name)
    record(actor, "nic-remove", ref, Outcome.OK, done.mac)
    _remember_now(host_ref, ref, actor)
    if done.waiting:
        text = _(
            "%(mac)s is out of the definition; the running guest has not let it go yet, "
            "it leaves at the next stop."
        ) % {"mac": done.mac}
    else:
        text = _("%(mac)s is removed.") % {"mac": done.mac}
    return _nic_done(request, host, name, text)


@require_POST
def domain_nic_link(request: HttpRequest, host: str, name: str) -> HttpResponse:
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    mac, up = request.POST.get("mac", ""), request.POST.get("state") == "up"
    actor = Actor.of_request(request)
    try:
        done = nics.set_link(host_ref, name, mac, up)
    except VirtError as err:
        record(actor, "nic-link", ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return redirect("domain-devices", host, name)
    record(actor, "nic-link", ref, Outcome.OK, f"{done.mac} {'up' if up else 'down'}")
    _remember_now(host_ref, ref, actor)
    if up:
        text = _("The link of %(mac)s is up.") % {"mac": done.mac}
    else:
        text = _("The link of %(mac)s is down.") % {"mac": done.mac}
    return _nic_done(request, host, name, text)


def _remember_now(host: HostRef, ref: DomainRef, actor: Actor) -> None:
    try:
        current = definition.read(host, ref.name)
    except VirtError:
        return
    versions.remember(host.slug, ref.uuid, ref.name, current.text, actor.username, versions.NICS)


@require_POST
def domain_disk_add(request: HttpRequest, host: str, name: str) -> HttpResponse:
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    volume, bus = request.POST.get("volume", ""), request.POST.get("bus", "virtio")
    # The volume's pool is an object of its own: using it needs that pool's right.
    if "/" in volume:
        door.pool(door.who(request), host, volume.partition("/")[0], Action.MANAGE_STORAGE)
    actor = Actor.of_request(request)
    try:
        done = disks.add(host_ref, name, volume, bus)
    except VirtError as err:
        record(actor, "disk-add", ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return redirect("domain-devices", host, name)
    record(actor, "disk-add", ref, Outcome.OK, f"{volume} as {done.target} ({bus})")
    _remember_now(host_ref, ref, actor)
    text = _("%(volume)s is disk %(target)s.") % {"volume": volume, "target": done.target}
    if done.live:
        text += " " + _("The running guest sees it now; the next start keeps it.")
    return _nic_done(request, host, name, text)


@require_POST
def domain_disk_remove(request: HttpRequest, host: str, name: str) -> HttpResponse:
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    target = request.POST.get("target", "")
    actor = Actor.of_request(request)
    try:
        done = disks.remove(host_ref, name, target)
    except VirtError as err:
        record(actor, "disk-remove", ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return redirect("domain-devices", host, name)
    record(actor, "disk-remove", ref, Outcome.OK, target)
    _remember_now(host_ref, ref, actor)
    if done.waiting:
        text = _(
            "Disk %(target)s is out of the definition; the running guest has not let it go "
            "yet, it leaves at the next stop. The volume stays."
        ) % {"target": target}
    else:
        text = _("Disk %(target)s is removed; the volume stays.") % {"target": target}
    return _nic_done(request, host, name, text)
