"""A grant that is given, changed, taken or runs out reaches open connections at once."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from vmdash.access.models import Grant
from vmdash.revoke import rights_changed


def affected_users(grant: Grant) -> list[int]:
    if grant.user_id is not None:
        return [int(grant.user_id)]
    if grant.group is not None:
        return [int(pk) for pk in grant.group.user_set.values_list("pk", flat=True)]
    return []


@receiver(post_save, sender=Grant)
@receiver(post_delete, sender=Grant)
def _grant_changed(sender: Any, instance: Grant, **kwargs: Any) -> None:
    for user_id in affected_users(instance):
        rights_changed(user_id, "grant changed")
