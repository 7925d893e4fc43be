from __future__ import annotations

from django.contrib import admin

from people.models import SecondFactorRequired


@admin.register(SecondFactorRequired)
class SecondFactorRequiredAdmin(admin.ModelAdmin[SecondFactorRequired]):
    list_display = ("group", "since")
