"""One upload per volume across web workers: a row per volume being written.

The unique constraint makes the claim atomic in SQLite and PostgreSQL alike.
A worker that is killed mid-upload cannot release its claim, so claims carry
a heartbeat (`beat`, refreshed while bytes flow) and one older than
CLAIM_STALE_S is taken over.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from storage.models import UploadClaim

CLAIM_STALE_S = 60
BEAT_EVERY_S = 10


def claim(host: str, pool: str, volume: str) -> str | None:
    """A token for this upload, or None while another live upload holds the volume."""
    token = secrets.token_hex(16)
    now = timezone.now()
    UploadClaim.objects.filter(
        host=host, pool=pool, volume=volume, beat__lt=now - timedelta(seconds=CLAIM_STALE_S)
    ).delete()
    try:
        with transaction.atomic():
            UploadClaim.objects.create(host=host, pool=pool, volume=volume, owner=token, beat=now)
    except IntegrityError:
        return None
    return token


def beat(token: str) -> None:
    UploadClaim.objects.filter(owner=token).update(beat=timezone.now())


def release(token: str) -> None:
    UploadClaim.objects.filter(owner=token).delete()
