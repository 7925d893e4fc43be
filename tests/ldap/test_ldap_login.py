"""Logging in with a directory account: a real slapd, the real login form.

The directory (tests/ldap/conftest.py) has alice.ldap in vmdash-ops and
bob.ldap in vmdash-admins (the superuser group). Pages are asked through the
Django test client on libvirt's test driver (`lab`: web1 running, db shut off).
"""

from __future__ import annotations

import time
from pathlib import Path

import ldap
import pytest
from django.contrib.auth.models import Group, User
from django.http import HttpResponse
from django.test import Client

from tests.ldap.conftest import (
    GROUPS,
    PASSWORDS,
    PEOPLE,
    POSIX_GROUPS,
    Configure,
    Slapd,
    make_ca_and_server_cert,
)
from vmdash.access.models import Grant, Role
from vmdash.models import AuditEntry, Host

pytestmark = pytest.mark.django_db

ALICE = "alice.ldap"
BOB = "bob.ldap"


def log_in(c: Client, username: str, password: str) -> HttpResponse:
    return c.post("/accounts/login/", {"username": username, "password": password})


def logged_in(username: str, password: str | None = None) -> Client:
    c = Client()
    answer = log_in(c, username, password or PASSWORDS[username])
    assert answer.status_code == 302, answer.content.decode()
    return c


def ops_may_operate_lab() -> None:
    ops, _ = Group.objects.get_or_create(name="vmdash-ops")
    Grant.objects.create(
        role=Role.objects.get(slug="operator"), group=ops, scope="host", host="lab"
    )


def take_out_of_group(slapd: Slapd, uid: str, group: str) -> None:
    slapd.admin().modify_s(
        f"cn={group},{GROUPS}", [(ldap.MOD_DELETE, "member", [f"uid={uid},{PEOPLE}".encode()])]
    )


def test_alice_logs_in_with_her_directory_password_and_gets_her_groups(
    ldap_login: Slapd,
) -> None:
    c = Client()
    answer = log_in(c, ALICE, PASSWORDS[ALICE])
    assert answer.status_code == 302 and answer["Location"] == "/"
    assert c.get("/").status_code == 200
    alice = User.objects.get(username=ALICE)
    assert (alice.first_name, alice.last_name, alice.email) == (
        "Alice",
        "Ldap",
        f"{ALICE}@vmdash.test",
    )
    assert not alice.has_usable_password()  # the directory holds her password, not vmdash
    assert set(alice.groups.values_list("name", flat=True)) == {"vmdash-ops"}
    assert not alice.is_superuser and not alice.is_staff
    login = AuditEntry.objects.get(action="login", object_name=ALICE)
    assert (login.outcome, login.user_id) == ("ok", alice.pk)


def test_a_grant_to_her_ldap_group_lets_her_see_and_operate_the_hosts_vms(
    ldap_login: Slapd, lab: Host
) -> None:
    ops_may_operate_lab()
    c = logged_in(ALICE)
    assert c.get("/hosts/lab/domains/web1/").status_code == 200
    assert ">db<" in c.get("/domains/").content.decode()
    assert c.post("/hosts/lab/domains/db/start/", HTTP_HX_REQUEST="true").status_code == 200
    assert c.post("/hosts/lab/domains/db/delete/", {"confirm": "db"}).status_code == 403
    assert c.get("/audit/").status_code == 403


def test_without_a_grant_her_group_gives_her_nothing(ldap_login: Slapd, lab: Host) -> None:
    c = logged_in(ALICE)
    assert c.get("/hosts/lab/domains/web1/").status_code == 404
    assert c.post("/hosts/lab/domains/db/start/").status_code == 404


def test_a_wrong_directory_password_fails_and_is_on_record(ldap_login: Slapd) -> None:
    c = Client()
    answer = log_in(c, ALICE, "not-her-password")
    assert answer.status_code == 200
    assert "Wrong user name or password." in answer.content.decode()
    assert c.get("/").status_code == 302
    assert not User.objects.filter(username=ALICE).exists()
    failure = AuditEntry.objects.get(action="login", object_name=ALICE)
    assert failure.outcome == "denied" and failure.user_id is None


def test_someone_taken_out_of_the_group_loses_its_grant_at_the_next_login(
    ldap_login: Slapd, lab: Host
) -> None:
    ops_may_operate_lab()
    first = logged_in(ALICE)
    assert first.get("/hosts/lab/domains/web1/").status_code == 200
    take_out_of_group(ldap_login, ALICE, "vmdash-ops")
    again = logged_in(ALICE)
    assert not User.objects.get(username=ALICE).groups.exists()
    assert again.get("/hosts/lab/domains/web1/").status_code == 404
    assert again.post("/hosts/lab/domains/db/start/").status_code == 404


def test_someone_whose_entry_is_gone_cannot_log_in(ldap_login: Slapd) -> None:
    logged_in(ALICE)
    ldap_login.admin().delete_s(f"uid={ALICE},{PEOPLE}")
    c = Client()
    assert log_in(c, ALICE, PASSWORDS[ALICE]).status_code == 200
    assert c.get("/").status_code == 302
    # The Django user stays (grants and audit refer to it) but has no password of its own.
    assert not User.objects.get(username=ALICE).has_usable_password()


def test_members_of_the_superuser_group_are_superusers_while_they_are_members(
    ldap_login: Slapd, lab: Host
) -> None:
    c = logged_in(BOB)
    bob = User.objects.get(username=BOB)
    assert bob.is_superuser and bob.is_staff
    assert c.get("/audit/").status_code == 200
    assert c.get("/hosts/lab/domains/db/").status_code == 200
    take_out_of_group(ldap_login, BOB, "vmdash-admins")
    again = logged_in(BOB)
    bob.refresh_from_db()
    assert not bob.is_superuser and not bob.is_staff
    assert again.get("/hosts/lab/domains/db/").status_code == 404


def test_when_the_directory_is_down_the_login_page_says_so_and_local_accounts_still_log_in(
    ldap_login: Slapd, alice: User
) -> None:
    ldap_login.stop()
    c = Client()
    started = time.monotonic()
    answer = log_in(c, ALICE, PASSWORDS[ALICE])
    assert time.monotonic() - started < 5
    page = answer.content.decode()
    assert answer.status_code == 200
    assert "The directory server (LDAP) does not answer" in page
    assert "local accounts still can" in page
    assert log_in(Client(), "alice", "alice-pw-1").status_code == 302  # the local alice


def test_a_wrong_password_does_not_say_the_directory_is_down(ldap_login: Slapd) -> None:
    page = log_in(Client(), ALICE, "not-her-password").content.decode()
    assert "does not answer" not in page


def test_ten_wrong_passwords_lock_the_directory_account(ldap_login: Slapd) -> None:
    c = Client()
    answers = [log_in(c, ALICE, f"guess-{i}").status_code for i in range(10)]
    assert answers[:9] == [200] * 9
    assert log_in(c, ALICE, PASSWORDS[ALICE]).status_code == 429
    assert log_in(Client(), ALICE, PASSWORDS[ALICE]).status_code == 429
    assert not User.objects.filter(username=ALICE).exists()  # the directory was not asked
    denied = AuditEntry.objects.filter(action="login", object_name=ALICE, outcome="denied")
    assert denied.count() >= 10


def test_a_local_account_named_like_a_directory_entry_keeps_its_own_password(
    ldap_login: Slapd,
) -> None:
    local = User.objects.create_user(ALICE, password="local-pw-1")
    assert log_in(Client(), ALICE, PASSWORDS[ALICE]).status_code == 200
    logged_in(ALICE, "local-pw-1")
    local.refresh_from_db()
    assert local.first_name == "" and not local.groups.exists()


def test_a_local_account_still_logs_in_beside_the_directory(ldap_login: Slapd, alice: User) -> None:
    assert logged_in("alice", "alice-pw-1").get("/").status_code == 200


def test_an_anonymous_search_finds_the_user_too(configure: Configure) -> None:
    configure(VMDASH_LDAP_BIND_DN="", VMDASH_LDAP_BIND_PASSWORD="")
    logged_in(ALICE)
    assert User.objects.get(username=ALICE).groups.filter(name="vmdash-ops").exists()


def test_posix_groups_are_mirrored_by_member_uid(configure: Configure) -> None:
    configure(
        VMDASH_LDAP_GROUP_SEARCH=POSIX_GROUPS,
        VMDASH_LDAP_GROUP_TYPE="posixGroup",
        VMDASH_LDAP_SUPERUSER_GROUP="",
    )
    logged_in(ALICE)
    names = set(User.objects.get(username=ALICE).groups.values_list("name", flat=True))
    assert names == {"vmdash-posix-ops"}


def test_only_the_listed_groups_are_mirrored_and_local_ones_stay(configure: Configure) -> None:
    configure(VMDASH_LDAP_MIRROR_GROUPS="vmdash-admins")
    logged_in(ALICE)
    alice = User.objects.get(username=ALICE)
    assert not alice.groups.exists()  # vmdash-ops is not on the list
    alice.groups.add(Group.objects.create(name="auditors"))
    logged_in(ALICE)
    assert set(alice.groups.values_list("name", flat=True)) == {"auditors"}


def test_a_required_group_keeps_everyone_else_out(configure: Configure) -> None:
    configure(VMDASH_LDAP_REQUIRE_GROUP=f"cn=vmdash-admins,{GROUPS}")
    assert log_in(Client(), ALICE, PASSWORDS[ALICE]).status_code == 200
    logged_in(BOB)


@pytest.mark.parametrize("slapd", ["tls"], indirect=True)
def test_start_tls_checks_the_directory_certificate_against_the_ca_file(
    slapd: Slapd, configure: Configure, tmp_path: Path
) -> None:
    configure(VMDASH_LDAP_START_TLS="1", VMDASH_LDAP_CA_FILE=str(tmp_path / "ca.pem"))
    logged_in(ALICE)


@pytest.mark.parametrize("slapd", ["tls"], indirect=True)
def test_start_tls_refuses_a_directory_certificate_of_another_ca(
    slapd: Slapd, configure: Configure, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    other_ca, _cert, _key = make_ca_and_server_cert(other)
    configure(VMDASH_LDAP_START_TLS="1", VMDASH_LDAP_CA_FILE=str(other_ca))
    answer = log_in(Client(), ALICE, PASSWORDS[ALICE])
    assert answer.status_code == 200
    assert "could not be reached securely (TLS failed)" in answer.content.decode()
    assert not User.objects.filter(username=ALICE).exists()
