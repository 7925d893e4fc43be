"""Run the VNC console proxy: websockify (the relay) and vmdash's ticket desk.

`manage.py vmdash_run` starts this as its own process; run it by hand (or
under systemd) when the web process runs elsewhere. It must share the
database with the web process: that is where tickets are issued and used.

Two processes: this one (Django: the ticket desk, see console/desk.py) and
its child, the relay (plain websockify with our token plugin, see
console/relay.py), which forks per browser connection and asks the desk
about each ticket over a Unix socket in the data directory.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from vmdash.console import sessions
from vmdash.console.desk import Desk
from vmdash.management.commands.vmdash_run import die_with_parent
from vmdash.startcheck import database_answers
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
        consoles.quiet_errors()
        database_answers()  # tickets and console sessions are rows
        closed = sessions.close_dead()  # sessions of a proxy or web process that was killed
        if closed:
            self.stdout.write(f"vmdash: closed {closed} console session(s) left by an earlier run")
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        desk = Desk(str(settings.DATA_DIR / f"console-desk-{port}.sock"))
        cert = settings.DATA_DIR / "console-proxy.pem"  # present: the relay serves wss:// too
        relay = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vmdash.console.relay",
                "--listen",
                host,
                "--port",
                str(port),
                "--desk",
                desk.path,
                *(["--cert", str(cert)] if cert.exists() else []),
            ],
            cwd=settings.BASE_DIR,
            preexec_fn=die_with_parent,
        )
        stopping = False

        def stop(_signum: int, _frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"vmdash: console proxy on ws://{host}:{port}/ (Ctrl+C stops)")
        self.stdout.flush()
        try:
            desk.serve(lambda: not stopping and relay.poll() is None)
        finally:
            if relay.poll() is None:
                relay.terminate()
                try:
                    relay.wait(10)
                except subprocess.TimeoutExpired:
                    relay.kill()
            desk.close()
        if relay.returncode not in (0, -signal.SIGTERM) and not stopping:
            raise SystemExit(f"vmdash: the console relay exited ({relay.returncode})")
