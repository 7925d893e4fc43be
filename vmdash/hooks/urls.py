from django.urls import path

from vmdash.hooks import views

# Mounted under /hooks/.
urlpatterns = [
    path("", views.hook_list, name="hook-list"),
    path("add/", views.hook_add, name="hook-add"),
    path("<int:pk>/", views.hook_detail, name="hook-detail"),
    path("<int:pk>/edit/", views.hook_edit, name="hook-edit"),
    path("<int:pk>/delete/", views.hook_delete, name="hook-delete"),
    path("<int:pk>/test/", views.hook_test, name="hook-test"),
    path("<int:pk>/secret/", views.hook_secret, name="hook-secret"),
]
