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
from vmdash.virt import definition, media
from vmdash.virt import domains as virt_domains
from vmdash.virt.errors import VirtError


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
        try:
            context["drives"] = media.drives(host_ref, name)
            context["isos"] = media.isos(host_ref) if context["drives"] else []
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
