"""LDAP login through django-auth-ldap, configured by VMDASH_LDAP_* variables.

settings.py calls `ldap_settings()` only when VMDASH_LDAP_URI is set, and then
puts `Backend` between django-axes and Django's ModelBackend. A person found
in the directory with the right password logs in; a Django user is created on
the first login with an unusable local password, and at every login their
Django groups are set to their LDAP groups (mirrored by name), so a vmdash
grant given to a group reaches its LDAP members (docs/permissions.md).
Nothing here talks to the directory at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ldap
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django_auth_ldap.backend import LDAPBackend, ldap_error
from django_auth_ldap.config import (
    GroupOfNamesType,
    LDAPGroupType,
    LDAPSearch,
    NestedActiveDirectoryGroupType,
    PosixGroupType,
)

from vmdash.env import envbool, envint, envlist, envstr

# VMDASH_LDAP_GROUP_TYPE -> (django-auth-ldap group type, default group filter)
GROUP_TYPES: dict[str, tuple[type[LDAPGroupType], str]] = {
    "groupofnames": (GroupOfNamesType, "(objectClass=groupOfNames)"),
    "posixgroup": (PosixGroupType, "(objectClass=posixGroup)"),
    "activedirectory": (NestedActiveDirectoryGroupType, "(objectClass=group)"),
}
# Errors that mean "the directory did not answer", not "wrong password";
# CONNECT_ERROR is what libldap raises when the TLS handshake fails.
_DOWN = (ldap.SERVER_DOWN, ldap.TIMEOUT)
_NO_TLS = (ldap.CONNECT_ERROR,)
_SAID_SO = "_vmdash_ldap_down_said"


def ldap_settings() -> dict[str, Any]:
    """The AUTH_LDAP_* settings of django-auth-ldap, from VMDASH_LDAP_* variables."""
    user_filter = envstr("VMDASH_LDAP_USER_FILTER", "(uid=%(user)s)")
    if "%(user)s" not in user_filter:
        raise ImproperlyConfigured(
            f"VMDASH_LDAP_USER_FILTER={user_filter!r} must contain %(user)s, "
            "e.g. (uid=%(user)s) or (sAMAccountName=%(user)s)"
        )
    return {
        "AUTH_LDAP_SERVER_URI": _server_uri(),
        # Empty DN and password: bind anonymously to search.
        "AUTH_LDAP_BIND_DN": envstr("VMDASH_LDAP_BIND_DN"),
        "AUTH_LDAP_BIND_PASSWORD": envstr("VMDASH_LDAP_BIND_PASSWORD"),
        "AUTH_LDAP_USER_SEARCH": LDAPSearch(
            _required("VMDASH_LDAP_USER_SEARCH"), ldap.SCOPE_SUBTREE, user_filter
        ),
        "AUTH_LDAP_START_TLS": envbool("VMDASH_LDAP_START_TLS", False),
        "AUTH_LDAP_CONNECTION_OPTIONS": _connection_options(),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        # The directory is asked at every login: a removed member loses the group then.
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_CACHE_TIMEOUT": 0,
        **_group_settings(),
    }


def _required(name: str) -> str:
    value = envstr(name).strip()
    if not value:
        raise ImproperlyConfigured(f"{name} is needed with VMDASH_LDAP_URI (a base DN)")
    return value


def _server_uri() -> str:
    uri = envstr("VMDASH_LDAP_URI").strip()
    # libldap takes several URIs separated by spaces and tries them in turn.
    for one in uri.split():
        if not one.lower().startswith(("ldap://", "ldaps://")):
            raise ImproperlyConfigured(
                f"VMDASH_LDAP_URI={uri!r}: use ldap://host[:port] or ldaps://host[:port]"
            )
    return uri


def _connection_options() -> dict[int, Any]:
    seconds = envint("VMDASH_LDAP_TIMEOUT", 5)
    options: dict[int, Any] = {
        # Active Directory answers searches at the domain root with referrals
        # that libldap would follow anonymously; never follow them.
        ldap.OPT_REFERRALS: 0,
        # A silent directory must not hold the login form (and a worker) for minutes.
        ldap.OPT_NETWORK_TIMEOUT: seconds,
        ldap.OPT_TIMEOUT: seconds,
    }
    ca_file = envstr("VMDASH_LDAP_CA_FILE").strip()
    if ca_file:
        if not Path(ca_file).is_file():
            raise ImproperlyConfigured(f"VMDASH_LDAP_CA_FILE={ca_file!r} is not a file")
        options[ldap.OPT_X_TLS_CACERTFILE] = ca_file
        options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
        # Last (dicts keep their order): a new TLS context takes the options above.
        options[ldap.OPT_X_TLS_NEWCTX] = 0
    return options


def _group_settings() -> dict[str, Any]:
    base = envstr("VMDASH_LDAP_GROUP_SEARCH").strip()
    superusers = envstr("VMDASH_LDAP_SUPERUSER_GROUP").strip()
    required = envstr("VMDASH_LDAP_REQUIRE_GROUP").strip()
    if not base:
        if superusers or required:
            raise ImproperlyConfigured(
                "VMDASH_LDAP_SUPERUSER_GROUP and VMDASH_LDAP_REQUIRE_GROUP need "
                "VMDASH_LDAP_GROUP_SEARCH (the base DN of the groups)"
            )
        return {}
    kind = envstr("VMDASH_LDAP_GROUP_TYPE", "groupOfNames").strip().lower()
    if kind not in GROUP_TYPES:
        raise ImproperlyConfigured(
            f"VMDASH_LDAP_GROUP_TYPE={kind!r}: use groupOfNames, posixGroup or activeDirectory"
        )
    group_type, default_filter = GROUP_TYPES[kind]
    only = envlist("VMDASH_LDAP_MIRROR_GROUPS", [])
    found: dict[str, Any] = {
        "AUTH_LDAP_GROUP_SEARCH": LDAPSearch(
            base, ldap.SCOPE_SUBTREE, envstr("VMDASH_LDAP_GROUP_FILTER", default_filter)
        ),
        "AUTH_LDAP_GROUP_TYPE": group_type(name_attr="cn"),
        # True: the user's Django groups become exactly their LDAP groups; a
        # list: only those groups are managed, other memberships are left alone.
        "AUTH_LDAP_MIRROR_GROUPS": set(only) if only else True,
    }
    if superusers:
        # Both flags follow the group at every login: in and out.
        found["AUTH_LDAP_USER_FLAGS_BY_GROUP"] = {
            "is_superuser": superusers,
            "is_staff": superusers,
        }
    if required:
        found["AUTH_LDAP_REQUIRE_GROUP"] = required
    return found


class Backend(LDAPBackend):  # type: ignore[misc]
    """django-auth-ldap, except for accounts that have a local password.

    Without this, a directory entry named like a local account (say "admin")
    would log in as that account with the directory's password and overwrite
    its flags. A local account with a password keeps ModelBackend's check;
    one without a usable password (made by an earlier LDAP login, or by an
    admin for that purpose) is the directory's.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username and _has_local_password(username.strip()):
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def _has_local_password(username: str) -> bool:
    from django.contrib.auth import get_user_model

    # django-auth-ldap looks users up case-insensitively; so do we.
    user = get_user_model().objects.filter(username__iexact=username).first()
    return user is not None and user.has_usable_password()


@receiver(ldap_error)
def _directory_down(
    sender: Any, context: str, request: HttpRequest | None, exception: Exception, **kw: Any
) -> None:
    """Say on the login page that the directory did not answer (not "wrong password")."""
    if request is None or getattr(request, _SAID_SO, False):
        return
    if isinstance(exception, _DOWN):
        why = _("The directory server (LDAP) does not answer")
    elif isinstance(exception, _NO_TLS):
        why = _("The directory server (LDAP) could not be reached securely (TLS failed)")
    else:
        return
    setattr(request, _SAID_SO, True)
    messages.error(
        request,
        _(
            "%(why)s, so directory accounts cannot log in right now; local accounts "
            "still can. Try again in a moment, or tell your administrator."
        )
        % {"why": why},
        fail_silently=True,
    )
