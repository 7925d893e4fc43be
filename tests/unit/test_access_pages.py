"""The Access page: who gives grants where, and what a bad grant form says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tests.conftest import audit_entries
from vmdash.access.models import Grant, Role
from vmdash.models import Host

pytestmark = pytest.mark.django_db
WEB1 = "11111111-0000-4000-8000-000000000001"


@pytest.fixture
def root(db: None) -> Client:
    c = Client()
    c.force_login(User.objects.create_superuser("root", password="root-pw-1"))
    return c


@pytest.fixture
def dora(db: None) -> User:
    return User.objects.create_user("dora", password="dora-pw-1")


@pytest.fixture
def henry(lab: Host) -> Client:
    """Host admin on lab only: may give grants there, nowhere else."""
    u = User.objects.create_user("henry", password="henry-pw-1")
    Grant.objects.create(user=u, role=Role.objects.get(slug="host-admin"), scope="host", host="lab")
    c = Client()
    c.force_login(u)
    return c


def _give(c: Client, **data: str) -> tuple[int, str]:
    response = c.post("/access/add/", data)
    return response.status_code, response.content.decode()


def test_a_superuser_gives_dora_viewer_on_one_vm_and_she_sees_it(
    root: Client, lab: Host, dora: User
) -> None:
    viewer = Role.objects.get(slug="viewer")
    status, _ = _give(
        root, user=str(dora.pk), role=str(viewer.pk), scope="vm", host="lab", object_name="web1"
    )
    assert status == 302
    grant = Grant.objects.get(user=dora)
    assert (grant.object_uuid, grant.object_name) == (WEB1, "web1")
    entry = audit_entries().get(action="grant-add")
    assert (entry.username, entry.object_type, entry.host) == ("root", "grant", "lab")
    c = Client()
    c.force_login(dora)
    assert c.get("/hosts/lab/domains/web1/").status_code == 200


def test_a_grant_on_a_vm_that_does_not_exist_is_refused_next_to_the_name(
    root: Client, lab: Host, dora: User
) -> None:
    status, page = _give(
        root,
        user=str(dora.pk),
        role=str(Role.objects.get(slug="viewer").pk),
        scope="vm",
        host="lab",
        object_name="nosuchvm",
    )
    assert status == 400 and "There is no VM" in page
    assert not Grant.objects.exists()


def test_a_grant_must_name_one_user_or_one_group_and_end_ahead(
    root: Client, lab: Host, dora: User
) -> None:
    viewer = str(Role.objects.get(slug="viewer").pk)
    status, page = _give(root, role=viewer, scope="site")
    assert status == 400 and "Choose a user or a group" in page
    past = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    status, page = _give(root, user=str(dora.pk), role=viewer, scope="site", expires_at=past)
    assert status == 400 and "This time has passed" in page
    assert not Grant.objects.exists()


def test_a_host_admin_gives_grants_on_their_host_only(henry: Client, lab: Host, dora: User) -> None:
    viewer = str(Role.objects.get(slug="viewer").pk)
    status, _ = _give(
        henry, user=str(dora.pk), role=viewer, scope="vm", host="lab", object_name="web1"
    )
    assert status == 302
    status, _ = _give(henry, user=str(dora.pk), role=viewer, scope="site")
    assert status == 403
    assert Grant.objects.filter(user=dora).count() == 1
    assert henry.get("/access/").status_code == 200


def test_a_user_without_grants_may_not_open_the_access_page(as_bob: Client) -> None:
    assert as_bob.get("/access/").status_code == 403
    assert as_bob.get("/access/add/").status_code == 403
    assert as_bob.post("/access/add/", {"scope": "site"}).status_code == 403
    assert not Grant.objects.exists()


def test_taking_a_grant_back_is_audited_and_ends_it(root: Client, lab: Host, dora: User) -> None:
    g = Grant.objects.create(
        user=dora, role=Role.objects.get(slug="viewer"), scope="host", host="lab"
    )
    assert root.post(f"/access/{g.pk}/delete/").status_code == 302
    assert not Grant.objects.exists()
    assert audit_entries().get(action="grant-delete").message.startswith("Viewer for dora")
