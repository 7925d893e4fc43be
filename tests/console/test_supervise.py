"""vmdash_run keeps the console proxy running, and closes what a killed server left open."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.conftest import ADMIN, REPO
from tests.console.conftest import ConsoleGuest, Web, start_server, stop_server
from tests.console.test_proxy import children_of
from tests.console.wsclient import WebSocket
from tests.realhost import wait_until

pytestmark = pytest.mark.libvirtd


def proxy_pid(server_pid: int) -> int | None:
    for pid in children_of(server_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"vmdash_console_proxy" in argv:
            return pid
    return None


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_a_killed_console_proxy_is_started_again(tmp_path: Path, running_a: ConsoleGuest) -> None:
    srv = start_server(tmp_path)
    try:
        first = proxy_pid(srv.proc.pid)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: not answers(srv.proxy_port), 5, "the old relay to go")
        wait_until(
            lambda: proxy_pid(srv.proc.pid) not in (None, first) and answers(srv.proxy_port),
            8,
            "a new console proxy",
        )
        assert "console proxy exited (code -9); restarting in 1 s" in srv.log.read_text()
        web = Web(srv, *ADMIN)
        with WebSocket(web.ticket_url(running_a.name), cookie=web.cookie_header) as ws:
            assert ws.recv_exact(12) == b"RFB 003.008\n"
    finally:
        stop_server(srv)


def test_a_serial_console_of_a_killed_server_gets_its_close_at_the_next_start(
    tmp_path: Path, running_a: ConsoleGuest
) -> None:
    srv = start_server(tmp_path, proxy=False)
    web = Web(srv, *ADMIN)
    url = srv.url.replace("http://", "ws://") + f"/ws/hosts/local/domains/{running_a.name}/serial/"
    ws = WebSocket(url, cookie=web.cookie_header)
    assert json.loads(ws.recv_frame())["state"] == "connected"
    srv.proc.kill()  # no chance to say goodbye
    srv.proc.wait(10)
    ws.close()
    assert srv.query("SELECT ended_at FROM vmdash_console_consolesession")[0]["ended_at"] is None
    again = subprocess.Popen(
        [sys.executable, "manage.py", "vmdash_run", "--port", "0", "--no-console-proxy"],
        cwd=REPO,
        env=srv.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: srv.query(
                "SELECT ended_at FROM vmdash_console_consolesession WHERE ended_at IS NOT NULL"
            ),
            20,
            "the session closed at start-up",
        )
    finally:
        again.terminate()
        again.wait(15)
    (close,) = srv.query(
        "SELECT message, via FROM vmdash_auditentry WHERE action = 'console-close'"
    )
    assert close["message"].endswith("server restarted") and close["via"] == "console"
