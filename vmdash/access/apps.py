from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "vmdash.access"
    label = "access"
    verbose_name = "Access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from vmdash.access import signals  # noqa: F401  (grant changes reach open connections)
        from vmdash.access.builtin import ensure_builtin_roles

        post_migrate.connect(ensure_builtin_roles, sender=self, dispatch_uid="vmdash-builtin-roles")
