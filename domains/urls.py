from django.urls import include, path

from domains import definitions, media, sizing, snapshots, tags, timeline, views
from vmdash.virt.domains import Op

# Mounted under /hosts/<host>/domains/.
urlpatterns = [
    path("", include("domains.newvm.urls")),  # new/, import/, <name>/clone/, ...
    path("<str:name>/", views.domain_detail, {"tab": "overview"}, name="domain-detail"),
    path("<str:name>/devices/", media.domain_devices, name="domain-devices"),
    path("<str:name>/media/", media.domain_media, name="domain-media"),
    path("<str:name>/nics/add/", media.domain_nic_add, name="domain-nic-add"),
    path("<str:name>/disks/add/", media.domain_disk_add, name="domain-disk-add"),
    path("<str:name>/disks/remove/", media.domain_disk_remove, name="domain-disk-remove"),
    path("<str:name>/disks/tune/", media.domain_disk_tune, name="domain-disk-tune"),
    path("<str:name>/nics/tune/", media.domain_nic_tune, name="domain-nic-tune"),
    path("<str:name>/nics/remove/", media.domain_nic_remove, name="domain-nic-remove"),
    path("<str:name>/nics/link/", media.domain_nic_link, name="domain-nic-link"),
    path("<str:name>/xml/", definitions.domain_xml, name="domain-xml"),
    path("<str:name>/history/", definitions.domain_history, name="domain-history"),
    path(
        "<str:name>/history/<int:pk>/revert/",
        definitions.domain_history_revert,
        name="domain-history-revert",
    ),
    path("<str:name>/hardware/", sizing.domain_hardware, name="domain-hardware"),
    path("<str:name>/hardware/pins/", sizing.domain_pins, name="domain-pins"),
    path("<str:name>/hardware/numa/", sizing.domain_numa, name="domain-numa"),
    path("<str:name>/hardware/placement/", sizing.domain_placement, name="domain-placement"),
    path("<str:name>/hardware/boot/", sizing.domain_boot, name="domain-boot"),
    path("<str:name>/hardware/cpu/", sizing.domain_cpu, name="domain-cpu"),
    path(
        "<str:name>/hardware/cpu/features/",
        sizing.domain_cpu_features,
        name="domain-cpu-features",
    ),
    path(
        "<str:name>/hardware/revert/",
        sizing.domain_hardware_revert,
        name="domain-hardware-revert",
    ),
    path("<str:name>/snapshots/", snapshots.domain_snapshots, name="domain-snapshots"),
    path(
        "<str:name>/snapshots/jobs/<str:job>/", snapshots.snapshot_job, name="domain-snapshot-job"
    ),
    path(
        "<str:name>/snapshots/<str:snap>/revert/",
        snapshots.snapshot_revert,
        name="domain-snapshot-revert",
    ),
    path(
        "<str:name>/snapshots/<str:snap>/delete/",
        snapshots.snapshot_delete,
        name="domain-snapshot-delete",
    ),
    path("<str:name>/tags/", tags.domain_tags, name="domain-tags"),
    path("<str:name>/timeline/", timeline.domain_timeline, name="domain-timeline"),
    path("<str:name>/", include("vmdash.console.urls")),  # console/..., serial/
    path("<str:name>/<str:op>/confirm/", views.domain_confirm, name="domain-confirm"),
    *[
        path(
            f"<str:name>/{op.value}/", views.domain_op, {"op": op.value}, name=f"domain-{op.value}"
        )
        for op in Op
    ],
]
