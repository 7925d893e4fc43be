"""Formatting helpers for templates. They do no I/O."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django import template
from django.http import QueryDict
from django.urls import get_script_prefix, reverse

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


@dataclass(frozen=True)
class OpButton:
    op: str
    label: str
    url: str
    confirm_url: str  # set for operations that ask first: a link to the confirmation page
    question: str
    css: str
    vals: str  # hx-vals JSON for confirmed operations


_ROW_OPS = ("start", "shutdown", "reboot", "pause", "resume", "force-off")


@register.filter
def op_buttons(d: Any, view: str) -> list[OpButton]:
    """The buttons for the operations valid now on VM `d`, for a list row
    ("row") or the VM page header ("header"). One reverse() per VM: every
    operation's URL is the VM's URL plus the operation's name."""
    from vmdash.virt.domains import OPS

    base = domain_path(d.host, d.name)
    buttons = []
    for op in d.ops:
        if view == "row" and op.value not in _ROW_OPS:
            continue
        info = OPS[op]
        css = "danger" if info.danger else "primary" if op.value in ("start", "resume") else ""
        buttons.append(
            OpButton(
                op=op.value,
                label=op_label(op, d),
                url=f"{base}{op.value}/",
                confirm_url=f"{base}{op.value}/confirm/" if info.confirm else "",
                question=op_question(op, d) if info.confirm else "",
                css=css,
                vals=json.dumps({"confirm": d.name}) if info.confirm else "",
            )
        )
    return buttons


_PLACEHOLDER = "__vmdash_name__"
# What reverse() leaves unescaped in a path (django.urls.resolvers).
_PATH_SAFE = "/!$&'()*+,;=~:@"


@functools.lru_cache(maxsize=8)
def _domain_pattern(_script_prefix: str) -> tuple[str, str, str]:
    head, middle, tail = reverse("domain-detail", args=[_PLACEHOLDER, _PLACEHOLDER]).split(
        _PLACEHOLDER
    )
    return head, middle, tail


def domain_path(host: str, name: str) -> str:
    """reverse("domain-detail", args=[host, name]) without resolving per VM:
    the list renders hundreds of these, and reverse() costs ~25 µs each."""
    head, middle, tail = _domain_pattern(get_script_prefix())
    return f"{head}{quote(host, safe=_PATH_SAFE)}{middle}{quote(name, safe=_PATH_SAFE)}{tail}"


@register.filter
def domain_url(d: Any) -> str:
    return domain_path(d.host, d.name)
