from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "vmdash.access"
    label = "access"
    verbose_name = "Access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from vmdash.access import signals  # noqa: F401  (grant changes reach open connections)
