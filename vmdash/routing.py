"""WebSocket routes: the core's, then each app's `routing.websocket_urlpatterns`.

Apps are found through INSTALLED_APPS (as their live regions are), so the
core names none of them. Each consumer checks login and asks the door itself.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any

from django.apps import apps
from django.urls import path

from vmdash.console.consumers import SerialConsumer
from vmdash.live.consumer import EventsConsumer


def _app_routes() -> list[Any]:
    found: list[Any] = []
    for config in apps.get_app_configs():
        module = f"{config.name}.routing"
        if config.name != "vmdash" and find_spec(module) is not None:
            found += getattr(import_module(module), "websocket_urlpatterns", [])
    return found


websocket_urlpatterns: list[Any] = [
    path("ws/events/", EventsConsumer.as_asgi()),
    path("ws/hosts/<slug:host>/domains/<str:name>/serial/", SerialConsumer.as_asgi()),
    *_app_routes(),
]
