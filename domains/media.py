"""The Devices tab, with the CD-ROM drives' media: insert an ISO volume, eject.

Seeing the tab needs Action.VIEW; changing the media Action.CHANGE. The
change reaches the running guest at once and stays for the next start
(vmdash/virt/media.py); it is audited, and the new definition goes into the
VM's history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
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

T = TypeVar("T")

NIC_KINDS = [
    ("network", gettext_lazy("Virtual network")),
    ("bridge", gettext_lazy("Host bridge")),
    ("ovs", gettext_lazy("Open vSwitch bridge")),
    ("direct", gettext_lazy("macvtap on a host device")),
]


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
        context["nic_kinds"] = NIC_KINDS
        context["direct_modes"] = nics.DIRECT_MODES
        try:
            context["drives"] = media.drives(host_ref, name)
            context["isos"] = media.isos(host_ref) if context["drives"] else []
            context["networks"] = nics.networks(host_ref)
            context["disk_volumes"] = disks.volumes(host_ref)
            context["disk_buses"] = list(disks.BUSES)
            context["disk_caches"] = disks.CACHES
            context["disk_ios"] = disks.IOS
            context["disk_discards"] = disks.DISCARDS
        except VirtError as err:
            context["media_error"] = str(err)
    return render(request, "domains/detail.html", context)


@require_POST
def domain_media(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """Insert (volume=pool/name) or eject (volume empty) the media of one drive."""
    target, volume = request.POST.get("target", ""), request.POST.get("volume", "")

    def told(done: media.Changed) -> tuple[str, str]:
        said = f"{target}: {done.before or '(empty)'} -> {done.after or '(empty)'}"
        if not volume:
            return said, _("The media is ejected from %(target)s.") % {"target": target}
        text = _("%(volume)s is in %(target)s.") % {"volume": volume, "target": target}
        return said, _live_note(text, done.live)

    work = lambda h: media.change(h, name, target, volume)  # noqa: E731
    return _device_change(request, host, name, "media", versions.MEDIA, work, told)


def _device_change(
    request: HttpRequest,
    host: str,
    name: str,
    action: str,
    reason: str,
    work: Callable[[HostRef], T],
    told: Callable[[T], tuple[str, str]],
) -> HttpResponse:
    """One change of a VM's devices: through the door (CHANGE), audited either
    way, the new definition kept in the history; `told(result)` gives the audit
    line and the sentence for the person."""
    host_ref, ref = door.domain(door.who(request), host, name, Action.CHANGE)
    actor = Actor.of_request(request)
    try:
        done = work(host_ref)
    except VirtError as err:
        record(actor, action, ref, Outcome.ERROR, str(err))
        messages.error(request, str(err))
        return redirect("domain-devices", host, name)
    summary, text = told(done)
    record(actor, action, ref, Outcome.OK, summary)
    _remember_now(host_ref, ref, actor, reason)
    messages.success(request, text)
    return redirect("domain-devices", host, name)


def _live_note(text: str, live: bool) -> str:
    if live:
        return text + " " + _("The running guest sees it now; the next start keeps it.")
    return text


@require_POST
def domain_nic_add(request: HttpRequest, host: str, name: str) -> HttpResponse:
    network = request.POST.get("network", "")
    model = request.POST.get("model", "virtio")
    mac = request.POST.get("mac", "")

    def told(done: nics.Done) -> tuple[str, str]:
        text = _("A %(model)s NIC (%(mac)s) on network %(net)s is added.") % {
            "model": model, "mac": done.mac, "net": network,
        }  # fmt: skip
        return f"{done.mac} on {network} ({model})", _live_note(text, done.live)

    work = lambda h: nics.add(h, name, network, model, mac)  # noqa: E731
    return _device_change(request, host, name, "nic-add", versions.NICS, work, told)


@require_POST
def domain_nic_remove(request: HttpRequest, host: str, name: str) -> HttpResponse:
    mac = request.POST.get("mac", "")

    def told(done: nics.Done) -> tuple[str, str]:
        if done.waiting:
            return done.mac, _(
                "%(mac)s is out of the definition; the running guest has not let it go yet, "
                "it leaves at the next stop."
            ) % {"mac": done.mac}
        return done.mac, _("%(mac)s is removed.") % {"mac": done.mac}

    work = lambda h: nics.remove(h, name, mac)  # noqa: E731
    return _device_change(request, host, name, "nic-remove", versions.NICS, work, told)


@require_POST
def domain_nic_link(request: HttpRequest, host: str, name: str) -> HttpResponse:
    mac, up = request.POST.get("mac", ""), request.POST.get("state") == "up"

    def told(done: nics.Done) -> tuple[str, str]:
        if up:
            return f"{done.mac} up", _("The link of %(mac)s is up.") % {"mac": done.mac}
        return f"{done.mac} down", _("The link of %(mac)s is down.") % {"mac": done.mac}

    work = lambda h: nics.set_link(h, name, mac, up)  # noqa: E731
    return _device_change(request, host, name, "nic-link", versions.NICS, work, told)


@require_POST
def domain_nic_tune(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """What a NIC connects to, its model and MAC: in the definition, for the next start."""
    mac = request.POST.get("mac", "")
    wanted = nics.NicTuning(
        kind=request.POST.get("kind", ""),
        source=request.POST.get("source", "").strip(),
        model=request.POST.get("model", ""),
        mac=request.POST.get("new_mac", "").strip().lower(),
        mode=request.POST.get("mode", "bridge"),
    )

    def told(done: tuple[str, str]) -> tuple[str, str]:
        diff, now = done
        said = f"{mac}: {wanted.kind} {wanted.source}, {wanted.model}, mac {now}"
        if not diff:
            return said, _("Nothing changed.")
        return said, _(
            "Network interface %(mac)s is saved; it applies when the VM next starts."
        ) % {"mac": now}

    work = lambda h: nics.tune(h, name, mac, wanted)  # noqa: E731
    return _device_change(request, host, name, "nic-tune", versions.NICS, work, told)


@require_POST
def domain_disk_add(request: HttpRequest, host: str, name: str) -> HttpResponse:
    volume, bus = request.POST.get("volume", ""), request.POST.get("bus", "virtio")
    # The volume's pool is an object of its own: using it needs that pool's right.
    if "/" in volume:
        door.pool(door.who(request), host, volume.partition("/")[0], Action.MANAGE_STORAGE)

    def told(done: disks.Done) -> tuple[str, str]:
        text = _("%(volume)s is disk %(target)s.") % {"volume": volume, "target": done.target}
        return f"{volume} as {done.target} ({bus})", _live_note(text, done.live)

    work = lambda h: disks.add(h, name, volume, bus)  # noqa: E731
    return _device_change(request, host, name, "disk-add", versions.DISKS, work, told)


@require_POST
def domain_disk_remove(request: HttpRequest, host: str, name: str) -> HttpResponse:
    target = request.POST.get("target", "")

    def told(done: disks.Done) -> tuple[str, str]:
        if done.waiting:
            return target, _(
                "Disk %(target)s is out of the definition; the running guest has not let it go "
                "yet, it leaves at the next stop. The volume stays."
            ) % {"target": target}
        return target, _("Disk %(target)s is removed; the volume stays.") % {"target": target}

    work = lambda h: disks.remove(h, name, target)  # noqa: E731
    return _device_change(request, host, name, "disk-remove", versions.DISKS, work, told)


@require_POST
def domain_disk_tune(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """Bus, cache, I/O and discard of one disk: in the definition, for the next start."""
    target = request.POST.get("target", "")
    wanted = disks.Tuning(
        bus=request.POST.get("bus", ""),
        cache=request.POST.get("cache", ""),
        io=request.POST.get("io", ""),
        discard=request.POST.get("discard", ""),
    )

    def told(done: tuple[str, str]) -> tuple[str, str]:
        diff, now = done
        said = f"{target}: bus {wanted.bus}, cache {wanted.cache or 'default'}, io {wanted.io or 'default'}, discard {wanted.discard or 'default'}"  # noqa: E501
        if not diff:
            return said, _("Nothing changed.")
        text = _("Disk %(target)s is saved; it applies when the VM next starts.") % {"target": now}
        if now != target:
            text += " " + _("On its new bus it is %(now)s (was %(was)s).") % {
                "now": now, "was": target
            }  # fmt: skip
        return said, text

    work = lambda h: disks.tune(h, name, target, wanted)  # noqa: E731
    return _device_change(request, host, name, "disk-tune", versions.DISKS, work, told)


def _remember_now(host: HostRef, ref: DomainRef, actor: Actor, reason: str) -> None:
    try:
        current = definition.read(host, ref.name)
    except VirtError:
        return  # the events service's sink keeps it when it hears the change
    versions.remember(host.slug, ref.uuid, ref.name, current.text, actor.username, reason)
