"""The built-in roles, kept present after every migrate (and every flush).

Migration 0002 made them once; a database flushed and set up again (tests
that need real transactions do that after each test, and Django's `flush`
command) would lose them, and every grant form and test persona with them.
post_migrate runs after both, so the roles are put back then; an admin's
own roles are left alone, and a built-in role's actions follow the code.
"""

from __future__ import annotations

from typing import Any

VM_ADMIN = ["view", "operate", "console", "console-view", "change", "snapshot", "create", "delete"]
HOST_ADMIN = [*VM_ADMIN, "manage-storage", "manage-networks", "manage-hosts", "manage-access",
              "audit"]  # fmt: skip
ROLES = [
    ("viewer", "Viewer", ["view"], False),
    ("console-user", "Console user", ["view", "console", "console-view"], False),
    ("operator", "Operator", ["view", "operate", "console", "console-view"], False),
    ("vm-admin", "VM admin", VM_ADMIN, False),
    ("host-admin", "Host admin", HOST_ADMIN, False),
    ("auditor", "Auditor", ["view", "audit"], False),
    ("no-access", "No access", [], True),
]


def ensure_builtin_roles(using: str = "default", **kwargs: Any) -> None:
    from vmdash.access.models import Role

    for slug, name, actions, deny in ROLES:
        Role.objects.using(using).update_or_create(
            slug=slug, defaults={"name": name, "actions": actions, "deny": deny, "builtin": True}
        )
