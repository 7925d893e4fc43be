"""The built-in roles, and a site-wide Host admin grant for every staff account:
staff meant "may do everything" before grants existed."""

from django.db import migrations

VM_ADMIN = ["view", "operate", "console", "console-view", "change", "snapshot", "create", "delete"]
ROLES = [
    ("viewer", "Viewer", ["view"], False),
    ("console-user", "Console user", ["view", "console", "console-view"], False),
    ("operator", "Operator", ["view", "operate", "console", "console-view"], False),
    ("vm-admin", "VM admin", VM_ADMIN, False),
    (
        "host-admin",
        "Host admin",
        [*VM_ADMIN, "manage-storage", "manage-networks", "manage-hosts", "manage-access", "audit"],
        False,
    ),
    ("auditor", "Auditor", ["view", "audit"], False),
    ("no-access", "No access", [], True),
]


def forward(apps, schema_editor):
    Role = apps.get_model("access", "Role")
    Grant = apps.get_model("access", "Grant")
    User = apps.get_model("auth", "User")
    for slug, name, actions, deny in ROLES:
        Role.objects.update_or_create(
            slug=slug, defaults={"name": name, "actions": actions, "deny": deny, "builtin": True}
        )
    admin = Role.objects.get(slug="host-admin")
    for user in User.objects.filter(is_staff=True, is_superuser=False):
        Grant.objects.get_or_create(user=user, role=admin, scope="site", note="was staff")


class Migration(migrations.Migration):
    dependencies = [("access", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
