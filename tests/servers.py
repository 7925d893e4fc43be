"""One launcher for every test that needs vmdash as `make run` starts it.

`start_vmdash(data, hosts=..., **env)` migrates a private SQLite database in
`data`, creates the admin, starts `manage.py vmdash_run` on free ports and
waits until it answers; `.stop()` ends it (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ADMIN = ("admin", "server-admin-pw-1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manage(env: dict[str, str], *args: str) -> str:
    """`manage.py ARGS` in a process of its own, with `env`; its output."""
    out = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


_MIGRATED: dict[str, Path] = {}


def migrate(env: dict[str, str]) -> None:
    """`manage.py migrate` for a new installation in env's VMDASH_DATA_DIR.

    The first one in a test process really migrates (into a directory of its
    own); later ones copy that SQLite file (sqlite3's backup API), which is
    what migrate would have written: a Django process less per test server
    on a CPU-bound run. PostgreSQL, a database path of its own, or a data
    directory that already has a database: migrate runs as asked."""
    target = Path(env.get("VMDASH_DATA_DIR", "")) / "vmdash.sqlite3"
    if env.get("DATABASE_URL") or env.get("VMDASH_DB_PATH") or target.exists():
        manage(env, "migrate", "--noinput", "-v", "0")
        return
    template = _MIGRATED.get("sqlite")
    if template is None:
        scratch = Path(tempfile.mkdtemp(prefix="vmdash-migrated-"))
        manage({**env, "VMDASH_DATA_DIR": str(scratch)}, "migrate", "--noinput", "-v", "0")
        template = _MIGRATED["sqlite"] = scratch / "vmdash.sqlite3"
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(sqlite3.connect(template)) as source,
        contextlib.closing(sqlite3.connect(target)) as copy,
    ):
        source.backup(copy)


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"vmdash did not start:\n{log.read_text()}", pytrace=False)
            time.sleep(0.1)


@dataclass
class Vmdash:
    url: str
    port: int
    proxy_port: int
    env: dict[str, str]
    data: Path
    log: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    def manage(self, *args: str) -> str:
        return manage(self.env, *args)

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_vmdash(
    data: Path, *, hosts: str = "local=qemu:///system", proxy: bool = False, **extra: str
) -> Vmdash:
    port, proxy_port = free_port(), free_port()
    env = {
        **os.environ,
        "VMDASH_DATA_DIR": str(data),
        "VMDASH_HOSTS": hosts,
        "VMDASH_ADMIN_USER": ADMIN[0],
        "VMDASH_ADMIN_PASSWORD": ADMIN[1],
        "VMDASH_CONSOLE_PROXY": "1" if proxy else "0",
        "VMDASH_CONSOLE_PROXY_PORT": str(proxy_port),
        "DJANGO_SETTINGS_MODULE": "vmdash.settings",
        **extra,
    }
    migrate(env)
    manage(env, "vmdash_setup")
    log = data / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "vmdash_run", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    srv = Vmdash(f"http://127.0.0.1:{port}", port, proxy_port, env, data, log, proc)
    wait_port(port, proc, log)
    if proxy:
        wait_port(proxy_port, proc, log)
    return srv
