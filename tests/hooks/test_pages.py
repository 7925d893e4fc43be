"""The webhooks pages: who may see them, the form, the audit, "send test"."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import audit_entries
from tests.hooks.receiver import Receiver
from vmdash.access.models import Grant, Role
from vmdash.hooks.kinds import Kind
from vmdash.hooks.models import Delivery, Hook

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(alice: User) -> Hook:
    return Hook.objects.create(
        name="ops", url="https://example.org/in", events=[Kind.VM_STOPPED], created_by=alice
    )


def client_of(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def pages(pk: int) -> list[str]:
    return ["/hooks/", "/hooks/add/", f"/hooks/{pk}/", f"/hooks/{pk}/edit/", f"/hooks/{pk}/delete/"]


def test_someone_without_a_site_wide_grant_sees_no_hooks(as_bob: Client, ops: Hook) -> None:
    for url in pages(ops.pk):
        assert as_bob.get(url).status_code == 403, url
    for url in (f"/hooks/{ops.pk}/test/", f"/hooks/{ops.pk}/secret/", f"/hooks/{ops.pk}/delete/"):
        assert as_bob.post(url).status_code == 403, url
    assert "/hooks/" not in as_bob.get("/").content.decode()
    assert Hook.objects.filter(pk=ops.pk).exists() and not Delivery.objects.exists()


def test_a_host_admin_of_one_host_may_not_manage_hooks(bob: User, ops: Hook) -> None:
    """Hooks hear of every host: a grant on one host is not enough."""
    Grant.objects.create(
        role=Role.objects.get(name="Host admin"), user=bob, scope="host", host="lab"
    )
    assert client_of(bob).get("/hooks/").status_code == 403


def test_a_site_wide_host_admin_manages_hooks(bob: User, ops: Hook) -> None:
    Grant.objects.create(role=Role.objects.get(name="Host admin"), user=bob, scope="site")
    as_bob = client_of(bob)
    page = as_bob.get("/").content.decode()
    assert 'href="/hooks/"' in page
    assert "ops" in as_bob.get("/hooks/").content.decode()


def test_an_admin_adds_a_hook_and_sees_its_secret(as_alice: Client, alice: User) -> None:
    response = as_alice.post(
        "/hooks/add/",
        {
            "name": "pager",
            "url": "https://pager.example.org/vmdash",
            "events": ["vm.crashed", "host.unreachable"],
            "pool_threshold": "85",
            "login_threshold": "5",
            "enabled": "on",
        },
    )
    hook = Hook.objects.get(name="pager")
    assert response.status_code == 302 and response["Location"] == f"/hooks/{hook.pk}/"
    assert hook.events == ["vm.crashed", "host.unreachable"] and hook.created_by == alice
    assert len(hook.secret) >= 40
    page = as_alice.get(response["Location"]).content.decode()
    assert hook.secret in page and "Its secret is below" in page
    entry = audit_entries().get()
    assert (entry.action, entry.object_type, entry.object_name, entry.username) == (
        "hook-add",
        "hook",
        "pager",
        "alice",
    )
    assert "https://pager.example.org/vmdash" in entry.message


HTTP_ONLY = "Enter an http:// or https:// URL with a host name."
NO_CREDENTIALS = "Leave user and password out of the URL; the signature proves the sender."


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("ftp://example.org/in", HTTP_ONLY),
        ("file:///etc/passwd", HTTP_ONLY),
        ("javascript:alert(1)", HTTP_ONLY),
        ("ftp://x", HTTP_ONLY),
        ("https://u:p@example.org/", NO_CREDENTIALS),
    ],
)
def test_only_http_and_https_urls_are_accepted(as_alice: Client, url: str, said: str) -> None:
    response = as_alice.post("/hooks/add/", {"name": "x", "url": url, "events": ["vm.stopped"]})
    assert response.status_code == 400
    page = response.content.decode()
    assert f'<p class="error-text" role="alert">{said}</p>' in page
    assert not Hook.objects.exists() and not audit_entries().exists()


def test_a_hook_chooses_events_from_the_fixed_list_only(as_alice: Client) -> None:
    response = as_alice.post(
        "/hooks/add/",
        {"name": "x", "url": "https://example.org/", "events": ["vm.exploded"],
         "pool_threshold": 90, "login_threshold": 5},
    )  # fmt: skip
    assert response.status_code == 400 and not Hook.objects.exists()
    assert "ping" not in as_alice.get("/hooks/add/").content.decode()


def test_an_admin_edits_a_hook_and_the_change_is_audited(as_alice: Client, ops: Hook) -> None:
    response = as_alice.post(
        f"/hooks/{ops.pk}/edit/",
        {"name": "ops", "url": "http://10.0.0.5:8080/in", "events": ["pool.full"],
         "pool_threshold": "70", "login_threshold": "5"},
    )  # fmt: skip
    assert response.status_code == 302
    ops.refresh_from_db()
    assert (ops.url, ops.events, ops.pool_threshold, ops.enabled) == (
        "http://10.0.0.5:8080/in",
        ["pool.full"],
        70,
        False,
    )
    entry = audit_entries().get()
    assert entry.action == "hook-edit"
    assert "https://example.org/in" in entry.message and "http://10.0.0.5:8080/in" in entry.message


def test_removing_asks_first_then_removes_with_the_log(as_alice: Client, ops: Hook) -> None:
    Delivery.objects.create(hook=ops, kind="ping", next_try_at="2026-01-01T00:00Z")
    page = as_alice.get(f"/hooks/{ops.pk}/delete/").content.decode()
    assert "Remove webhook ops?" in page and Hook.objects.exists()
    assert as_alice.post(f"/hooks/{ops.pk}/delete/").status_code == 302
    assert not Hook.objects.exists() and not Delivery.objects.exists()
    assert audit_entries().get().action == "hook-delete"


def test_send_test_refuses_a_get(as_alice: Client, ops: Hook) -> None:
    assert as_alice.get(f"/hooks/{ops.pk}/test/").status_code == 405
    assert as_alice.get(f"/hooks/{ops.pk}/secret/").status_code == 405
    assert not Delivery.objects.exists()


def test_every_post_needs_the_csrf_token(alice: User, ops: Hook) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    for url in (f"/hooks/{ops.pk}/test/", f"/hooks/{ops.pk}/delete/", "/hooks/add/"):
        assert strict.post(url).status_code == 403, url
    assert Hook.objects.filter(pk=ops.pk).exists() and not Delivery.objects.exists()


def test_send_test_queues_a_ping_and_the_request_posts_nothing(
    as_alice: Client, receiver: Receiver
) -> None:
    hook = Hook.objects.create(name="local", url=receiver.url, events=[Kind.VM_STOPPED])
    response = as_alice.post(f"/hooks/{hook.pk}/test/")
    assert response.status_code == 302
    delivery = Delivery.objects.get()
    assert (delivery.kind, delivery.state, delivery.attempts) == ("ping", "pending", 0)
    time.sleep(0.3)
    assert receiver.got == []  # the events process delivers it, not this request
    log = as_alice.get(f"/hooks/{hook.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert 'id="hook-log"' in log and "<html" not in log and "ping" in log
    assert audit_entries().get().action == "hook-test"


def test_a_new_secret_replaces_the_old_one(as_alice: Client, ops: Hook) -> None:
    old = ops.secret
    as_alice.post(f"/hooks/{ops.pk}/secret/")
    ops.refresh_from_db()
    assert ops.secret != old and audit_entries().get().action == "hook-secret"


def test_the_log_shows_status_response_time_and_excerpt(as_alice: Client, ops: Hook) -> None:
    Delivery.objects.create(
        hook=ops,
        kind="vm.stopped",
        next_try_at="2026-01-01T00:00Z",
        state="delivered",
        attempts=3,
        status_code=204,
        response_ms=17,
        body_excerpt="thanks <b>",
    )
    page = as_alice.get(f"/hooks/{ops.pk}/").content.decode()
    for text in ("vm.stopped", "delivered", "204", "17 ms", "thanks &lt;b&gt;", "<td>3</td>"):
        assert text in page, text
