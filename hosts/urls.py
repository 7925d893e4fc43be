from django.urls import path

from hosts import views

# Mounted under /hosts/.
urlpatterns = [
    path("", views.host_list, name="host-list"),
    path("add/", views.host_add, name="host-add"),
    path("<slug:host>/", views.host_detail, name="host-detail"),
    path("<slug:host>/edit/", views.host_edit, name="host-edit"),
    path("<slug:host>/toggle/", views.host_toggle, name="host-toggle"),
    path("<slug:host>/delete/", views.host_delete, name="host-delete"),
]
