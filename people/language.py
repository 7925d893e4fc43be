"""The language of a WebSocket: what LocaleMiddleware picks for a page.

Live regions and toasts are rendered in the consumer, outside Django's
request cycle, so LocaleMiddleware never runs for them: without this a
Russian page would get its live updates in English. The language is read
from the same places, in the same order: the cookie set by the switch on
/me/ (django.views.i18n.set_language), then Accept-Language.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import trans_real


def scope_language(scope: dict[str, Any]) -> str:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    cookie = SimpleCookie(headers.get("cookie", "")).get(settings.LANGUAGE_COOKIE_NAME)
    if cookie is not None:
        try:
            return translation.get_supported_language_variant(cookie.value)
        except LookupError:
            pass
    for code, _q in trans_real.parse_accept_lang_header(headers.get("accept-language", "")):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


class ScopeLanguage:
    """ASGI middleware: the socket's whole life runs in its page's language
    (tasks it spawns and sync_to_async calls inherit it as a context var)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        with translation.override(scope_language(scope)):
            return await self.inner(scope, receive, send)
