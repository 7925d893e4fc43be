from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "vmdash.console"
    label = "vmdash_console"
    verbose_name = "consoles"
    default_auto_field = "django.db.models.BigAutoField"
