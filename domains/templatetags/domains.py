"""The VM pages' template helpers: operation buttons, labels, questions, URLs.
They do no I/O."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django import template
from django.urls import get_script_prefix, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from vmdash.virt.domains import OPS, Op

register = template.Library()

# What a person reads on the buttons (vmdash/virt/domains.py keeps the verbs
# of its error messages).
LABELS: dict[Op, Promise] = {
    Op.START: gettext_lazy("Start"),
    Op.SHUTDOWN: gettext_lazy("Shut down"),
    Op.REBOOT: gettext_lazy("Reboot"),
    Op.FORCE_OFF: gettext_lazy("Force off"),
    Op.PAUSE: gettext_lazy("Pause"),
    Op.RESUME: gettext_lazy("Resume"),
    Op.SAVE: gettext_lazy("Save (hibernate)"),
    Op.DISCARD_SAVE: gettext_lazy("Discard saved state"),
    Op.AUTOSTART_ON: gettext_lazy("Autostart on"),
    Op.AUTOSTART_OFF: gettext_lazy("Autostart off"),
    Op.DELETE: gettext_lazy("Delete"),
}
# The operations a list row offers; the VM page offers all of them.
ROW_OPS = frozenset({Op.START, Op.SHUTDOWN, Op.REBOOT, Op.PAUSE, Op.RESUME, Op.FORCE_OFF})


def op_done(op: Op, name: str) -> str:
    """The message after an operation on VM `name`."""
    return _("%(label)s: done for VM '%(name)s'.") % {"label": LABELS[op], "name": name}


@register.filter
def op_label(op: Any, d: Any) -> str:
    if op == Op.START and getattr(d, "managed_save", False):
        return _("Restore")
    return str(LABELS[Op(op)])


@register.filter
def op_question(op: Any, d: Any) -> str:
    questions = {
        Op.DELETE: _("Delete VM '%(name)s'? Its definition is removed; its disk images are kept."),
        Op.FORCE_OFF: _("Force off VM '%(name)s'? This is like pulling the power plug."),
        Op.DISCARD_SAVE: _("Discard the saved memory state of VM '%(name)s'?"),
    }
    question = questions.get(Op(op)) or _("%(label)s VM '%(name)s'?")
    return question % {"label": LABELS[Op(op)], "name": d.name}


@dataclass(frozen=True)
class OpButton:
    op: str
    label: str
    url: str
    confirm_url: str  # set for operations that ask first: a link to the confirmation page
    question: str
    css: str
    vals: str  # hx-vals JSON for confirmed operations


@register.filter
def op_buttons(d: Any, view: str) -> list[OpButton]:
    """The buttons for the operations valid now on VM `d`, for a list row
    ("row") or the VM page header ("header"). One reverse() per VM: every
    operation's URL is the VM's URL plus the operation's name."""
    base = domain_path(d.host, d.name)
    buttons = []
    for op in d.ops:
        if view == "row" and op not in ROW_OPS:
            continue
        info = OPS[op]
        css = "danger" if info.danger else "primary" if op in (Op.START, Op.RESUME) else ""
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


@register.simple_tag
def op_url(d: Any, op: str) -> str:
    return domain_path(d.host, d.name) + f"{Op(op).value}/"


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


@register.filter
def sort_mark(current: str, column: str) -> str:
    if current == column:
        return "▲"
    if current == f"-{column}":
        return "▼"
    return ""
