"""The audit trail is complete for what matters and cannot be erased from the app."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import audit_entries
from vmdash.audit import Actor, Outcome, record
from vmdash.models import AppendOnly, AuditEntry, Host

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db: None) -> User:
    return User.objects.create_superuser("root", password="root-pw-1")


@pytest.fixture
def as_root(root: User) -> Client:
    c = Client()
    c.force_login(root)
    return c


def test_a_failed_login_is_recorded_with_the_name_and_address(lab: Host, bob: User) -> None:
    response = Client().post("/accounts/login/", {"username": "bob", "password": "wrong"})
    assert response.status_code == 200
    entry = AuditEntry.objects.get(action="login")
    assert (entry.outcome, entry.object_name, entry.remote_addr) == ("denied", "bob", "127.0.0.1")
    assert entry.user_id is None


def test_a_login_is_recorded(bob: User) -> None:
    assert (
        Client().post("/accounts/login/", {"username": "bob", "password": "bob-pw-1"}).status_code
        == 302
    )
    assert AuditEntry.objects.get(action="login").outcome == "ok"


def test_a_refused_action_is_recorded_as_denied(as_bob: Client, lab: Host) -> None:
    assert as_bob.post("/hosts/lab/domains/db/start/").status_code == 404
    entry = audit_entries().get()
    assert (entry.outcome, entry.action, entry.username) == ("denied", "start", "bob")
    assert (entry.host, entry.object_name) == ("lab", "db")


def test_a_get_that_is_refused_writes_nothing(as_bob: Client, lab: Host) -> None:
    assert as_bob.get("/hosts/lab/domains/db/").status_code == 404
    assert not audit_entries().exists()


def test_changes_in_the_django_admin_are_recorded(as_root: Client, bob: User) -> None:
    response = as_root.post(
        f"/admin/auth/user/{bob.pk}/change/",
        {
            "username": "bob",
            "is_active": "on",
            "is_staff": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(action="admin-change")
    assert (entry.username, entry.via, entry.object_type, entry.object_name) == (
        "root",
        "admin",
        "user",
        "bob",
    )
    assert "Staff status" in entry.message


def test_the_superuser_cannot_delete_or_change_audit_entries_in_the_admin(
    as_root: Client,
) -> None:
    entry = record(Actor(None, "someone"), "start", None, Outcome.OK)
    assert as_root.get(f"/admin/vmdash/auditentry/{entry.pk}/delete/").status_code == 403
    response = as_root.post(
        "/admin/vmdash/auditentry/",
        {"action": "delete_selected", "_selected_action": [str(entry.pk)], "post": "yes"},
    )
    assert response.status_code in (200, 302, 403)
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    assert as_root.post(f"/admin/vmdash/auditentry/{entry.pk}/change/", {}).status_code == 403


def test_the_trail_refuses_updates_and_deletes_in_code() -> None:
    entry = record(Actor(None, "someone"), "start", None, Outcome.OK)
    entry.message = "rewritten"
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.all().delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(message="x")
    assert AuditEntry.objects.get(pk=entry.pk).message == ""


def test_deleting_a_user_keeps_their_entries(bob: User) -> None:
    record(Actor(bob.pk, "bob"), "start", None, Outcome.OK)
    bob.delete()
    entry = AuditEntry.objects.get(action="start")
    assert (entry.user_id, entry.username) == (None, "bob")


def test_a_refused_network_action_names_a_network(as_bob: Client, lab: Host) -> None:
    assert as_bob.post("/hosts/lab/networks/default/stop/").status_code == 404
    entry = audit_entries().get()
    assert (entry.outcome, entry.object_type, entry.object_name) == ("denied", "network", "default")
