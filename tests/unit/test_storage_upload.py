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
