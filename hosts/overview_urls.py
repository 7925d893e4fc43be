from django.urls import path

from hosts import views

# Mounted at / (vmdash/urls.py: include("hosts.overview_urls")).
urlpatterns = [path("", views.overview, name="overview")]
