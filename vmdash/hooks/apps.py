from django.apps import AppConfig


class HooksConfig(AppConfig):
    name = "vmdash.hooks"
    label = "hooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"
