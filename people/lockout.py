"""Who is locked out after failed logins (django-axes, by user name), and unlocking them."""

from __future__ import annotations

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.db.models import QuerySet, Sum
from django.utils import timezone


def _recent() -> QuerySet[AccessAttempt]:
    attempts: QuerySet[AccessAttempt] = AccessAttempt.objects.exclude(username=None)
    cool_off = get_cool_off()
    if cool_off is not None:  # without a cool-off time, a lockout lasts until an unlock
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    return attempts


def failures(username: str) -> int:
    """Failed logins under this user name that still count towards a lockout."""
    total = _recent().filter(username=username).aggregate(n=Sum("failures_since_start"))["n"]
    return int(total or 0)


def locked_names() -> set[str]:
    """User names with as many recent failures as django-axes allows: they cannot log in."""
    rows = _recent().values("username").annotate(n=Sum("failures_since_start"))
    limit = int(settings.AXES_FAILURE_LIMIT)
    return {str(r["username"]) for r in rows if r["n"] >= limit}


def unlock(username: str) -> int:
    """Forget the failed attempts of `username`; how many records went."""
    return int(reset(username=username))
