"""The first line of every view: find the object and ask the policy."""

from __future__ import annotations

from django.http import Http404, HttpRequest

from vmdash.models import Host
from vmdash.policy import Action, require, visible
from vmdash.virt.refs import DomainRef, HostRef


def get_host_for_user(request: HttpRequest, slug: str, action: Action = Action.VIEW) -> Host:
    """An enabled host the user may see (404 otherwise) and may `action` (403)."""
    host = Host.objects.filter(slug=slug).first()
    if host is None or (not host.enabled and action != Action.MANAGE_HOSTS):
        raise Http404(f"There is no host '{slug}'.")
    require(request.user, Action.VIEW, host.ref)
    if action != Action.VIEW:
        require(request.user, action, host.ref)
    return host


def get_domain_for_user(
    request: HttpRequest, host_slug: str, name: str, action: Action = Action.VIEW
) -> tuple[HostRef, DomainRef]:
    """The host and a ref to VM `name` on it, after the policy allowed `action`."""
    host = get_host_for_user(request, host_slug)
    ref = DomainRef(host.slug, name)
    require(request.user, Action.VIEW, ref)
    if action != Action.VIEW:
        require(request.user, action, ref)
    return host.ref, ref


def visible_hosts(request: HttpRequest) -> list[Host]:
    hosts = list(Host.objects.filter(enabled=True))
    allowed = {r.slug for r in visible(request.user, [h.ref for h in hosts])}
    return [h for h in hosts if h.slug in allowed]
