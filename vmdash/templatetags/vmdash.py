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
