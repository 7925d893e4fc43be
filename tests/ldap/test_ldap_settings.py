"""VMDASH_LDAP_* variables become django-auth-ldap's settings, or a loud error."""

from __future__ import annotations

import os
from pathlib import Path

import ldap
import pytest
from django.core.exceptions import ImproperlyConfigured
from django_auth_ldap.config import GroupOfNamesType, NestedActiveDirectoryGroupType

from tests.servers import manage
from vmdash.ldap import ldap_settings

BASE = {
    "VMDASH_LDAP_URI": "ldap://ldap.example.org",
    "VMDASH_LDAP_USER_SEARCH": "ou=people,dc=example,dc=org",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [n for n in os.environ if n.startswith("VMDASH_LDAP_")]:
        monkeypatch.delenv(name)
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_settings_put_the_directory_between_axes_and_local_accounts(tmp_path: Path) -> None:
    environ = {**os.environ, **BASE, "VMDASH_DATA_DIR": str(tmp_path)}
    code = "from django.conf import settings; print(settings.AUTHENTICATION_BACKENDS)"
    printed = manage(environ, "shell", "-c", code).strip().splitlines()[-1]
    assert printed == str(
        [
            "axes.backends.AxesStandaloneBackend",
            "vmdash.ldap.Backend",
            "django.contrib.auth.backends.ModelBackend",
        ]
    )


def test_without_an_ldap_uri_only_local_accounts_log_in(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VMDASH_LDAP_")}
    environ["VMDASH_DATA_DIR"] = str(tmp_path)
    code = "from django.conf import settings; print(settings.AUTHENTICATION_BACKENDS)"
    printed = manage(environ, "shell", "-c", code).strip().splitlines()[-1]
    assert "vmdash.ldap.Backend" not in printed


def test_the_defaults_search_by_uid_with_no_groups(env: pytest.MonkeyPatch) -> None:
    found = ldap_settings()
    assert found["AUTH_LDAP_USER_SEARCH"].filterstr == "(uid=%(user)s)"
    assert found["AUTH_LDAP_BIND_DN"] == "" and not found["AUTH_LDAP_START_TLS"]
    assert "AUTH_LDAP_GROUP_SEARCH" not in found
    assert found["AUTH_LDAP_CONNECTION_OPTIONS"][ldap.OPT_NETWORK_TIMEOUT] == 5


def test_groups_are_group_of_names_and_mirrored_by_default(env: pytest.MonkeyPatch) -> None:
    env.setenv("VMDASH_LDAP_GROUP_SEARCH", "ou=groups,dc=example,dc=org")
    found = ldap_settings()
    assert isinstance(found["AUTH_LDAP_GROUP_TYPE"], GroupOfNamesType)
    assert found["AUTH_LDAP_GROUP_SEARCH"].filterstr == "(objectClass=groupOfNames)"
    assert found["AUTH_LDAP_MIRROR_GROUPS"] is True


def test_active_directory_groups_are_nested_groups(env: pytest.MonkeyPatch) -> None:
    env.setenv("VMDASH_LDAP_GROUP_SEARCH", "dc=corp,dc=example,dc=org")
    env.setenv("VMDASH_LDAP_GROUP_TYPE", "activeDirectory")
    found = ldap_settings()
    assert isinstance(found["AUTH_LDAP_GROUP_TYPE"], NestedActiveDirectoryGroupType)
    assert found["AUTH_LDAP_GROUP_SEARCH"].filterstr == "(objectClass=group)"


def test_a_ca_file_is_demanded_for_tls(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    env.setenv("VMDASH_LDAP_CA_FILE", str(ca))
    env.setenv("VMDASH_LDAP_START_TLS", "1")
    found = ldap_settings()
    options = found["AUTH_LDAP_CONNECTION_OPTIONS"]
    assert options[ldap.OPT_X_TLS_CACERTFILE] == str(ca)
    assert options[ldap.OPT_X_TLS_REQUIRE_CERT] == ldap.OPT_X_TLS_DEMAND
    assert list(options)[-1] == ldap.OPT_X_TLS_NEWCTX  # after the TLS options it applies
    assert found["AUTH_LDAP_START_TLS"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VMDASH_LDAP_URI", "http://ldap.example.org"),
        ("VMDASH_LDAP_USER_SEARCH", ""),
        ("VMDASH_LDAP_USER_FILTER", "(uid=alice)"),
        ("VMDASH_LDAP_CA_FILE", "/nonexistent/ca.pem"),
        ("VMDASH_LDAP_START_TLS", "maybe"),
        ("VMDASH_LDAP_SUPERUSER_GROUP", "cn=admins,dc=example,dc=org"),
        ("VMDASH_LDAP_TIMEOUT", "soon"),
    ],
)
def test_it_refuses_a_setting_it_cannot_use(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        ldap_settings()


def test_it_refuses_an_unknown_group_type(env: pytest.MonkeyPatch) -> None:
    env.setenv("VMDASH_LDAP_GROUP_SEARCH", "ou=groups,dc=example,dc=org")
    env.setenv("VMDASH_LDAP_GROUP_TYPE", "groupOfUniqueNames")
    with pytest.raises(ImproperlyConfigured, match="VMDASH_LDAP_GROUP_TYPE"):
        ldap_settings()
