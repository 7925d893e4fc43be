"""Roles and grants: who may do what where, and until when.

A role is a named set of actions (vmdash.policy.Action). A grant gives one
role to one user or one group on a scope: the whole site, one host, one
VM, pool or network of a host (by UUID, so a rename keeps it), or every VM
of any host that carries a tag (in its libvirt <metadata>). A grant may
end at a time. The "No access" role denies everything it reaches, whatever
else is granted (as in Proxmox). Superusers need no grants.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    actions = models.JSONField(_("actions"), default=list, blank=True)
    deny = models.BooleanField(
        _("denies"), default=False, help_text=_("No access: refuses everything it reaches.")
    )
    builtin = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return str(self.name)


class Grant(models.Model):
    class Scope(models.TextChoices):
        SITE = "site", _("the whole site")
        HOST = "host", _("a host")
        VM = "vm", _("a VM")
        POOL = "pool", _("a storage pool")
        NETWORK = "network", _("a network")
        TAG = "tag", _("the VMs with a tag")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="vmdash_grants",
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="vmdash_grants"
    )
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="grants")
    scope = models.CharField(_("scope"), max_length=10, choices=Scope.choices)
    host = models.CharField(_("host"), max_length=50, blank=True)
    object_uuid = models.CharField(max_length=36, blank=True)
    object_name = models.CharField(_("object"), max_length=255, blank=True)
    tag = models.CharField(_("tag"), max_length=40, blank=True, db_index=True)
    expires_at = models.DateTimeField(_("ends at"), null=True, blank=True, db_index=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host", "object_name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="grant_to_user_or_group",
            ),
        ]

    def __str__(self) -> str:
        who = self.user or self.group
        return f"{self.role} for {who} on {self.where}"

    @property
    def where(self) -> str:
        if self.scope == self.Scope.SITE:
            return str(_("the whole site"))
        if self.scope == self.Scope.HOST:
            return self.host
        if self.scope == self.Scope.TAG:
            return str(_("VMs tagged %(tag)s") % {"tag": self.tag})
        return f"{self.host}/{self.object_name or self.object_uuid}"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
