"""WebSocket routes. Each consumer checks login and the access policy itself."""

from __future__ import annotations

from typing import Any

from django.urls import path

from vmdash.console.consumers import SerialConsumer
from vmdash.live.consumer import EventsConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/events/", EventsConsumer.as_asgi()),
    path("ws/hosts/<slug:host>/domains/<str:name>/serial/", SerialConsumer.as_asgi()),
]
