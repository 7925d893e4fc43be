"""First-run setup: hosts from the environment and a first admin account."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from vmdash.hostsync import sync_hosts


class Command(BaseCommand):
    help = "Sync hosts from VMDASH_HOSTS and create the first admin if there is none."

    def handle(self, *args: Any, **options: Any) -> None:
        for line in sync_hosts():
            self.stdout.write(f"vmdash: {line}")
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("VMDASH_ADMIN_USER", "admin")
        password = os.environ.get("VMDASH_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        shown = (
            password if not os.environ.get("VMDASH_ADMIN_PASSWORD") else "(VMDASH_ADMIN_PASSWORD)"
        )
        self.stdout.write(
            self.style.SUCCESS(
                "vmdash: first admin created. Log in to the dashboard with\n"
                f"    user:     {username}\n    password: {shown}\n"
                "  This password is shown only this once; change it under Users."
            )
        )
