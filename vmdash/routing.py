"""WebSocket routes. Each consumer checks login and the access policy itself."""

from __future__ import annotations

from typing import Any

websocket_urlpatterns: list[Any] = []
