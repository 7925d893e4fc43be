"""Grants from the database as the policy's rules (one query per request or connection)."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from vmdash.access.models import Grant
from vmdash.policy import Rule


def rules_of(user_id: int) -> list[Rule]:
    """The live grants of a user, given to them or to one of their groups (one query)."""
    grants = (
        Grant.objects.filter(Q(user_id=user_id) | Q(group__user__id=user_id))
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .select_related("role")
    )
    return [
        Rule(
            actions=frozenset(g.role.actions),
            scope=g.scope,
            host=g.host,
            uuid=g.object_uuid,
            name=g.object_name,
            deny=g.role.deny,
            expires=g.expires_at.timestamp() if g.expires_at else None,
        )
        for g in grants
    ]
