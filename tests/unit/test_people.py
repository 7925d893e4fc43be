"""Users and groups in the dashboard, and each person's own page with "What can I do?".

Personas: alice (superuser), bob (no grants), hank (Host admin on host lab
only: managing people needs the site), sam (Host admin on the whole site,
not a superuser: may manage people but not superusers).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from vmdash.access.models import Grant, Role
from vmdash.models import AuditEntry, Host

pytestmark = pytest.mark.django_db

WEB1 = "11111111-0000-4000-8000-000000000001"


def grant(role: str, **kw: object) -> Grant:
    return Grant.objects.create(role=Role.objects.get(slug=role), **kw)


def logged_in(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def trail(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action))


@pytest.fixture
def root(alice: User) -> Client:
    alice.is_superuser = True
    alice.save()
    return logged_in(alice)


@pytest.fixture
def hank(lab: Host) -> User:
    u = User.objects.create_user("hank", password="hank-pw-1")
    grant("host-admin", user=u, scope="host", host="lab")
    return u


@pytest.fixture
def sam(db: None) -> User:
    u = User.objects.create_user("sam", password="sam-pw-1")
    grant("host-admin", user=u, scope="site")
    return u


PAGES = ["/users/", "/users/add/", "/users/bob/", "/groups/"]
POSTS = [
    "/users/add/",
    "/users/bob/active/",
    "/users/bob/password/",
    "/users/bob/unlock/",
    "/users/bob/groups/",
    "/groups/add/",
]


@pytest.mark.parametrize("url", PAGES)
def test_a_superuser_opens_every_people_page(root: Client, bob: User, url: str) -> None:
    assert root.get(url).status_code == 200


@pytest.mark.parametrize("url", PAGES)
def test_a_user_without_grants_is_refused_every_people_page(as_bob: Client, url: str) -> None:
    assert as_bob.get(url).status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_a_host_admin_of_one_host_may_not_open_people_pages(hank: User, url: str) -> None:
    assert logged_in(hank).get(url).status_code == 403


@pytest.mark.parametrize("url", POSTS)
def test_a_host_admin_of_one_host_may_not_change_people(hank: User, bob: User, url: str) -> None:
    response = logged_in(hank).post(url, {"username": "new", "mode": "generate", "name": "g"})
    assert response.status_code == 403
    assert not User.objects.filter(username="new").exists()
    assert not Group.objects.exists()
    assert bob.groups.count() == 0 and User.objects.get(username="bob").is_active
    [denied] = AuditEntry.objects.filter(outcome="denied")
    assert denied.username == "hank" and url in denied.message


@pytest.mark.parametrize("url", POSTS)
def test_every_people_change_refuses_a_get(root: Client, bob: User, url: str) -> None:
    if url == "/users/add/":
        return  # its GET is the form
    assert root.get(url).status_code == 405


def test_the_user_list_shows_groups_grants_and_lockouts(root: Client, bob: User, lab: Host) -> None:
    ops = Group.objects.create(name="ops")
    bob.groups.add(ops)
    grant("viewer", user=bob, scope="host", host="lab")
    AccessAttempt.objects.create(
        username="bob", ip_address="10.0.0.9", user_agent="x", failures_since_start=10,
        get_data="", post_data="", http_accept="", path_info="/accounts/login/",
    )  # fmt: skip
    page = root.get("/users/").content.decode()
    row = page[page.index('href="/users/bob/"') :].split("</tr>")[0]
    assert "ops" in row and "locked out" in row and ">1<" in row


def test_a_superuser_creates_a_user_with_a_generated_password_shown_once(root: Client) -> None:
    ops = Group.objects.create(name="ops")
    response = root.post(
        "/users/add/", {"username": "dora", "mode": "generate", "groups": [ops.pk]}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    password = response.content.decode().split('<code id="password">')[1].split("</code>")[0]
    dora = User.objects.get(username="dora")
    assert dora.check_password(password) and list(dora.groups.all()) == [ops]
    [entry] = trail("user-create")
    assert (entry.username, entry.object_name, entry.outcome) == ("alice", "dora", "ok")
    assert password not in entry.message and "ops" in entry.message
    assert password not in root.get("/users/dora/").content.decode()


def test_a_typed_password_must_pass_djangos_validators(root: Client) -> None:
    weak = {"username": "dora", "mode": "set", "password1": "password", "password2": "password"}
    response = root.post("/users/add/", weak)
    assert response.status_code == 400
    assert "too common" in response.content.decode()
    assert not User.objects.filter(username="dora").exists()
    fine = {**weak, "password1": "lantern-orbit-93", "password2": "lantern-orbit-93"}
    assert root.post("/users/add/", fine)["Location"] == "/users/dora/"
    assert User.objects.get(username="dora").check_password("lantern-orbit-93")


def test_a_duplicate_user_name_is_refused_next_to_the_field(root: Client, bob: User) -> None:
    response = root.post("/users/add/", {"username": "Bob", "mode": "generate"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "There is already a user named Bob." in page and "has-error" in page
    assert not trail("user-create")


def test_only_a_superuser_may_make_a_superuser(sam: User, root: Client) -> None:
    logged_in(sam).post("/users/add/", {"username": "eve", "mode": "generate", "superuser": "on"})
    assert not User.objects.get(username="eve").is_superuser
    root.post("/users/add/", {"username": "eva", "mode": "generate", "superuser": "on"})
    assert User.objects.get(username="eva").is_superuser


def test_a_site_wide_access_manager_may_not_touch_a_superuser(sam: User, alice: User) -> None:
    alice.is_superuser = True
    alice.save()
    c = logged_in(sam)
    for action in ("active", "password", "unlock", "groups"):
        assert c.post(f"/users/alice/{action}/", {"mode": "generate"}).status_code == 403
    alice.refresh_from_db()
    assert alice.is_active and alice.check_password("alice-pw-1")


def test_a_user_is_deactivated_and_activated_again(root: Client, bob: User) -> None:
    assert root.post("/users/bob/active/")["Location"] == "/users/bob/"
    assert not User.objects.get(username="bob").is_active
    root.post("/users/bob/active/")
    assert User.objects.get(username="bob").is_active
    assert [e.object_name for e in trail("user-deactivate") + trail("user-activate")] == [
        "bob",
        "bob",
    ]


def test_nobody_deactivates_themselves(root: Client, alice: User) -> None:
    response = root.post("/users/alice/active/", follow=True)
    assert "You cannot deactivate yourself." in response.content.decode()
    assert User.objects.get(username="alice").is_active
    assert not trail("user-deactivate")


def test_the_last_active_superuser_stays_one(root: Client, alice: User) -> None:
    response = root.post("/users/alice/superuser/", follow=True)
    assert "alice is the last active superuser." in response.content.decode()
    assert User.objects.get(username="alice").is_superuser
    User.objects.create_superuser("root2", password="root2-pw-1")
    root.post("/users/root2/superuser/")  # another one remains: fine
    assert not User.objects.get(username="root2").is_superuser
    [entry] = trail("user-superuser")
    assert (entry.object_name, entry.message) == ("root2", "off")


def test_the_last_active_superuser_is_not_deactivated(root: Client, alice: User) -> None:
    """Deactivating a superuser needs a superuser, so another one is left; checked all the same."""
    User.objects.create_superuser("root2", password="root2-pw-1")
    root.post("/users/root2/active/")
    assert not User.objects.get(username="root2").is_active
    User.objects.filter(username="alice").update(is_superuser=False)  # only root2, inactive
    User.objects.filter(username="root2").update(is_active=True)
    User.objects.filter(username="alice").update(is_superuser=True)
    root.post("/users/root2/active/")
    assert not User.objects.get(username="root2").is_active  # alice remains: allowed


def test_only_a_superuser_makes_superusers(sam: User, bob: User) -> None:
    assert logged_in(sam).post("/users/bob/superuser/").status_code == 403
    assert not User.objects.get(username="bob").is_superuser


def test_an_admin_resets_a_password_and_it_is_shown_once(root: Client, bob: User) -> None:
    response = root.post("/users/bob/password/", {"mode": "generate"})
    password = response.content.decode().split('<code id="password">')[1].split("</code>")[0]
    bob.refresh_from_db()
    assert bob.check_password(password) and not bob.check_password("bob-pw-1")
    [entry] = trail("user-password")
    assert password not in entry.message and entry.object_name == "bob"


def test_a_weak_reset_password_is_refused_next_to_the_field(root: Client, bob: User) -> None:
    response = root.post(
        "/users/bob/password/", {"mode": "set", "password1": "bob", "password2": "bob"}
    )
    assert response.status_code == 400
    assert "too short" in response.content.decode()
    assert User.objects.get(username="bob").check_password("bob-pw-1")
    differ = {"mode": "set", "password1": "lantern-orbit-93", "password2": "lantern-orbit-94"}
    assert "The two passwords differ." in root.post("/users/bob/password/", differ).content.decode()


def test_unlocking_forgets_the_failed_logins_of_that_name(root: Client, bob: User) -> None:
    AccessAttempt.objects.create(
        username="bob", ip_address="10.0.0.9", user_agent="x", failures_since_start=10,
        get_data="", post_data="", http_accept="", path_info="/accounts/login/",
    )  # fmt: skip
    assert "locked out" in root.get("/users/bob/").content.decode()
    root.post("/users/bob/unlock/")
    assert not AccessAttempt.objects.filter(username="bob").exists()
    assert "locked out" not in root.get("/users/bob/").content.decode()
    [entry] = trail("user-unlock")
    assert entry.object_name == "bob" and entry.message.startswith("1 ")


def test_a_locked_out_user_logs_in_after_an_unlock(
    root: Client, bob: User, settings: object
) -> None:
    c = Client()
    for i in range(10):
        c.post("/accounts/login/", {"username": "bob", "password": f"guess-{i}"})
    assert (
        c.post("/accounts/login/", {"username": "bob", "password": "bob-pw-1"}).status_code == 429
    )
    root.post("/users/bob/unlock/")
    assert (
        c.post("/accounts/login/", {"username": "bob", "password": "bob-pw-1"}).status_code == 302
    )


def test_group_membership_is_set_on_the_users_page(root: Client, bob: User) -> None:
    ops, web = Group.objects.create(name="ops"), Group.objects.create(name="web")
    bob.groups.add(ops)
    root.post("/users/bob/groups/", {"groups": [web.pk]})
    assert list(bob.groups.all()) == [web]
    [entry] = trail("user-groups")
    assert entry.message == "ops → web"


def test_the_users_page_shows_their_grants_and_recent_activity(
    root: Client, bob: User, lab: Host
) -> None:
    ops = Group.objects.create(name="ops")
    bob.groups.add(ops)
    grant("operator", group=ops, scope="host", host="lab")
    grant("viewer", user=bob, scope="vm", host="lab", object_uuid=WEB1, object_name="web1")
    logged_in(bob).post("/hosts/lab/domains/web1/start/")  # refused: on record as denied
    page = root.get("/users/bob/").content.decode()
    assert "Host lab and everything on it" in page and "group ops" in page
    assert "VM web1 on lab" in page and "Viewer" in page
    assert "start, stop and pause" in page
    assert ">start<" in page  # the refused start, in bob's recent activity


def test_a_group_is_created_renamed_given_members_and_deleted(root: Client, bob: User) -> None:
    response = root.post("/groups/add/", {"name": "ops"})
    group = Group.objects.get(name="ops")
    assert response["Location"] == f"/groups/{group.pk}/"
    root.post(f"/groups/{group.pk}/rename/", {"name": "operators"})
    root.post(f"/groups/{group.pk}/members/", {"members": [bob.pk]})
    assert [g.name for g in bob.groups.all()] == ["operators"]
    grant("viewer", group=group, scope="site")
    assert "The whole site" in root.get(f"/groups/{group.pk}/").content.decode()
    root.post(f"/groups/{group.pk}/delete/")
    assert not Group.objects.exists() and not Grant.objects.exists()
    actions = [(e.action, e.object_name) for e in AuditEntry.objects.filter(object_type="group")]
    assert sorted(actions) == [
        ("group-create", "ops"),
        ("group-delete", "operators"),
        ("group-members", "operators"),
        ("group-rename", "operators"),
    ]


def test_a_duplicate_or_empty_group_name_is_refused(root: Client) -> None:
    Group.objects.create(name="ops")
    for name, says in (("OPS", "There is already a group named OPS."), (" ", "required")):
        response = root.post("/groups/add/", {"name": name})
        assert response.status_code == 400 and says in response.content.decode()
    web = Group.objects.create(name="web")
    response = root.post(f"/groups/{web.pk}/rename/", {"name": "ops"})
    assert response.status_code == 400 and "already a group" in response.content.decode()
    assert Group.objects.get(pk=web.pk).name == "web"


def test_a_user_named_like_a_page_is_refused(root: Client) -> None:
    response = root.post("/users/add/", {"username": "add", "mode": "generate"})
    assert response.status_code == 400 and not User.objects.filter(username="add").exists()


def test_everyone_sees_their_own_page_with_what_they_can_do(bob: User, lab: Host) -> None:
    ops = Group.objects.create(name="ops")
    bob.groups.add(ops)
    grant("operator", group=ops, scope="host", host="lab")
    soon = timezone.now() + timedelta(days=2)
    grant("console-user", user=bob, scope="vm", host="lab", object_uuid=WEB1,
          object_name="web1", expires_at=soon)  # fmt: skip
    grant("viewer", user=bob, scope="site", expires_at=timezone.now() - timedelta(hours=1))
    page = logged_in(bob).get("/me/").content.decode()
    assert "What can I do?" in page
    assert "Host lab and everything on it" in page and "group ops" in page
    assert "start, stop and pause" in page and "use the console" in page
    local = timezone.localtime(soon)
    assert f"until {local:%a %H:%M}" in page
    assert "ended" in page  # the site-wide Viewer grant that ran out


def test_a_person_without_grants_is_told_so_on_their_page(as_bob: Client) -> None:
    assert "You have no grants yet" in as_bob.get("/me/").content.decode()


def test_a_person_changes_their_password_and_stays_logged_in(as_bob: Client, bob: User) -> None:
    new = "lantern-orbit-93"
    form = {"old_password": "bob-pw-1", "new_password1": new, "new_password2": new}
    assert as_bob.post("/me/password/", form)["Location"] == "/me/"
    bob.refresh_from_db()
    assert bob.check_password(new)
    assert as_bob.get("/me/").status_code == 200  # this session holds
    [entry] = trail("password-change")
    assert entry.username == "bob" and new not in entry.message


def test_a_wrong_old_password_is_refused_next_to_the_field(as_bob: Client, bob: User) -> None:
    form = {"old_password": "nope", "new_password1": "x-y-z-w-1", "new_password2": "x-y-z-w-1"}
    response = as_bob.post("/me/password/", form)
    assert response.status_code == 400
    assert "Your old password was entered incorrectly" in response.content.decode()
    assert User.objects.get(username="bob").check_password("bob-pw-1")


def test_a_name_with_a_nul_is_a_404(root: Client) -> None:
    assert root.get("/users/bo%00b/").status_code == 404
