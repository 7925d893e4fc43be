from django.contrib import admin

from hosts.forms import HostUriForm
from vmdash.models import AuditEntry, Host


@admin.register(Host)
class HostAdmin(admin.ModelAdmin[Host]):
    list_display = ["slug", "name", "uri", "enabled"]
    form = HostUriForm  # the one URI rule, as in the dashboard's form


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin[AuditEntry]):
    list_display = ["at", "username", "action", "host", "object_name", "outcome"]
    list_filter = ["outcome", "action", "host"]
    search_fields = ["object_name", "object_uuid", "username", "message"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
