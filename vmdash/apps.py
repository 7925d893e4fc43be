from django.apps import AppConfig


class VmdashConfig(AppConfig):
    name = "vmdash"
    verbose_name = "vmdash"

    def ready(self) -> None:
        from vmdash import revoke, signals  # noqa: F401  (they connect receivers)
