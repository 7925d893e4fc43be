from django.urls import path

from domains import views

# Mounted at /domains/ (vmdash/urls.py: include("domains.list_urls")).
urlpatterns = [path("", views.domain_list, name="domain-list")]
