"""/api/v1/ (the API), /api/schema/ (its OpenAPI 3 document), /api/docs/ (Swagger UI)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import URLPattern, URLResolver, path
from django.views.decorators.http import require_GET

from api.core import api
from api.resources import router as resources
from api.vms import router as vms

api.add_router("", resources)
api.add_router("", vms)


@require_GET
@login_not_required
def schema(request: HttpRequest) -> HttpResponse:
    """The schema is public, as the code it describes is (it names no host or VM)."""
    return JsonResponse(api.get_openapi_schema(path_prefix="/api/v1"))


@require_GET
def docs(request: HttpRequest) -> HttpResponse:
    """Swagger UI on the schema, for people logged in (it calls the API as them)."""
    return render(request, "api/docs.html", {"schema_url": "/api/schema/"})


def _open(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    """The API's views answer 401 themselves (token or session): Django's login
    redirect must not catch them first."""
    for p in patterns:
        if isinstance(p, URLResolver):
            _open(p.url_patterns)
        else:
            login_not_required(p.callback)
    return patterns


# (not `app_name`: a module-level name Django would take as this include's namespace)
api_patterns, ninja_app, ninja_namespace = api.urls
urlpatterns = [
    path("v1/", (_open(list(api_patterns)), ninja_app, ninja_namespace)),
    path("schema/", schema, name="api-schema"),
    path("docs/", docs, name="api-docs"),
]
