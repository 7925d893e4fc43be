from django.urls import path

from vmdash.console import views

# The VM app's urls.py includes these under /hosts/<host>/domains/<name>/.
urlpatterns = [
    path("console/", views.console_page, name="domain-console"),
    path("console/popout/", views.console_popout, name="domain-console-popout"),
    path("console/ticket/", views.console_ticket, name="domain-console-ticket"),
    path("console/status/", views.console_status, name="domain-console-status"),
    path("console/viewers/", views.console_viewers, name="domain-console-viewers"),
    path("serial/", views.serial_page, name="domain-serial"),
]
