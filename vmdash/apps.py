from django.apps import AppConfig


class VmdashConfig(AppConfig):
    name = "vmdash"
    verbose_name = "vmdash"
