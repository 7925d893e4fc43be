from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("hosts.overview_urls")),
    path("hosts/", include("hosts.urls")),
    path("hosts/<slug:host>/domains/", include("domains.urls")),
    path("hosts/<slug:host>/storage/", include("storage.urls")),
    path("hosts/<slug:host>/networks/", include("networks.urls")),
    path("domains/", include("domains.list_urls")),
    path("", include("people.urls")),  # users/ groups/ me/ audit/
    path("access/", include("vmdash.access.urls")),
    path("hooks/", include("vmdash.hooks.urls")),
    path("", include("stats.urls")),  # graphs of VMs and hosts, /metrics
    path("api/", include("api.urls")),  # /api/v1/, /api/schema/, /api/docs/
]

handler500 = "vmdash.failures.server_error"
