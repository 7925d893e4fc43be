"""A real vmdash (Daphne, as `make run` starts it) on libvirt's test driver.

The attacks of tests/security run against the server a person would reach.
The demo host needs no libvirtd, so these tests can run beside others.
"""

from __future__ import annotations

import http.cookiejar
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.servers import ADMIN, Vmdash, start_vmdash


@pytest.fixture(scope="module")
def vmdash_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vmdash]:
    srv = start_vmdash(tmp_path_factory.mktemp("vmdash-security"), hosts="demo=test:///default")
    try:
        yield srv
    finally:
        srv.stop()


def query(srv: Vmdash, sql: str, *args: object) -> list[sqlite3.Row]:
    db = sqlite3.connect(srv.data / "vmdash.sqlite3", timeout=10)
    db.row_factory = sqlite3.Row
    try:
        return list(db.execute(sql, args))
    finally:
        db.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Browserless:
    """A person's browser without JavaScript: cookies, CSRF tokens, no redirects."""

    srv: Vmdash
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def cookie(self, name: str) -> str:
        return next((c.value or "" for c in self.jar if c.name == name), "")

    def request(
        self, path: str, data: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        body = None
        headers = {"Referer": self.srv.url + path}
        if data is not None:
            body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self.csrf()}).encode()
        req = urllib.request.Request(self.srv.url + path, data=body, headers=headers)
        try:
            with self.opener.open(req, timeout=20) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read().decode()

    def csrf(self) -> str:
        if not self.cookie("csrftoken"):
            self.request("/accounts/login/")
        return self.cookie("csrftoken")

    def login(self, username: str, password: str) -> int:
        page = self.request("/accounts/login/")[2]
        assert re.search(r'name="csrfmiddlewaretoken"', page)
        status, _headers, _body = self.request(
            "/accounts/login/", {"username": username, "password": password}
        )
        return status


@pytest.fixture
def person(vmdash_demo: Vmdash) -> Browserless:
    return Browserless(vmdash_demo)


__all__ = ["ADMIN", "Browserless", "query"]
