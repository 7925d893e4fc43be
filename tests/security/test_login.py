"""Logging in: repeated wrong passwords lock the account, every attempt is on record,
pages are private to the browser, and a pre-login body cannot be made huge."""

from __future__ import annotations

import socket
import time

from tests.security.conftest import ADMIN, Browserless, query
from tests.servers import Vmdash


def test_ten_wrong_passwords_lock_the_account_even_for_the_right_one(
    vmdash_demo: Vmdash,
) -> None:
    vmdash_demo.manage("shell", "-c", _make_user("mallory-target", "right-password-1"))
    attacker = Browserless(vmdash_demo)
    answers = [attacker.login("mallory-target", f"guess-{i}") for i in range(10)]
    assert answers[:9] == [200] * 9  # the form again, "wrong user name or password"
    assert attacker.login("mallory-target", "right-password-1") == 429  # locked out
    elsewhere = Browserless(vmdash_demo)  # another browser: the account itself is locked
    assert elsewhere.login("mallory-target", "right-password-1") == 429
    status, _h, _body = elsewhere.request("/")
    assert status == 302  # not logged in
    failures = query(
        vmdash_demo,
        "SELECT outcome, remote_addr FROM vmdash_auditentry "
        "WHERE action='login' AND object_name='mallory-target'",
    )
    assert len([f for f in failures if f["outcome"] == "denied"]) >= 10
    assert all(f["remote_addr"] == "127.0.0.1" for f in failures)
    vmdash_demo.manage("axes_reset")


def test_a_login_and_a_logout_are_on_record(vmdash_demo: Vmdash, person: Browserless) -> None:
    assert person.login(*ADMIN) == 302
    assert person.request("/accounts/logout/", {})[0] == 302
    rows = query(
        vmdash_demo,
        "SELECT action, outcome FROM vmdash_auditentry WHERE username=? ORDER BY id",
        ADMIN[0],
    )
    actions = [(r["action"], r["outcome"]) for r in rows]
    assert ("login", "ok") in actions and ("logout", "ok") in actions


def test_pages_of_a_logged_in_person_are_private(person: Browserless) -> None:
    assert person.login(*ADMIN) == 302
    status, headers, _body = person.request("/domains/")
    assert status == 200
    cache = headers.get("Cache-Control", "")
    assert "private" in cache and "no-cache" in cache


def test_a_huge_body_before_login_is_refused_from_its_headers(vmdash_demo: Vmdash) -> None:
    """200 MiB announced: the answer comes before a byte of the body is sent."""
    with socket.create_connection(("127.0.0.1", vmdash_demo.port), timeout=10) as s:
        s.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 209715200\r\n\r\n"
        )
        started = time.monotonic()
        answer = s.recv(200)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert time.monotonic() - started < 10


def test_a_body_without_length_stops_being_read_past_the_limit(vmdash_demo: Vmdash) -> None:
    with socket.create_connection(("127.0.0.1", vmdash_demo.port), timeout=10) as s:
        s.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"a" * 65536
        answer = b""
        try:
            for _ in range(64):  # up to 4 MiB, twice the limit
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the server may close as soon as it answered
        s.settimeout(10)
        answer = s.recv(200)
    assert answer.startswith(b"HTTP/1.1 413"), answer


def _make_user(name: str, password: str) -> str:
    return (
        "from django.contrib.auth.models import User; "
        f"User.objects.filter(username={name!r}).delete(); "
        f"User.objects.create_user({name!r}, password={password!r})"
    )
