from django.urls import path

from domains.newvm import manage, views

# Included first in domains/urls.py (mounted under /hosts/<host>/domains/), so that
# new/, import/ and deleted/ are not taken for VM names.
urlpatterns = [
    path("new/", views.new_vm, name="newvm"),
    path("new/jobs/<str:job>/", views.job_status, name="newvm-job"),
    path("import/", manage.import_vm, name="domain-import"),
    path("deleted/", manage.deleted_vms, name="domain-deleted"),
    path("<str:name>/clone/", manage.clone_vm, name="domain-clone"),
    path("<str:name>/delete-with-storage/", manage.delete_vm, name="domain-delete-storage"),
]
