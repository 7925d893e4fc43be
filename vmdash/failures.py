"""What a person sees when vmdash itself cannot answer (Django's handler500).

A database that stopped answering mid-run (PostgreSQL restarted, its host
rebooting) is not a bug to log with a traceback and a "Server error": every
page needs the database for the login, so the page says which part does not
answer and that it comes back by itself, with 503 and Retry-After. Django
opens a new connection per request (vmdash/env.py: CONN_MAX_AGE 0), so the
first request after the database is back is served normally. Anything else
is Django's own 500 page (templates/500.html).
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.views import defaults

log = logging.getLogger(__name__)

DATABASE_DOWN = (OperationalError, InterfaceError)
RETRY_AFTER = "10"


def server_error(request: HttpRequest) -> HttpResponse:
    error = sys.exc_info()[1]
    if isinstance(error, DATABASE_DOWN):
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        log.error("the database does not answer: %s", first)
        # A template of its own: base.html would ask the session (the database).
        body = loader.render_to_string("503-database.html", request=None)
        return HttpResponse(body, status=503, headers={"Retry-After": RETRY_AFTER})
    return defaults.server_error(request)
