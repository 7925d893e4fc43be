from django.contrib import admin

from vmdash.access.models import Grant, Role


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin[Role]):
    list_display = ["name", "slug", "actions", "deny", "builtin"]


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin[Grant]):
    list_display = ["role", "user", "group", "scope", "host", "object_name", "expires_at"]
    list_filter = ["role", "scope", "host"]
