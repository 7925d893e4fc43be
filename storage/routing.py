"""WebSocket routes of the storage app; vmdash/routing.py includes them."""

from __future__ import annotations

from typing import Any

from django.urls import path

from storage.consumers import UploadConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/hosts/<slug:host>/storage/<str:name>/upload/", UploadConsumer.as_asgi()),
]
