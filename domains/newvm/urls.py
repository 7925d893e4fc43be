from django.urls import path

from domains.newvm import views

# Included first in domains/urls.py (mounted under /hosts/<host>/domains/), so that
# new/ and import/ are not taken for VM names.
urlpatterns = [
    path("new/", views.new_vm, name="newvm"),
    path("new/jobs/<str:job>/", views.job_status, name="newvm-job"),
]
