"""Formatting helpers for templates. They do no I/O."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import QueryDict

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


@register.simple_tag(takes_context=True)
def query(context: Any, **changes: Any) -> str:
    """The current query string with some parameters changed ('' removes one)."""
    params: QueryDict = context["request"].GET.copy()
    for key, value in changes.items():
        if value in ("", None):
            params.pop(key, None)
        else:
            params[key] = str(value)
    params.pop("page", None) if "page" not in changes else None
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
