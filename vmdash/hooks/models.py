"""Hooks, their deliveries (queue and log at once) and what was sent once."""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from vmdash.hooks.kinds import Kind


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class Hook(models.Model):
    """A URL that receives the chosen events, signed with its own secret."""

    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(_("URL"), max_length=500)
    # Kept as it is: the sender needs it to sign. Only those who manage hooks see it.
    secret = models.CharField(_("secret"), max_length=100, default=new_secret)
    events = models.JSONField(_("events"), default=list)  # Kind values
    enabled = models.BooleanField(_("enabled"), default=True)
    pool_threshold = models.PositiveSmallIntegerField(
        _("pool threshold (%)"),
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
    )
    login_threshold = models.PositiveSmallIntegerField(
        _("failed logins threshold"), default=5, validators=[MinValueValidator(1)]
    )
    vm_tag = models.CharField(
        _("only VMs tagged"),
        max_length=40,
        blank=True,
        help_text=_("Empty: every VM. Else VM events only of the VMs carrying this tag."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def wants(self, kind: str) -> bool:
        return self.enabled and kind in self.events


class Delivery(models.Model):
    """One event for one hook: queued, tried, delivered or given up.

    Deliveries of a hook go out in the order of their ids: the sender tries
    a hook's oldest pending one only, so a later one waits until the earlier
    one was delivered or given up."""

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("given up")

    hook = models.ForeignKey(Hook, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(_("event"), max_length=40, choices=Kind.choices)
    payload = models.JSONField(_("payload"), default=dict)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    status_code = models.PositiveSmallIntegerField(_("status"), null=True, blank=True)
    response_ms = models.PositiveIntegerField(_("response time (ms)"), null=True, blank=True)
    body_excerpt = models.CharField(_("response"), max_length=500, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    next_try_at = models.DateTimeField(_("next try"), db_index=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    created_at = models.DateTimeField(_("queued"), auto_now_add=True)

    class Meta:
        ordering = ["hook", "id"]
        indexes = [models.Index(fields=["state", "hook", "id"], name="hooks_delivery_pending")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} to {self.hook_id}"

    def envelope(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "event": self.kind,
            "created_at": self.created_at.isoformat(),
            "data": self.payload,
        }

    def body(self) -> bytes:
        """The bytes that are signed and sent: the same on every attempt."""
        return json.dumps(self.envelope(), sort_keys=True, separators=(",", ":")).encode()


class Occurrence(models.Model):
    """A condition a hook was told about once (a pool above its threshold, a
    host down, a grant ending, a run of failed logins), so that it is told
    once per occurrence, also across restarts of the events process."""

    hook = models.ForeignKey(Hook, on_delete=models.CASCADE, related_name="occurrences")
    key = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hook", "key"], name="hooks_occurrence_once")
        ]

    def __str__(self) -> str:
        return f"{self.key} for hook {self.hook_id}"
