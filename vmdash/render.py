"""Responses shared by every app: errors, and partial-or-redirect after a POST."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def error_response(request: HttpRequest, message: str, status: int) -> HttpResponse:
    """A readable error: an alert swapped into #messages for htmx, else a page."""
    context: dict[str, Any] = {"message": message, "status": status}
    if is_htmx(request):
        response = render(request, "partials/alert.html", context, status=status)
        response["HX-Retarget"] = "#messages"
        response["HX-Reswap"] = "afterbegin"
        return response
    return render(request, "error.html", context, status=status)
