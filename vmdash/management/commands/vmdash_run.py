"""Serve vmdash: Daphne with the ASGI application (HTTP and WebSockets).

The VNC console proxy (`manage.py vmdash_console_proxy`) runs beside it as a
child process, started first and stopped on exit (also if this process dies:
the child gets SIGTERM from the kernel).
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from typing import Any

from daphne.cli import CommandLineInterface
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Command(BaseCommand):
    help = "Serve the dashboard with Daphne, and the console proxy beside it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-console-proxy",
            action="store_true",
            help="do not start the VNC console proxy (also: VMDASH_CONSOLE_PROXY=0)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        proxy = None
        if settings.VMDASH_CONSOLE_PROXY and not options["no_console_proxy"]:
            proxy = subprocess.Popen(
                [sys.executable, str(settings.BASE_DIR / "manage.py"), "vmdash_console_proxy"],
                preexec_fn=_die_with_parent,
            )
        self.stdout.write(f"vmdash: serving http://{host}:{port}/ (Ctrl+C stops)")
        argv = ["-b", host, "-p", str(port)]
        if settings.VMDASH_PROXY_HEADERS:  # only behind a reverse proxy that sets them
            argv.append("--proxy-headers")
        try:
            CommandLineInterface().run([*argv, "vmdash.asgi:application"])
        finally:
            if proxy is not None:
                proxy.terminate()
                try:
                    proxy.wait(10)
                except subprocess.TimeoutExpired:
                    proxy.kill()
