from django.contrib import admin
from django.urls import include, path

from domains import views as domain_views
from vmdash import views

urlpatterns = [
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", views.overview, name="overview"),
    path("hosts/", include("hosts.urls")),
    path("hosts/<slug:host>/domains/", include("domains.urls")),
    path("hosts/<slug:host>/storage/", include("storage.urls")),
    path("hosts/<slug:host>/networks/", include("networks.urls")),
    path("domains/", domain_views.domain_list, name="domain-list"),
    path("", include("people.urls")),  # users/ groups/ me/ audit/
    path("access/", include("vmdash.access.urls")),
]
