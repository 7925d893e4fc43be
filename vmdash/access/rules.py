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
    return [rule_of(g) for g in grants]


def rule_of(grant: Grant) -> Rule:
    """One grant (its role loaded) as the policy reads it, ended or not."""
    return Rule(
        actions=frozenset(grant.role.actions),
        scope=grant.scope,
        host=grant.host,
        uuid=grant.object_uuid,
        name=grant.object_name,
        deny=grant.role.deny,
        expires=grant.expires_at.timestamp() if grant.expires_at else None,
        tag=grant.tag,
    )
