"""What the people pages keep beyond Django's users and groups."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SecondFactorRequired(models.Model):
    """The members of this group must log in with a second factor (people/twofactor.py).

    A row per group that requires it: a group without one leaves the choice to each member.
    """

    group = models.OneToOneField(
        Group, on_delete=models.CASCADE, primary_key=True, related_name="second_factor_required"
    )
    since = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("group that requires two-factor login")
        verbose_name_plural = _("groups that require two-factor login")

    def __str__(self) -> str:
        return str(self.group)


class ApiToken(models.Model):
    """A key for the API (api/), made by its user on their own page.

    The secret is shown once and only its SHA-256 is kept (it is 32 random
    bytes: no salt or slow hash is needed against guessing). `key` is the
    public part that finds the row. A token may be narrowed to one role on
    one scope, like a grant: its rights are then those of the role there AND
    its user's (as Proxmox's privilege-separated tokens); without a role it
    has all of its user's rights. It stops working at `expires_at`, when it
    is revoked (deleted), or when its user is deactivated.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=60)
    key = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    role = models.ForeignKey(
        "access.Role", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    scope = models.CharField(_("scope"), max_length=10, blank=True)
    host = models.CharField(_("host"), max_length=50, blank=True)
    object_uuid = models.CharField(max_length=36, blank=True)
    object_name = models.CharField(_("object"), max_length=255, blank=True)
    tag = models.CharField(_("tag"), max_length=40, blank=True)
    expires_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="token_name_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
