from django.urls import path

from stats import views

# Mounted at the root: the graphs sit under their object's URL.
urlpatterns = [
    path("hosts/<slug:host>/domains/<str:name>/stats/", views.domain_stats, name="domain-stats"),
    path("hosts/<slug:host>/stats/", views.host_stats, name="host-stats"),
    path("hosts/<slug:host>/top/", views.host_top, name="host-top"),
    path("metrics", views.metrics, name="metrics"),
]
