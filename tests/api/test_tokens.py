"""API tokens: made on one's own page and shown once, kept only as a hash, ended
by their time, by revoking or by deactivating their user; narrowed by a role."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import lxml.html
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from people import tokens
from people.models import ApiToken
from vmdash.models import AuditEntry, Host

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def made(user: User, name: str = "script", **kw: object) -> str:
    return tokens.issue(ApiToken(user=user, name=name, **kw))


def test_a_token_is_made_on_ones_page_shown_once_and_kept_as_a_hash(as_bob: Client, bob: User):
    page = as_bob.post("/me/tokens/", {"name": "backup", "expires_at": ""})
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    raw = lxml.html.fromstring(page.content).get_element_by_id("token").text_content()
    assert raw.startswith("vmd_")
    token = ApiToken.objects.get(user=bob, name="backup")
    secret = raw.split("_", 2)[2]
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(list(ApiToken.objects.values()))  # only its hash is kept
    again = as_bob.get("/me/")
    assert b"backup" in again.content and secret.encode() not in again.content
    # It works, as bob.
    me = Client().get("/api/v1/me/", **bearer(raw))
    assert me.status_code == 200 and me.json()["username"] == "bob"
    assert me.json()["token"] == "backup"
    entry = AuditEntry.objects.filter(action="token-add").get()
    assert entry.username == "bob" and secret not in entry.message


def test_the_form_refuses_a_past_end_and_a_name_used_twice(as_bob: Client, bob: User):
    made(bob, "backup")
    page = as_bob.post("/me/tokens/", {"name": "backup", "expires_at": "2001-01-01T00:00"})
    assert page.status_code == 400
    doc = lxml.html.fromstring(page.content)
    errors = " ".join(e.text_content() for e in doc.xpath("//p[@class='error-text']"))
    assert "already have a token of this name" in errors
    assert "This time has passed" in errors
    assert ApiToken.objects.filter(user=bob).count() == 1


def test_a_role_needs_a_scope_and_an_object_that_exists(as_bob: Client, lab: Host):
    viewer = "viewer"
    from vmdash.access.models import Role

    role = Role.objects.get(slug=viewer).pk
    page = as_bob.post("/me/tokens/", {"name": "t", "role": role, "scope": "vm", "host": "lab",
                                       "object_name": "no-such-vm"})  # fmt: skip
    assert page.status_code == 400
    assert b"no-such-vm" in page.content
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    "spoil",
    [
        lambda raw: raw[:-1] + ("A" if raw[-1] != "A" else "B"),  # wrong secret
        lambda raw: raw.replace("vmd_", "xyz_"),  # not a token
        lambda raw: raw.split("_", 2)[0] + "_" + raw.split("_", 2)[1],  # no secret
        lambda raw: "vmd_" + "0" * 12 + "_" + raw.split("_", 2)[2],  # another key
    ],
)
def test_a_wrong_token_is_refused(bob: User, spoil):
    raw = made(bob)
    refused = Client().get("/api/v1/me/", **bearer(spoil(raw)))
    assert refused.status_code == 401
    assert refused.json()["detail"].startswith("Log in, or send an API token")
    assert refused["WWW-Authenticate"].startswith("Bearer")


def test_an_ended_token_a_revoked_one_and_one_of_a_deactivated_user_are_refused(
    as_bob: Client, bob: User
):
    ended = made(bob, "ended", expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get("/api/v1/me/", **bearer(ended)).status_code == 401

    revoked = made(bob, "revoked")
    assert Client().get("/api/v1/me/", **bearer(revoked)).status_code == 200
    key = ApiToken.objects.get(name="revoked").key
    assert as_bob.post(f"/me/tokens/{key}/revoke/").status_code == 302
    assert Client().get("/api/v1/me/", **bearer(revoked)).status_code == 401

    kept = made(bob, "kept")
    bob.is_active = False
    bob.save()
    assert Client().get("/api/v1/me/", **bearer(kept)).status_code == 401


def test_one_may_revoke_only_ones_own_tokens(as_bob: Client, alice: User):
    made(alice, "alices")
    key = ApiToken.objects.get(name="alices").key
    assert as_bob.post(f"/me/tokens/{key}/revoke/").status_code == 404
    assert ApiToken.objects.filter(key=key).exists()


def test_last_use_is_recorded(bob: User):
    raw = made(bob)
    assert ApiToken.objects.get().last_used_at is None
    Client().get("/api/v1/me/", **bearer(raw))
    assert ApiToken.objects.get().last_used_at is not None


def test_calls_beyond_the_rate_get_429_with_retry_after(bob: User, settings):
    settings.VMDASH_API_RATE = "3/min"
    raw = made(bob)
    other = made(bob, "other")
    codes = [Client().get("/api/v1/me/", **bearer(raw)).status_code for _call in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = Client().get("/api/v1/me/", **bearer(raw))
    assert int(limited["Retry-After"]) >= 1
    assert "Too many calls" in limited.json()["detail"]
    assert Client().get("/api/v1/me/", **bearer(other)).status_code == 200  # per token


@pytest.mark.django_db(transaction=True)
def test_a_token_opens_only_the_upload_socket(bob: User) -> None:
    """people/tokens.py TokenScope: an upload socket with a token is its user's,
    bounded as the token is; any other socket with one is nobody's."""
    import asyncio

    from vmdash.access.models import Role

    role = Role.objects.get(slug="viewer")
    raw = tokens.issue(ApiToken(user=bob, name="ws", role=role, scope="site"))
    seen: list[dict[str, object]] = []

    async def inner(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(scope)

    async def open_(path: str, value: str) -> dict[str, object]:
        scope = {"type": "websocket", "path": path, "headers": [(b"authorization", value.encode())]}
        await tokens.TokenScope(inner)(scope, None, None)
        return seen[-1]

    upload = asyncio.run(open_("/ws/hosts/lab/storage/images/upload/", f"Bearer {raw}"))
    assert upload["user"] == bob
    who = upload["vmdash_who"]
    assert who.within is not None and who.within.rules[0].actions == frozenset({"view"})
    events = asyncio.run(open_("/ws/events/", f"Bearer {raw}"))
    assert not events["user"].is_authenticated
    wrong = asyncio.run(open_("/ws/hosts/lab/storage/images/upload/", "Bearer vmd_0_0"))
    assert not wrong["user"].is_authenticated


def test_an_access_manager_sees_and_revokes_a_users_tokens(
    as_alice: Client, as_bob: Client, alice: User, bob: User
) -> None:
    raw = made(bob, "laptop")
    key = ApiToken.objects.get(name="laptop").key
    page = as_alice.get("/users/bob/").content.decode()
    assert "laptop" in page and f"vmd_{key}_" in page and raw.split("_", 2)[2] not in page
    assert as_bob.post(f"/users/bob/tokens/{key}/revoke/").status_code == 403  # not a manager
    assert as_alice.post(f"/users/bob/tokens/{key}/revoke/").status_code == 302
    assert Client().get("/api/v1/me/", **bearer(raw)).status_code == 401
    entry = AuditEntry.objects.get(action="token-revoke")
    assert (entry.username, entry.object_name) == ("alice", "bob/laptop")
