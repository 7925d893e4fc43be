"""Run the VNC console proxy: websockify with vmdash's ticket plugin.

`manage.py vmdash_run` starts this as its own process; run it by hand (or
under systemd) when the web process runs elsewhere. It must share the
database with the web process: that is where tickets are issued and used.
"""

from __future__ import annotations

import logging
import multiprocessing
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections
from websockify.websocketproxy import WebSocketProxy

# Imported here, in the parent, so that websockify's forked children find
# them loaded: an import per connection would cost ~100 ms per console open.
from vmdash.console import proxy, rfb, sessions, tickets  # noqa: F401
from vmdash.console.models import ConsoleSession, ConsoleTicket
from vmdash.virt import consoles


class Command(BaseCommand):
    help = "Serve VNC consoles to browsers over WebSocket (websockify + console tickets)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host", default=None, help="listen address (VMDASH_CONSOLE_PROXY_HOST)"
        )
        parser.add_argument(
            "--port", type=int, default=None, help="listen port (VMDASH_CONSOLE_PROXY_PORT)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host = options["host"] or settings.VMDASH_CONSOLE_PROXY_HOST
        port = options["port"] or settings.VMDASH_CONSOLE_PROXY_PORT
        # websockify relies on fork: children inherit the set-up Django and the plugin.
        multiprocessing.set_start_method("fork", force=True)
        consoles.quiet_errors()
        logging.getLogger("websocket").setLevel(logging.INFO)
        closed = sessions.close_stale(ConsoleSession.Kind.GRAPHICAL, "console proxy restarted")
        if closed:
            self.stdout.write(f"vmdash: closed {closed} console session(s) left by an earlier run")
        ConsoleTicket.objects.exists()  # the ORM is warm before the first fork
        # No database connection may cross the fork: each child opens its own.
        connections.close_all()
        self.stdout.write(f"vmdash: console proxy on ws://{host}:{port}/ (Ctrl+C stops)")
        self.stdout.flush()
        server = WebSocketProxy(
            RequestHandlerClass=proxy.TicketProxyHandler,
            listen_host=host,
            listen_port=port,
            token_plugin=proxy.TicketPlugin(),
            heartbeat=int(sessions.HEARTBEAT.total_seconds()),
            # A PEM file here turns on wss:// directly; normally TLS ends at the reverse proxy.
            cert=str(settings.DATA_DIR / "console-proxy.pem"),
        )
        server.start_server()
