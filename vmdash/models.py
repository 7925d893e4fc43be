"""What libvirt does not know: hosts to manage and the audit trail."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from vmdash.virt.errors import InvalidInput
from vmdash.virt.refs import HostRef
from vmdash.virt.uris import check_uri


class AppendOnly(Exception):
    """Something tried to change or delete the audit trail."""


class _AuditQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnly("Audit entries cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnly("Audit entries cannot be deleted.")


class Host(models.Model):
    slug = models.SlugField(
        max_length=50, unique=True, help_text="Short name used in URLs, e.g. 'lab1'."
    )
    name = models.CharField(max_length=100, blank=True, help_text="Display name (optional).")
    uri = models.CharField(
        "libvirt URI",
        max_length=500,
        help_text="e.g. qemu:///system, qemu+ssh://root@lab1/system, qemu+tls://lab1/system",
    )
    enabled = models.BooleanField(
        default=True, help_text="A disabled host is kept but not contacted or shown in lists."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name or self.slug

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Whatever the entrance, a URI that libvirt could turn into a command never lands.
        fields = kwargs.get("update_fields")
        if fields is None or "uri" in fields:
            self.uri = _checked_uri(self.uri)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("host-detail", args=[self.slug])

    @property
    def ref(self) -> HostRef:
        return HostRef(slug=self.slug, uri=self.uri, name=self.name)

    def clean(self) -> None:
        """The one URI rule (vmdash/virt/uris.py), also for the admin and model forms."""
        if self.uri:
            self.uri = _checked_uri(self.uri)


def _checked_uri(uri: str) -> str:
    try:
        return check_uri(uri, allow_demo=True)
    except InvalidInput as err:
        raise ValidationError({"uri": str(err)}, code="refused") from None


class AuditEntry(models.Model):
    class Outcome(models.TextChoices):
        OK = "ok", "succeeded"
        ERROR = "error", "failed"
        DENIED = "denied", "denied"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150, blank=True)
    host = models.CharField(max_length=50, blank=True)
    object_type = models.CharField(max_length=30, blank=True)
    object_name = models.CharField(max_length=255, blank=True)
    object_uuid = models.CharField(max_length=36, blank=True)
    action = models.CharField(max_length=50)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    message = models.TextField(blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    via = models.CharField(max_length=20, blank=True, default="web")
    diff = models.TextField(blank=True)

    objects = _AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        # A VM's Timeline reads its entries by host and UUID (and refusals by name).
        indexes = [
            models.Index(fields=["host", "object_uuid", "at"], name="audit_object_uuid_at"),
            models.Index(fields=["host", "object_name", "at"], name="audit_object_name_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.object_name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnly("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnly("Audit entries cannot be deleted.")
