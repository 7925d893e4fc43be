from django.urls import path

from vmdash.access import views

# The Access tab of each object: /access/<kind>/<host>/[<name>/]. `name` is a
# VM, pool or network of the host (tests/unit/test_every_door.py fills it).
_tabs = [path("host/<slug:host>/", views.object_access, {"kind": "host"}, name="access-host")]
_tabs += [
    path(
        "host/<slug:host>/grants/", views.object_grant_add, {"kind": "host"}, name="access-host-add"
    ),
    path(
        "host/<slug:host>/grants/<int:pk>/remove/",
        views.object_grant_remove,
        {"kind": "host"},
        name="access-host-remove",
    ),
]
for _kind in ("vm", "pool", "network"):
    _at = f"{_kind}/<slug:host>/<str:name>/"
    _tabs += [
        path(_at, views.object_access, {"kind": _kind}, name=f"access-{_kind}"),
        path(f"{_at}grants/", views.object_grant_add, {"kind": _kind}, name=f"access-{_kind}-add"),
        path(
            f"{_at}grants/<int:pk>/remove/",
            views.object_grant_remove,
            {"kind": _kind},
            name=f"access-{_kind}-remove",
        ),
    ]

urlpatterns = [
    path("", views.grant_list, name="grant-list"),
    path("add/", views.grant_add, name="grant-add"),
    path("<int:pk>/delete/", views.grant_delete, name="grant-delete"),
    *_tabs,
]
