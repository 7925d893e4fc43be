"""The upload socket asks the door at once (the uploads themselves: tests/storage/)."""

from __future__ import annotations

import json

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from storage.routing import websocket_urlpatterns
from tests.conftest import audit_entries
from vmdash.models import Host

pytestmark = pytest.mark.django_db(transaction=True)


async def _said(user: User, path: str) -> tuple[dict[str, str], int | None]:
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    comm.scope["user"] = user
    await comm.connect()
    said = json.loads(await comm.receive_from(timeout=10))
    closed = await comm.receive_output(timeout=10)
    await comm.disconnect()
    return said, closed.get("code")


async def test_a_user_without_grants_is_denied_before_sending_a_byte(bob: User, lab: Host) -> None:
    said, code = await _said(bob, "/ws/hosts/lab/storage/default/upload/")
    assert said["reason"] == "denied" and code == 4409


async def test_a_pool_that_does_not_exist_is_denied_and_audited(alice: User, lab: Host) -> None:
    said, _code = await _said(alice, "/ws/hosts/lab/storage/nope/upload/")
    assert said["reason"] == "denied"
    assert await _denied_entries() == 1


async def test_a_nul_in_the_pool_name_is_refused_not_a_crash(alice: User, lab: Host) -> None:
    said, _code = await _said(alice, "/ws/hosts/lab/storage/a%00b/upload/")
    assert said["type"] == "error"


async def _denied_entries() -> int:
    from asgiref.sync import sync_to_async

    return await sync_to_async(lambda: audit_entries().filter(action="volume-upload").count())()


def _claims_after_a_stale_one() -> tuple[str | None, str | None, str | None]:
    from datetime import timedelta

    from django.utils import timezone

    from storage import claims
    from storage.models import UploadClaim

    first = claims.claim("lab", "default", "v")
    second = claims.claim("lab", "default", "v")
    old = timezone.now() - timedelta(seconds=claims.CLAIM_STALE_S + 1)
    UploadClaim.objects.filter(owner=first).update(beat=old)  # its worker died
    third = claims.claim("lab", "default", "v")
    return first, second, third


async def test_one_upload_per_volume_holds_in_the_database_and_a_dead_worker_lets_go() -> None:
    from asgiref.sync import sync_to_async

    from storage import claims

    first, second, third = await sync_to_async(_claims_after_a_stale_one)()
    assert first and second is None and third and third != first
    await sync_to_async(claims.release)(third)
    assert await sync_to_async(claims.claim)("lab", "default", "v") is not None
