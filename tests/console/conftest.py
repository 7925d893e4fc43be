"""Fixtures for the console tests: a real vmdash with its real console proxy, guests.

`console_server` runs `manage.py vmdash_run` (Daphne + the websockify proxy
as its child, as `make run` does) on free loopback ports with its own SQLite
database and a 4-second ticket lifetime, so the expiry test waits briefly.
`Web` logs in over plain HTTP and asks for tickets as the page's script does.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.browser.conftest import ADMIN, REPO, free_port, run_manage
from tests.browser.conftest import browser as browser  # the Chromium fixture, shared
from tests.guest import GUEST_BANNER, guest_domain_xml, kvm_usable
from tests.realhost import SERIAL_LOG_DIR, fresh_conn, remove_domain, start_domain, wait_until
from tests.servers import migrate, wait_port

TICKET_SECONDS = 4
# Not tests.realhost.PREFIX: every pytest session (unit-only runs too, which do
# not take the libvirtd lock) removes vmdash-t-* guests when it starts and ends,
# which would destroy these while a console test uses them.
PREFIX = "vmdash-tc-"
ALICE = ("alice", "alice-console-pw-1")  # superuser: full console rights
BOB = ("bob", "bob-console-pw-1")  # no rights at all
CAROL = ("carol", "carol-console-pw-1")  # superuser, deactivated by a test


@dataclass
class ConsoleServer:
    url: str
    proxy_port: int
    env: dict[str, str]
    data: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.data / "vmdash.sqlite3", timeout=20)
        conn.row_factory = sqlite3.Row
        return conn

    def query(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self.db() as conn:
            return list(conn.execute(sql, args))

    def manage(self, *args: str) -> str:
        return run_manage(self.env, *args)


def start_server(
    data: Path, *, proxy: bool = True, extra_env: dict[str, str] | None = None
) -> ConsoleServer:
    port, proxy_port = free_port(), free_port()
    env = {
        **os.environ,
        "VMDASH_DATA_DIR": str(data),
        "VMDASH_HOSTS": "local=qemu:///system",
        "VMDASH_ADMIN_USER": ADMIN[0],
        "VMDASH_ADMIN_PASSWORD": ADMIN[1],
        "VMDASH_CONSOLE_PROXY_PORT": str(proxy_port),
        "VMDASH_CONSOLE_TICKET_SECONDS": str(TICKET_SECONDS),
        "DJANGO_SETTINGS_MODULE": "vmdash.settings",
        **(extra_env or {}),
    }
    if not proxy:
        env["VMDASH_CONSOLE_PROXY"] = "0"
    log = data / "server.log"
    migrate(env)
    subprocess.run(
        [sys.executable, "manage.py", "vmdash_setup"],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "vmdash_run", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    srv = ConsoleServer(f"http://127.0.0.1:{port}", proxy_port, env, data, log, proc)
    wait_port(port, proc, log)
    if proxy:
        wait_port(proxy_port, proc, log)
    return srv


def stop_server(srv: ConsoleServer) -> None:
    srv.proc.terminate()
    try:
        srv.proc.wait(15)
    except subprocess.TimeoutExpired:
        srv.proc.kill()


class Web:
    """One logged-in browser session, without the browser."""

    def __init__(self, server: ConsoleServer, username: str, password: str) -> None:
        self.server = server
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.get("/accounts/login/")
        status, _ = self.post("/accounts/login/", {"username": username, "password": password})
        assert self.cookie("sessionid"), f"login as {username} failed ({status})"

    def cookie(self, name: str) -> str:
        return next((c.value for c in self.jar if c.name == name), "")

    @property
    def cookie_header(self) -> str:
        return f"sessionid={self.cookie('sessionid')}"

    def _open(self, req: urllib.request.Request) -> tuple[int, bytes]:
        try:
            with self.opener.open(req, timeout=20) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def get(self, path: str) -> tuple[int, bytes]:
        return self._open(urllib.request.Request(self.server.url + path))

    def post(self, path: str, data: dict[str, str] | None = None) -> tuple[int, bytes]:
        body = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": self.cookie("csrftoken"), **(data or {})}
        )
        req = urllib.request.Request(
            self.server.url + path,
            data=body.encode(),
            headers={"X-CSRFToken": self.cookie("csrftoken"), "Referer": self.server.url + path},
        )
        return self._open(req)

    def ticket(self, vm: str, *, view_only: bool = False) -> tuple[int, dict[str, Any]]:
        status, body = self.post(
            f"/hosts/local/domains/{urllib.parse.quote(vm)}/console/ticket/",
            {"view_only": "1"} if view_only else {},
        )
        try:
            return status, json.loads(body)
        except ValueError:
            return status, {"html": body.decode(errors="replace")}

    def ticket_url(self, vm: str, **kwargs: bool) -> str:
        status, answer = self.ticket(vm, **kwargs)
        assert status == 200, answer
        return str(answer["url"])


@pytest.fixture
def web_admin(console_server: ConsoleServer) -> Web:
    return Web(console_server, *ADMIN)


@pytest.fixture
def web_alice(console_server: ConsoleServer) -> Web:
    return Web(console_server, *ALICE)


@pytest.fixture
def web_bob(console_server: ConsoleServer) -> Web:
    return Web(console_server, *BOB)


@dataclass
class ConsoleGuest:
    name: str
    serial_log: Path
    made: list[str] = field(default_factory=list)

    def dom(self) -> libvirt.virDomain:
        return fresh_conn().lookupByName(self.name)

    def serial(self) -> str:
        try:
            return self.serial_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, *, wait_banner: bool = True) -> None:
        dom = self.dom()
        if not dom.isActive():
            start_domain(dom)
        if wait_banner:
            wait_until(lambda: GUEST_BANNER in self.serial(), 60, f"{self.name} banner")

    def stop(self) -> None:
        dom = self.dom()
        if dom.isActive():
            dom.destroy()

    def vnc_port(self) -> int:
        from lxml import etree

        root = etree.fromstring(self.dom().XMLDesc(0).encode())
        return int(root.find("devices/graphics").get("port"))


def define_guest(
    guest_files: Path, suffix: str, *, vnc_password: str = "", **kwargs: Any
) -> ConsoleGuest:
    name = f"{PREFIX}con-{suffix}"
    log = SERIAL_LOG_DIR / f"{name}-serial.log"
    try:
        remove_domain(fresh_conn().lookupByName(name))
    except libvirt.libvirtError:
        pass
    xml = guest_domain_xml(
        name,
        kernel=guest_files / "vmlinuz",
        initrd=guest_files / "initrd.img",
        domain_type="kvm" if kvm_usable() else "qemu",
        serial_log=log if kwargs.get("serial", True) else None,
        **kwargs,
    )
    if vnc_password:
        from lxml import etree

        root = etree.fromstring(xml.encode())
        root.find("devices/graphics").set("passwd", vnc_password)
        xml = etree.tostring(root, encoding="unicode")
    fresh_conn().defineXML(xml)
    return ConsoleGuest(name, log)


def undefine_guest(guest: ConsoleGuest) -> None:
    try:
        remove_domain(fresh_conn().lookupByName(guest.name))
    except libvirt.libvirtError:
        pass
    guest.serial_log.unlink(missing_ok=True)


VNC_PASSWORD = "pw-4-vnc"


@pytest.fixture(scope="session")
def guest_b(guest_maker: Callable[..., ConsoleGuest]) -> ConsoleGuest:
    """A second guest whose VNC display has a password."""
    return guest_maker("b", vnc_password=VNC_PASSWORD)


@pytest.fixture
def running_b(guest_b: ConsoleGuest) -> ConsoleGuest:
    guest_b.start(wait_banner=False)
    return guest_b


@pytest.fixture(scope="session")
def server_without_proxy(
    tmp_path_factory: pytest.TempPathFactory, system_conn: object
) -> Iterator[ConsoleServer]:
    """vmdash as `make run` starts it, but with its console proxy down."""
    srv = start_server(tmp_path_factory.mktemp("vmdash-noproxy"), proxy=False)
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="session")
def guest_off(guest_maker: Callable[..., ConsoleGuest]) -> ConsoleGuest:
    """Defined, never started."""
    return guest_maker("off")


@pytest.fixture(scope="session")
def guest_bare(guest_maker: Callable[..., ConsoleGuest]) -> ConsoleGuest:
    """No serial port and no graphics: defined, never started."""
    return guest_maker("bare", serial=False, vnc=False)


def grant_console(monkeypatch: pytest.MonkeyPatch, username: str, vm: str, *, full: bool) -> None:
    """A grant-aware rule in the policy function alone: `username` may watch VM `vm`
    (CONSOLE_VIEW_ONLY), or with `full` also use it (CONSOLE); everyone else as before.

    The door asks the policy through its module, so this reaches every entrance.
    """
    from vmdash import policy
    from vmdash.policy import Action, Who
    from vmdash.virt.refs import DomainRef, HostRef

    original = policy.can
    allowed = {Action.VIEW, Action.CONSOLE_VIEW_ONLY} | ({Action.CONSOLE} if full else set())

    def can(who: Who, action: Action, ref: object = None) -> bool:
        if who.active and who.username == username:
            if isinstance(ref, HostRef):
                return action == Action.VIEW
            if isinstance(ref, DomainRef) and ref.name == vm:
                return action in allowed
        return original(who, action, ref)  # type: ignore[arg-type]

    monkeypatch.setattr("vmdash.policy.can", can)
