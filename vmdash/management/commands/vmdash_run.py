"""Serve vmdash: Daphne with the ASGI application (HTTP and WebSockets)."""

from __future__ import annotations

from typing import Any

from daphne.cli import CommandLineInterface
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve the dashboard with Daphne."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        self.stdout.write(f"vmdash: serving http://{host}:{port}/ (Ctrl+C stops)")
        argv = ["-b", host, "-p", str(port)]
        if settings.VMDASH_PROXY_HEADERS:  # only behind a reverse proxy that sets them
            argv.append("--proxy-headers")
        CommandLineInterface().run([*argv, "vmdash.asgi:application"])
