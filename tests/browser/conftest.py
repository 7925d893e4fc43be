"""A real vmdash server (Daphne, as `make run` starts it) and Debian's chromium.

The server runs in its own process with its own SQLite database, on the real
libvirtd. Nothing here skips: a missing chromium or libvirtd fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.servers import free_port, manage, migrate

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN = ("admin", "browser-admin-pw-1")
# One launcher for every test server (tests/servers.py); the old names stay for the conftests.
run_manage = manage


@dataclass
class Server:
    url: str
    env: dict[str, str]
    log: Path

    def manage(self, *args: str) -> str:
        return run_manage(self.env, *args)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, system_conn: object) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("vmdash-server")
    port = free_port()
    env = {
        **os.environ,
        "VMDASH_DATA_DIR": str(data),
        "VMDASH_HOSTS": "local=qemu:///system",
        "VMDASH_ADMIN_USER": ADMIN[0],
        "VMDASH_ADMIN_PASSWORD": ADMIN[1],
        "VMDASH_LIST_POLL": "2",  # lists without libvirt events ask again this often
        "DJANGO_SETTINGS_MODULE": "vmdash.settings",
    }
    srv = Server(f"http://127.0.0.1:{port}", env, data / "server.log")
    migrate(env)
    srv.manage("vmdash_setup")
    with srv.log.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "vmdash_run", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{srv.url}/accounts/login/", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"vmdash did not start:\n{srv.log.read_text()}", pytrace=False)
                time.sleep(0.2)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# One Chromium for the whole session. The conftests of tests/events and
# tests/console import this fixture, which makes a fixture of each of them:
# they must share one Playwright, since a second sync Playwright cannot start
# while the first one's loop runs.
_chromium: dict[str, Any] = {"users": 0}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)
    if _chromium["users"] == 0:
        playwright = sync_playwright().start()
        _chromium["playwright"] = playwright
        _chromium["browser"] = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
    _chromium["users"] += 1
    try:
        yield _chromium["browser"]
    finally:
        _chromium["users"] -= 1
        if _chromium["users"] == 0:
            _chromium.pop("browser").close()
            _chromium.pop("playwright").stop()


def login(page: Page, url: str, username: str = ADMIN[0], password: str = ADMIN[1]) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
