"""Formatting helpers for templates. They do no I/O."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.http import QueryDict
from django.urls import reverse

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


@register.simple_tag
def op_url(d: Any, op: str) -> str:
    return reverse(f"domain-{op}", args=[d.host, d.name])


@register.simple_tag
def confirm_url(d: Any, op: str) -> str:
    return reverse("domain-confirm", args=[d.host, d.name, op])


@register.simple_tag
def hx_vals(**values: Any) -> str:
    """JSON for hx-vals; autoescaping then makes it safe inside the attribute."""
    return json.dumps({k: str(v) for k, v in values.items()})


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


@register.simple_tag(takes_context=True)
def sort_query(context: Any, column: str) -> str:
    current = context.get("sort", "name")
    target = f"-{column}" if current == column else column
    return str(query(context, sort=target))


@register.filter
def sort_mark(current: str, column: str) -> str:
    if current == column:
        return "▲"
    if current == f"-{column}":
        return "▼"
    return ""


@register.filter
def op_label(op: Any, d: Any) -> str:
    from vmdash.virt.domains import OPS, Op

    if op == Op.START and getattr(d, "managed_save", False):
        return "Restore"
    return OPS[Op(op)].label


@register.filter
def op_question(op: Any, d: Any) -> str:
    from vmdash.virt.domains import Op

    return {
        Op.DELETE: f"Delete VM '{d.name}'? Its definition is removed; its disk images are kept.",
        Op.FORCE_OFF: f"Force off VM '{d.name}'? This is like pulling the power plug.",
        Op.DISCARD_SAVE: f"Discard the saved memory state of VM '{d.name}'?",
    }.get(Op(op), f"{op} VM '{d.name}'?")
