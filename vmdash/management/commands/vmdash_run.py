"""Serve vmdash: Daphne with the ASGI application (HTTP and WebSockets).

The VNC console proxy (`manage.py vmdash_console_proxy`) runs beside it as a
child process, started first and stopped on exit (also if this process dies:
the child gets SIGTERM from the kernel). If the proxy exits on its own it is
started again, after 1 s, 2 s, 4 s ... at most 30 s (back to 1 s once it ran
a minute), so that consoles come back without anybody restarting vmdash.

Live events (docs/live-events.md): in the embedded mode (no REDIS_URL) the
events service runs inside Daphne, started by the first WebSocket. In the
external mode (REDIS_URL) this command starts `manage.py vmdash_events`
beside Daphne the same way; only one of those publishes per Redis (a lock),
so every web process may start one; `--no-events` starts none.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from daphne.cli import CommandLineInterface
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

_PR_SET_PDEATHSIG = 1
BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET = 1.0, 30.0, 60.0  # seconds


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when its parent dies (Linux prctl)."""
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
        parser.add_argument(
            "--no-events",
            action="store_true",
            help="with REDIS_URL: do not start `manage.py vmdash_events` (one runs elsewhere)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        from vmdash.console.sessions import close_dead
        from vmdash.startcheck import services_answer

        services_answer()  # PostgreSQL/Redis down: one line naming the variable, then exit

        close_dead()  # consoles of an earlier run of this server that was killed
        children: list[Any] = []
        if settings.VMDASH_CONSOLE_PROXY and not options["no_console_proxy"]:
            children.append(Supervised("vmdash_console_proxy", "console proxy", self._say))
        if settings.VMDASH_EVENTS == "external" and not options["no_events"]:
            children.append(_child("vmdash_events"))
        self.stdout.write(f"vmdash: live events {_events_mode(options['no_events'])}")
        self.stdout.write(f"vmdash: serving http://{host}:{port}/ (Ctrl+C stops)")
        if (
            settings.VMDASH_CONSOLE_PROXY
            and not options["no_console_proxy"]
            and host not in ("127.0.0.1", "localhost", "::1")
            and settings.VMDASH_CONSOLE_PROXY_HOST in ("127.0.0.1", "localhost", "::1")
            and not settings.VMDASH_CONSOLE_PUBLIC_URL
        ):
            self.stdout.write(
                "vmdash: the console proxy listens on loopback only, so browsers on other "
                "machines cannot open consoles: set VMDASH_CONSOLE_PROXY_HOST, or put both "
                "behind one reverse proxy (docs/consoles.md)"
            )
        if settings.VMDASH_EVENTS == "embedded":
            _start_events_with_the_server()
        argv = ["-b", host, "-p", str(port)]
        if settings.VMDASH_PROXY_HEADERS:  # only behind a reverse proxy that sets them
            argv.append("--proxy-headers")
        try:
            CommandLineInterface().run([*argv, "vmdash.asgi:application"])
        finally:
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
        _exit_now()

    def _say(self, line: str) -> None:
        self.stdout.write(f"vmdash: {line}")
        self.stdout.flush()


class Supervised:
    """A child command kept running: started again with backoff when it exits.

    Has the three methods of Popen that handle()'s clean-up uses.
    """

    def __init__(self, command: str, label: str, say: Callable[[str], None]) -> None:
        self.command, self.label, self.say = command, label, say
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.proc = _child(command)
        threading.Thread(target=self._watch, name=f"supervise {label}", daemon=True).start()

    def _watch(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            started = time.monotonic()
            code = self.proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= BACKOFF_RESET:
                delay = BACKOFF_FIRST
            self.say(f"{self.label} exited (code {code}); restarting in {delay:g} s")
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, BACKOFF_MAX)
            with self._lock:
                if self._stopping.is_set():
                    return
                self.proc = _child(self.command)

    def terminate(self) -> None:
        self._stopping.set()
        with self._lock:
            self.proc.terminate()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()


def _start_events_with_the_server() -> None:
    """Embedded mode: start the events service (and its sampler) as soon as the
    server runs, not at the first WebSocket, so the Timeline stores events and
    /metrics has figures before anyone opens a page."""
    from twisted.internet import reactor  # Daphne's asyncio reactor, installed by its import

    from vmdash.live.service import ensure_embedded

    # callLater: callWhenRunning's callbacks run before asyncio's loop does.
    reactor.callWhenRunning(reactor.callLater, 0, ensure_embedded)


def _exit_now() -> None:
    """Leave once Daphne has stopped (SIGTERM, Ctrl+C): a worker thread still blocked
    in a libvirt call on a host that went silent must not hold the exit."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _child(command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), command],
        preexec_fn=die_with_parent,
    )


def _events_mode(no_events: bool) -> str:
    mode = settings.VMDASH_EVENTS
    if mode == "embedded":
        return "in this process (in-memory channel layer)"
    if mode == "external":
        where = "run elsewhere" if no_events else "run by manage.py vmdash_events beside it"
        return f"through Redis, {where}"
    return "off (VMDASH_EVENTS=off)"
