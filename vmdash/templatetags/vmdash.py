"""Formatting helpers for templates. They do no I/O."""

from __future__ import annotations

from django import template
from django.http import HttpRequest

from vmdash import door, policy

register = template.Library()

_UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"]


@register.filter
def kib(value: int | None) -> str:
    """A size in KiB as a person reads it: 131072 -> '128 MiB'."""
    if value is None:
        return "—"
    size, unit = float(value), 0
    while size >= 1024 and unit < len(_UNITS) - 1:
        size, unit = size / 1024, unit + 1
    return f"{size:.0f} {_UNITS[unit]}" if size == int(size) else f"{size:.1f} {_UNITS[unit]}"


@register.filter(name="bytes")
def bytes_(value: int | None) -> str:
    if value is None:
        return "—"
    if value < 1024:
        return f"{value} B"
    return kib(value // 1024)


@register.filter
def may(request: HttpRequest, action: str) -> bool:
    """May the person of `request` do `action` site-wide? (Cosmetic: every view asks again.)"""
    return policy.can(door.who(request), policy.Action(action))


@register.filter
def may_somewhere(request: HttpRequest, action: str) -> bool:
    """Does the person hold `action` anywhere (to show the page that lists where)?"""
    return policy.can_somewhere(door.who(request), policy.Action(action))


@register.simple_tag(takes_context=True)
def may_on(context: template.Context, obj: object, *actions: str) -> bool:
    """May the page's person do any of `actions` to `obj` (something with a `.ref`)?

    `{% may_on d "console" "console-view" as can_console %}`. Cosmetic, as the
    buttons it hides: the views and consoles ask the policy again.
    """
    request = context.get("request")
    ref = getattr(obj, "ref", None)
    if request is None or ref is None:
        return False
    who = door.who(request)
    return any(policy.can(who, policy.Action(a), ref) for a in actions)


@register.simple_tag
def list_poll() -> str:
    """htmx trigger of a list that libvirt sends no event for: `every 10s`."""
    from django.conf import settings

    return f"every {max(1, int(settings.VMDASH_LIST_POLL))}s"
