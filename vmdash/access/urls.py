from django.urls import path

from vmdash.access import views

urlpatterns = [
    path("", views.grant_list, name="grant-list"),
    path("add/", views.grant_add, name="grant-add"),
    path("<int:pk>/delete/", views.grant_delete, name="grant-delete"),
]
