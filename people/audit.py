"""The audit page: filters, search, paging, and the same rows as a streaming CSV file."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from people.forms import AuditFilter
from vmdash import door
from vmdash.audit import Actor, Outcome, record
from vmdash.models import AuditEntry
from vmdash.policy import Action, require

PAGE_SIZE = 50
COLUMNS = ["at", "username", "via", "remote_addr", "action", "outcome", "host", "object_type",
           "object_name", "object_uuid", "message"]  # fmt: skip
_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run these as formulas


def _filtered(request: HttpRequest) -> tuple[AuditFilter, QuerySet[AuditEntry]]:
    actions = AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()
    form = AuditFilter(request.GET, actions=list(actions))
    entries = AuditEntry.objects.all()
    if not form.is_valid():
        return form, entries.none()
    d = form.cleaned_data
    if d["q"]:
        q = d["q"]
        entries = entries.filter(
            Q(username__icontains=q) | Q(object_name__icontains=q) | Q(host__icontains=q)
            | Q(action__icontains=q) | Q(message__icontains=q) | Q(object_uuid__iexact=q)
        )  # fmt: skip
    if d["user"]:
        entries = entries.filter(username__iexact=d["user"])
    if d["object"]:
        entries = entries.filter(Q(object_name__icontains=d["object"]) | Q(host=d["object"]))
    if d["action"]:
        entries = entries.filter(action=d["action"])
    if d["outcome"]:
        entries = entries.filter(outcome=d["outcome"])
    if d["since"]:
        entries = entries.filter(at__gte=d["since"])
    if d["until"]:
        entries = entries.filter(at__lte=d["until"])
    return form, entries


@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    require(door.who(request), Action.AUDIT)
    form, entries = _filtered(request)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "days": settings.VMDASH_AUDIT_DAYS}
    return render(request, "people/audit.html", context, status=200 if form.is_valid() else 400)


class _Echo:
    """csv.writer writes to this and gets the line back, so rows can be streamed."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _rows(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for e in entries.iterator(chunk_size=2000):
        values = [getattr(e, c) for c in COLUMNS]
        values[0] = timezone.localtime(e.at).isoformat()
        yield writer.writerow([_cell(v) for v in values])


@require_GET
def audit_export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    require(door.who(request), Action.AUDIT)
    form, entries = _filtered(request)
    if not form.is_valid():
        return render(request, "people/audit.html", {"form": form, "page": None}, status=400)
    newest = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    entries = entries.filter(id__lte=newest)  # not the export's own entry, written next
    query = request.GET.urlencode()
    record(Actor.of_request(request), "audit-export", None, Outcome.OK, query,
           object_type="audit")  # fmt: skip
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(_rows(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="vmdash-audit-{stamp}.csv"'
    return response
