"""What the people pages keep beyond Django's users and groups."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import models
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
