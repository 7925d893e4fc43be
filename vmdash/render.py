"""Responses shared by every app: errors, and partial-or-redirect after a POST."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget


def is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def wants_partial(request: HttpRequest) -> bool:
    """An htmx swap, not htmx restoring a history entry (which needs the whole page)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request  # type: ignore[union-attr]


def partial_or_redirect(
    request: HttpRequest,
    template: str | None,
    context: dict[str, Any],
    to: str,
    *,
    message: str = "",
) -> HttpResponse:
    """After a POST: htmx gets the updated partial (no template: it is sent to
    `to`); a plain request is redirected to `to`, with `message` shown there."""
    if is_htmx(request):
        return render(request, template, context) if template else HttpResponseClientRedirect(to)
    if message:
        messages.success(request, message)
    return redirect(to)


def error_response(request: HttpRequest, message: str, status: int) -> HttpResponse:
    """A readable error: an alert swapped into #messages for htmx, else a page."""
    context: dict[str, Any] = {"message": message, "status": status}
    if is_htmx(request):
        response = render(request, "partials/alert.html", context, status=status)
        return reswap(retarget(response, "#messages"), "afterbegin")
    return render(request, "error.html", context, status=status)
