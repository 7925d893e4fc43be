"""ASGI entry point: Django for HTTP (bodies limited), Channels for WebSockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vmdash.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from people.language import ScopeLanguage  # noqa: E402
from people.tokens import TokenScope  # noqa: E402
from vmdash.bodylimit import BodyLimit, limit_daphne  # noqa: E402
from vmdash.door import SecondFactorGate  # noqa: E402
from vmdash.routing import websocket_urlpatterns  # noqa: E402

limit_daphne(settings.VMDASH_MAX_BODY)

application = ProtocolTypeRouter(
    {
        "http": BodyLimit(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                TokenScope(SecondFactorGate(ScopeLanguage(URLRouter(websocket_urlpatterns))))
            )
        ),
    }
)
