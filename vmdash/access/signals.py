"""A grant that is given, changed, taken or runs out reaches open connections at once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

from vmdash.access.models import Grant
from vmdash.revoke import rights_changed


def affected_users(grant: Grant) -> list[int]:
    """The users a grant applies to (read by ids: its group may be going away too)."""
    if grant.user_id is not None:
        return [int(grant.user_id)]
    if grant.group_id is not None:
        members = get_user_model().objects.filter(groups__id=grant.group_id)
        return [int(pk) for pk in members.values_list("pk", flat=True)]
    return []


@receiver(post_save, sender=Grant)
@receiver(post_delete, sender=Grant)
def _grant_changed(sender: Any, instance: Grant, **kwargs: Any) -> None:
    for user_id in affected_users(instance):
        rights_changed(user_id, "grant changed")


@receiver(pre_delete, sender=Group)
def _group_going(sender: Any, instance: Group, **kwargs: Any) -> None:
    """Members lose the group's grants: tell them while the membership is still known."""
    if not Grant.objects.filter(group=instance).exists():
        return
    for pk in instance.user_set.values_list("pk", flat=True):
        rights_changed(int(pk), "group deleted")
