"""Console access ends with the login: logout, deactivation (real server, real proxy, real guest).

The attacks of issue 7 §3: a ticket issued before logout redeemed with the
old cookie afterwards, and VNC and serial consoles that kept relaying for
minutes after a logout or a deactivation.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.console import rfbclient
from tests.console.conftest import ConsoleGuest, ConsoleServer, Web
from tests.console.wsclient import Closed, Refused, WebSocket
from tests.realhost import wait_until

pytestmark = pytest.mark.libvirtd


ENDS_WITHIN = 5.0  # seconds: what the issue asks


def make_user(server: ConsoleServer, name: str) -> Web:
    password = f"{name}-console-pw-1"
    server.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"User.objects.filter(username={name!r}).delete()\n"
        f"User.objects.create_superuser({name!r}, password={password!r})\n",
    )
    return Web(server, name, password)


def serial(server: ConsoleServer, web: Web, vm: str) -> WebSocket:
    url = server.url.replace("http://", "ws://") + f"/ws/hosts/local/domains/{vm}/serial/"
    ws = WebSocket(url, cookie=web.cookie_header)
    status = json.loads(ws.recv_frame())
    assert status["state"] == "connected", status
    return ws


def seconds_until_closed(ws: WebSocket, limit: float) -> tuple[float, list[Any]]:
    """Read until the server closes; how long it took, and the status messages seen."""
    started = time.monotonic()
    ws.sock.settimeout(limit)
    said: list[Any] = []
    try:
        while True:
            frame = ws.recv_frame()
            if frame.startswith(b"{"):
                said.append(json.loads(frame))
    except Closed:
        return time.monotonic() - started, said
    except TimeoutError:
        pytest.fail(f"the console was still open {limit:g} s later", pytrace=False)


def vnc(web: Web, vm: str) -> WebSocket:
    ws = WebSocket(web.ticket_url(vm), cookie=web.cookie_header)
    rfbclient.init(ws)
    return ws


def close_entries(server: ConsoleServer, username: str) -> list[Any]:
    return server.query(
        "SELECT message, via FROM vmdash_auditentry"
        " WHERE username = ? AND action = 'console-close'",
        username,
    )


def test_a_ticket_issued_before_logout_is_refused_after_it(
    console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    web = make_user(console_server, "lou")
    url, cookie = web.ticket_url(running_a.name), web.cookie_header
    assert web.post("/accounts/logout/")[0] in (200, 302)
    with pytest.raises(Refused) as refused:
        WebSocket(url, cookie=cookie)  # the old cookie, as an attacker who kept it
    assert refused.value.status == 403

    def denied() -> list[Any]:
        return console_server.query(
            "SELECT message, outcome, via FROM vmdash_auditentry"
            " WHERE username = 'lou' AND action = 'console-denied'"
        )

    wait_until(lambda: bool(denied()), 10, "the refusal's audit entry")  # written after the 403
    rows = denied()
    assert [(r["outcome"], r["via"]) for r in rows] == [("denied", "console")]
    assert "session" in rows[0]["message"] and "ended" in rows[0]["message"]


def test_open_vnc_and_serial_consoles_close_within_seconds_of_logout(
    console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    web = make_user(console_server, "lena")
    screen = vnc(web, running_a.name)
    term = serial(console_server, web, running_a.name)
    web.post("/accounts/logout/")
    took_serial, said = seconds_until_closed(term, ENDS_WITHIN)
    took_vnc, _ = seconds_until_closed(screen, ENDS_WITHIN)
    assert took_serial < ENDS_WITHIN and took_vnc < ENDS_WITHIN
    assert said[-1]["state"] == "ended" and said[-1]["message"] == "Your session ended."
    wait_until(lambda: len(close_entries(console_server, "lena")) == 2, 10, "two console-close")
    assert all(r["via"] == "console" for r in close_entries(console_server, "lena"))


@pytest.mark.parametrize("how", ["deactivated", "password changed"])
def test_open_consoles_close_within_seconds_of_losing_the_account(
    console_server: ConsoleServer,
    running_a: ConsoleGuest,
    how: str,
) -> None:
    name = "dana" if how == "deactivated" else "pete"
    web = make_user(console_server, name)
    screen = vnc(web, running_a.name)
    term = serial(console_server, web, running_a.name)
    change = "u.is_active = False" if how == "deactivated" else "u.set_password('other-pw-9')"
    console_server.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"u = User.objects.get(username={name!r})\n{change}\nu.save()\n",
    )
    took_vnc, _ = seconds_until_closed(screen, ENDS_WITHIN)
    took_serial, said = seconds_until_closed(term, ENDS_WITHIN)
    assert took_vnc < ENDS_WITHIN and took_serial < ENDS_WITHIN
    assert said[-1]["state"] == "ended"
    wait_until(lambda: len(close_entries(console_server, name)) == 2, 10, "two console-close")
