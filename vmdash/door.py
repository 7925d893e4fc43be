"""One door per object kind: every entrance finds objects and asks the policy here.

Pages and htmx partials (through `request.who`, set by WhoMiddleware),
WebSocket consumers and the console desk (through `load_who`), jobs and the
API call the same functions; each returns the object with its full ref, or
raises Http404 (not there, or not yours to see) / PermissionDenied (seen but
not yours to do). Nothing else decides access.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _

import vmdash.virt.domains as virt_domains
from vmdash import policy
from vmdash.access.rules import rules_of
from vmdash.models import Host
from vmdash.policy import ANONYMOUS, Action, Who
from vmdash.virt.errors import NotFound, VirtError
from vmdash.virt.names import name_problem
from vmdash.virt.refs import DomainRef, HostRef, NetworkRef, PoolRef, VolumeRef
from vmdash.virt.resolve import domain_ref, network_ref, pool_ref, volume_ref

T = TypeVar("T")

# Set in the session of a login that still owes its second factor ("verify" a
# code, or "enrol" a device first; people/twofactor.py sets and clears it):
# until then every entrance sees nobody.
SECOND_FACTOR_PENDING = "vmdash_second_factor"


def load_who(user: Any) -> Who:
    """The policy's view of `user`: its groups and live grants, from the database, once."""
    if user is None or not (user.is_authenticated and user.is_active):
        return ANONYMOUS
    if user.is_superuser:
        return Who.of(user)  # needs no grant: no query
    return Who.of(user, rules_of(user.pk))


def load_who_id(user_id: int | None) -> Who:
    """The same for a user known by id only (console desk, jobs)."""
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return load_who(user)


def who(request: HttpRequest) -> Who:
    found = getattr(request, "who", None)
    if not isinstance(found, Who):  # (this test loads a lazy one)
        return _load_request_who(request)
    # The Who itself, not SimpleLazyObject's proxy: the policy reads it some
    # thousand times for a 1000-VM list, and each read through the proxy costs
    # about 4 µs (bench/domain_list.py).
    return getattr(found, "_wrapped", found)


def _load_request_who(request: HttpRequest) -> Who:
    session = getattr(request, "session", None)
    if session is not None and session.get(SECOND_FACTOR_PENDING):
        return ANONYMOUS
    return load_who(getattr(request, "user", None))


class WhoMiddleware:
    """Puts `request.who` on every request, loaded on first use."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.who = SimpleLazyObject(lambda: _load_request_who(request))  # type: ignore[attr-defined]
        return self.get_response(request)


class SecondFactorGate:
    """WebSockets (inside Channels' AuthMiddlewareStack) of a login that still
    owes its second factor see an anonymous user: every consumer refuses them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        from channels.db import database_sync_to_async
        from django.contrib.auth.models import AnonymousUser

        session = scope.get("session")
        if session is not None and await database_sync_to_async(session.get)(SECOND_FACTOR_PENDING):
            scope = {**scope, "user": AnonymousUser()}
        return await self.inner(scope, receive, send)


def check_name(name: str) -> str:
    """A name from a URL or a message, before it goes near libvirt (404 if it cannot be one)."""
    if name_problem(name) is not None:
        raise Http404(_("There is no such object."))
    return name


def host(who_: Who, slug: str, action: Action = Action.VIEW) -> HostRef:
    """An enabled host `who_` may see (404 otherwise) and may `action` (403)."""
    obj = Host.objects.filter(slug=slug, enabled=True).first()
    if obj is None:
        raise Http404(_("There is no host '%(slug)s'.") % {"slug": slug})
    policy.require(who_, action, obj.ref)
    return obj.ref


def host_record(who_: Who, slug: str) -> Host:
    """A host as stored, enabled or not, for those who manage hosts (404 / 403)."""
    obj = Host.objects.filter(slug=slug).first()
    if obj is None or not (obj.enabled or policy.can(who_, Action.MANAGE_HOSTS, obj.ref)):
        raise Http404(_("There is no host '%(slug)s'.") % {"slug": slug})
    policy.require(who_, Action.MANAGE_HOSTS, obj.ref)
    return obj


def domain(
    who_: Who, host_slug: str, name: str, action: Action = Action.VIEW
) -> tuple[HostRef, DomainRef]:
    """The host and VM `name` on it with its UUID, after the policy allowed `action`."""
    href = host(who_, host_slug)
    check_name(name)
    try:
        ref = domain_ref(href, name)
    except NotFound:
        raise Http404(
            _("There is no VM '%(name)s' on host '%(host)s'.") % {"name": name, "host": href.label}
        ) from None
    policy.require(who_, action, ref)
    return href, ref


def _found(fn: Callable[[], T]) -> T:
    """A NotFound from libvirt becomes the page's 404, with its sentence."""
    try:
        return fn()
    except NotFound as err:
        raise Http404(str(err)) from None


def pool(
    who_: Who, host_slug: str, name: str, action: Action = Action.VIEW
) -> tuple[HostRef, PoolRef]:
    """The host and storage pool `name` on it with its UUID, after the policy allowed `action`."""
    href = host(who_, host_slug)
    check_name(name)
    ref = _found(lambda: pool_ref(href, name))
    policy.require(who_, action, ref)
    return href, ref


def volume(
    who_: Who, host_slug: str, pool_name: str, name: str, action: Action = Action.VIEW
) -> tuple[HostRef, VolumeRef]:
    """The host and volume `name` of pool `pool_name`, after the policy allowed `action`.

    Seeing a volume needs seeing its pool."""
    href, _pool = pool(who_, host_slug, pool_name)
    check_name(name)
    ref = _found(lambda: volume_ref(href, pool_name, name))
    policy.require(who_, action, ref)
    return href, ref


def network(
    who_: Who, host_slug: str, name: str, action: Action = Action.VIEW
) -> tuple[HostRef, NetworkRef]:
    """The host and virtual network `name` on it, after the policy allowed `action`."""
    href = host(who_, host_slug)
    check_name(name)
    ref = _found(lambda: network_ref(href, name))
    policy.require(who_, action, ref)
    return href, ref


def console(
    who_: Who, host_slug: str, name: str, want_view_only: bool = False
) -> tuple[HostRef, DomainRef, bool]:
    """The VM and whether `who_`'s console of it is view-only; 404 / 403 like every door.

    Action.CONSOLE may choose view-only; Action.CONSOLE_VIEW_ONLY always gets it.
    """
    href, ref = domain(who_, host_slug, name)
    if policy.can(who_, Action.CONSOLE, ref):
        return href, ref, want_view_only
    policy.require(who_, Action.CONSOLE_VIEW_ONLY, ref)
    return href, ref, True


def console_allowed(who_: Who, ref: DomainRef, view_only: bool) -> bool:
    """May `who_` still hold this console (the desk and open consoles ask again)?"""
    ref = with_tags(who_, ref)
    if policy.can(who_, Action.CONSOLE, ref):
        return True
    return view_only and policy.can(who_, Action.CONSOLE_VIEW_ONLY, ref)


def with_tags(who_: Who, ref: DomainRef) -> DomainRef:
    """`ref` with the VM's tags when the policy needs them for `who_` and it lacks them
    (a ref rebuilt from a ticket or a session). Remembered tags cost no call."""
    if ref.tags is not None or not who_.uses_tags or not ref.uuid:
        return ref
    obj = Host.objects.filter(slug=ref.host, enabled=True).first()
    if obj is None:
        return ref
    try:
        tags = virt_domains.tags_by_uuid(obj.ref, ref.uuid)
    except VirtError:
        return ref  # unknown tags: tag grants give nothing, a tag's "No access" refuses
    return ref if tags is None else replace(ref, tags=tags)


def visible_hosts(who_: Who) -> list[Host]:
    """The enabled hosts `who_` may see."""
    hosts = list(Host.objects.filter(enabled=True))
    allowed = {r.slug for r in policy.visible(who_, [h.ref for h in hosts])}
    return [h for h in hosts if h.slug in allowed]


def visible_domains(who_: Who, refs: list[DomainRef]) -> list[DomainRef]:
    return policy.visible(who_, refs)
