from django.urls import path

from storage import views
from vmdash.virt.storage import PoolOp

# Mounted under /hosts/<host>/storage/. `name` is the pool (the permission
# matrix of tests/unit/test_every_door.py fills it), `volume` a volume in it.
urlpatterns = [
    path("", views.pool_list, name="pool-list"),
    path("new/", views.pool_new, name="pool-new"),
    path("new/sources/", views.pool_sources, name="pool-sources"),
    path("<str:name>/", views.pool_detail, name="pool-detail"),
    path("<str:name>/delete/confirm/", views.pool_confirm, name="pool-confirm"),
    path("<str:name>/iso-library/", views.pool_library, name="pool-iso-library"),
    path("<str:name>/upload/", views.upload_page, name="volume-upload"),
    path("<str:name>/volumes/new/", views.volume_create, name="volume-create"),
    path("<str:name>/jobs/<str:job>/", views.job_status, name="storage-job"),
    path("<str:name>/jobs/<str:job>/cancel/", views.job_cancel, name="storage-job-cancel"),
    path("<str:name>/volumes/<str:volume>/", views.volume_detail, name="volume-detail"),
    path("<str:name>/volumes/<str:volume>/resize/", views.volume_resize, name="volume-resize"),
    path("<str:name>/volumes/<str:volume>/clone/", views.volume_clone, name="volume-clone"),
    path("<str:name>/volumes/<str:volume>/wipe/", views.volume_wipe, name="volume-wipe"),
    path("<str:name>/volumes/<str:volume>/delete/", views.volume_delete, name="volume-delete"),
    path(
        "<str:name>/volumes/<str:volume>/delete/confirm/",
        views.volume_confirm,
        name="volume-confirm",
    ),
    path(
        "<str:name>/volumes/<str:volume>/download/", views.volume_download, name="volume-download"
    ),
    *[
        path(f"<str:name>/{op.value}/", views.pool_op, {"op": op.value}, name=f"pool-{op.value}")
        for op in PoolOp
    ],
]
