"""The real server (`manage.py vmdash_run`, as `make run` starts it) with VMDASH_LDAP_*
variables: settings.py puts the directory between axes and local accounts.

The host is libvirt's test driver, so no libvirtd is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TESTNODE_URI
from tests.ldap.conftest import PASSWORDS, Slapd, ldap_env
from tests.security.conftest import ADMIN, Browserless, query
from tests.servers import Vmdash, start_vmdash


@pytest.fixture
def vmdash_ldap(slapd: Slapd, tmp_path: Path) -> Iterator[Vmdash]:
    srv = start_vmdash(tmp_path / "vmdash", hosts=f"lab={TESTNODE_URI}", **ldap_env(slapd))
    try:
        yield srv
    finally:
        srv.stop()


def test_a_directory_account_and_a_local_one_log_in_to_the_real_server(
    vmdash_ldap: Vmdash,
) -> None:
    assert Browserless(vmdash_ldap).login("alice.ldap", PASSWORDS["alice.ldap"]) == 302
    assert Browserless(vmdash_ldap).login(*ADMIN) == 302
    groups = query(
        vmdash_ldap,
        "SELECT g.name FROM auth_group g JOIN auth_user_groups ug ON ug.group_id = g.id "
        "JOIN auth_user u ON u.id = ug.user_id WHERE u.username = 'alice.ldap'",
    )
    assert [g["name"] for g in groups] == ["vmdash-ops"]
    assert Browserless(vmdash_ldap).login("alice.ldap", "not-her-password") == 200


def test_the_real_login_page_says_when_the_directory_is_down(
    vmdash_ldap: Vmdash, slapd: Slapd
) -> None:
    slapd.stop()
    person = Browserless(vmdash_ldap)
    status, _headers, page = person.request(
        "/accounts/login/", {"username": "bob.ldap", "password": PASSWORDS["bob.ldap"]}
    )
    assert status == 200
    assert "The directory server (LDAP) does not answer" in page
    assert Browserless(vmdash_ldap).login(*ADMIN) == 302
