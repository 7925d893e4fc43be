from django.contrib import admin
from django.urls import include, path

from domains import views as domain_views
from vmdash import views

urlpatterns = [
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", views.overview, name="overview"),
    path("hosts/", views.host_list, name="host-list"),
    path("hosts/add/", views.host_add, name="host-add"),
    path("hosts/<slug:host>/", views.host_detail, name="host-detail"),
    path("hosts/<slug:host>/edit/", views.host_edit, name="host-edit"),
    path("hosts/<slug:host>/toggle/", views.host_toggle, name="host-toggle"),
    path("hosts/<slug:host>/delete/", views.host_delete, name="host-delete"),
    path("hosts/<slug:host>/domains/", include("domains.urls")),
    path("domains/", domain_views.domain_list, name="domain-list"),
    path("audit/", views.audit_list, name="audit"),
]
