from django.urls import path

from networks import views
from vmdash.virt.networks import Op

# Mounted under /hosts/<host>/networks/. "new/" is the create form, so the
# form refuses the name "new" (networks/forms.py).
urlpatterns = [
    path("", views.network_list, name="network-list"),
    path("new/", views.network_new, name="network-new"),
    path("<str:name>/", views.network_detail, name="network-detail"),
    path("<str:name>/edit/", views.network_edit, name="network-edit"),
    path("<str:name>/hosts/add/", views.network_host_add, name="network-host-add"),
    path("<str:name>/hosts/remove/", views.network_host_remove, name="network-host-remove"),
    path("<str:name>/<str:op>/confirm/", views.network_confirm, name="network-confirm"),
    *[
        path(
            f"<str:name>/{op.value}/",
            views.network_op,
            {"op": op.value},
            name=f"network-{op.value}",
        )
        for op in Op
    ],
]
