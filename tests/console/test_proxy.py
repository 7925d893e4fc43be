"""Console tickets against the real proxy process (websockify + our plugin), real guests.

A refused ticket gets an HTTP 403 instead of the WebSocket upgrade: not one
byte of the VM's display is relayed.
"""

from __future__ import annotations

import secrets
import socket
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.console import rfbclient
from tests.console.conftest import (
    CAROL,
    TICKET_SECONDS,
    ConsoleGuest,
    ConsoleServer,
    Web,
)
from tests.console.wsclient import Refused, WebSocket
from tests.realhost import wait_until

pytestmark = pytest.mark.libvirtd


def open_display(url: str, web: Web | None, cookie: str | None = None) -> WebSocket:
    return WebSocket(url, cookie=web.cookie_header if cookie is None and web else cookie or "")


def assert_refused(url: str, cookie: str = "") -> None:
    with pytest.raises(Refused) as refused:
        WebSocket(url, cookie=cookie)
    assert refused.value.status == 403


def test_a_fresh_ticket_opens_the_vms_display(web_admin: Web, running_a: ConsoleGuest) -> None:
    with open_display(web_admin.ticket_url(running_a.name), web_admin) as ws:
        desktop = rfbclient.init(ws)
    assert desktop.name == f"QEMU ({running_a.name})"
    assert (desktop.width, desktop.height) == (720, 400)


def test_forged_tickets_are_refused(
    web_admin: Web, console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    base = f"ws://127.0.0.1:{console_server.proxy_port}/"
    real = web_admin.ticket_url(running_a.name)
    token = real.split("token=", 1)[1]
    pk, rest = token.split(".", 1)
    for forged in (
        base,
        base + "?token=",
        base + "?token=" + secrets.token_urlsafe(40),
        base + "?token=" + token[:-3] + "abc",  # signature tampered with
        base + "?token=" + str(int(pk) + 1) + "." + rest,  # another ticket's id
        base + "?token=" + f"{pk}.{secrets.token_urlsafe(24)}:1xWIDI:" + "A" * 43,
    ):
        assert_refused(forged, web_admin.cookie_header)
    with open_display(real, web_admin) as ws:  # the real one is untouched
        assert ws.recv_exact(12) == b"RFB 003.008\n"


def test_a_used_ticket_is_refused(web_admin: Web, running_a: ConsoleGuest) -> None:
    url = web_admin.ticket_url(running_a.name)
    with open_display(url, web_admin) as ws:
        ws.recv_exact(12)
    assert_refused(url, web_admin.cookie_header)


def test_an_expired_ticket_is_refused(web_admin: Web, running_a: ConsoleGuest) -> None:
    url = web_admin.ticket_url(running_a.name)
    time.sleep(TICKET_SECONDS + 1.1)
    assert_refused(url, web_admin.cookie_header)


def test_another_users_ticket_is_refused_and_spent(
    web_admin: Web, web_bob: Web, console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    stolen = web_admin.ticket_url(running_a.name)
    assert_refused(stolen, web_bob.cookie_header)
    assert_refused(stolen, web_admin.cookie_header)  # presented once: used up
    for cookie in ("", f"sessionid={secrets.token_hex(16)}"):
        assert_refused(web_admin.ticket_url(running_a.name), cookie)
    other_admin_login = Web(console_server, "admin", console_server.env["VMDASH_ADMIN_PASSWORD"])
    assert_refused(web_admin.ticket_url(running_a.name), other_admin_login.cookie_header)


def test_a_ticket_is_refused_once_its_user_is_deactivated(
    console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    carol = Web(console_server, *CAROL)
    url = carol.ticket_url(running_a.name)
    with console_server.db() as db:
        db.execute("UPDATE auth_user SET is_active = 0 WHERE username = ?", (CAROL[0],))
    try:
        assert_refused(url, carol.cookie_header)
    finally:
        with console_server.db() as db:
            db.execute("UPDATE auth_user SET is_active = 1 WHERE username = ?", (CAROL[0],))


def test_a_ticket_for_one_vm_cannot_be_steered_to_another(
    web_admin: Web, running_a: ConsoleGuest, running_b: ConsoleGuest
) -> None:
    port_b = running_b.vnc_port()
    url = web_admin.ticket_url(running_a.name)
    parts = urllib.parse.urlsplit(url)
    steered = urllib.parse.urlunsplit(
        parts._replace(
            path=f"/{running_b.name}",
            query=parts.query + f"&host=127.0.0.1&port={port_b}&token=x&target=127.0.0.1:{port_b}",
        )
    )
    with open_display(steered, web_admin) as ws:
        assert rfbclient.init(ws).name == f"QEMU ({running_a.name})"


def test_a_ticket_dies_with_the_vm_run_it_was_issued_for(
    web_admin: Web,
    guest_maker: Callable[..., ConsoleGuest],
) -> None:
    """Stop VM C and start D: D may now hold C's old VNC port. C's ticket must not reach it."""
    c, d = guest_maker("c"), guest_maker("d")
    c.start(wait_banner=False)
    try:
        old_port = c.vnc_port()
        url = web_admin.ticket_url(c.name)
        c.stop()
        d.start(wait_banner=False)
        assert_refused(url, web_admin.cookie_header)
        # The scenario is real here when D did get C's port (autoport takes the lowest free).
        if d.vnc_port() == old_port:
            with socket.create_connection(("127.0.0.1", old_port), timeout=5) as direct:
                assert direct.recv(12) == b"RFB 003.008\n"
    finally:
        c.stop()
        d.stop()


def test_the_proxy_logs_in_to_a_password_protected_display(
    web_admin: Web, running_b: ConsoleGuest
) -> None:
    # Directly, the display wants VNC authentication only.
    with socket.create_connection(("127.0.0.1", running_b.vnc_port()), timeout=5) as direct:
        direct.recv(12)
        direct.sendall(b"RFB 003.008\n")
        count = direct.recv(1)[0]
        assert list(direct.recv(count)) == [2]
    status, answer = web_admin.ticket(running_b.name)
    assert status == 200
    assert "pw-4-vnc" not in str(answer)
    with open_display(answer["url"], web_admin) as ws:  # the browser is offered None only
        assert rfbclient.init(ws).name == f"QEMU ({running_b.name})"


def test_keys_reach_the_guest_but_not_through_a_view_only_ticket(
    web_admin: Web, running_a: ConsoleGuest
) -> None:
    with open_display(web_admin.ticket_url(running_a.name, view_only=True), web_admin) as ws:
        rfbclient.init(ws, shared=False)
        rfbclient.type_text(ws, "\necho vmdash-view-$((6*7)) >/dev/ttyS0\n")
        time.sleep(0.5)
    with open_display(web_admin.ticket_url(running_a.name), web_admin) as ws:
        rfbclient.init(ws)
        rfbclient.type_text(ws, "\necho vmdash-typed-$((6*7)) >/dev/ttyS0\n")
        wait_until(lambda: "vmdash-typed-42" in running_a.serial(), 20, "keys typed over VNC")
    assert "vmdash-view-42" not in running_a.serial()


def test_opening_and_closing_is_audited_with_the_duration(
    web_admin: Web, console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    with open_display(web_admin.ticket_url(running_a.name), web_admin) as ws:
        rfbclient.init(ws)
        _status, page = web_admin.get(f"/hosts/local/domains/{running_a.name}/console/viewers/")
        assert b"admin" in page and b"graphical console" in page
        time.sleep(0.3)

    def closed() -> bool:
        rows = console_server.query(
            "SELECT action, message, username, object_name, object_uuid FROM vmdash_auditentry"
            " WHERE object_name = ? AND action LIKE 'console-%' ORDER BY id",
            running_a.name,
        )
        return bool(rows) and rows[-1]["action"] == "console-close"

    wait_until(closed, 10, "the console-close audit entry")
    rows = console_server.query(
        "SELECT action, message, username, object_uuid FROM vmdash_auditentry"
        " WHERE object_name = ? AND action LIKE 'console-%' ORDER BY id DESC LIMIT 2",
        running_a.name,
    )
    close, opened = rows
    assert opened["action"] == "console-open" and opened["username"] == "admin"
    assert opened["object_uuid"] == running_a.dom().UUIDString()
    assert "closed after" in close["message"] and " s" in close["message"]
    _status, page = web_admin.get(f"/hosts/local/domains/{running_a.name}/console/viewers/")
    assert b"Nobody is connected" in page


def test_the_status_says_when_the_proxy_is_down(
    server_without_proxy: ConsoleServer, running_a: ConsoleGuest
) -> None:
    import json

    web = Web(server_without_proxy, "admin", server_without_proxy.env["VMDASH_ADMIN_PASSWORD"])
    _status, body = web.get(f"/hosts/local/domains/{running_a.name}/console/status/")
    answer = json.loads(body)
    assert answer["proxy"] is False and answer["running"] is True
    assert "console proxy does not answer" in answer["proxy_message"]


def relay_pid(proxy_port: int) -> int:
    """The relay process (python -m vmdash.console.relay ... --port P) of a server."""
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"vmdash.console.relay" in argv and str(proxy_port).encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no relay process for port {proxy_port}")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(b")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def test_idle_unauthenticated_connections_cost_no_process_and_are_closed(
    web_admin: Web, console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    relay = relay_pid(console_server.proxy_port)
    before = len(children_of(relay))
    idle = [
        socket.create_connection(("127.0.0.1", console_server.proxy_port), timeout=10)
        for _ in range(150)
    ]
    try:
        time.sleep(1)
        assert len(children_of(relay)) - before < 5
        with open_display(web_admin.ticket_url(running_a.name), web_admin) as ws:
            assert rfbclient.init(ws).name == f"QEMU ({running_a.name})"
            assert len(children_of(relay)) - before < 6
        for sock in idle:  # closed by the relay a few seconds after they came
            assert sock.recv(1) == b""
    finally:
        for sock in idle:
            sock.close()
