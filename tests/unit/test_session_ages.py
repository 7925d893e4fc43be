"""Logins end after a while without a request, and after a longest time in any case."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.test import Client

from vmdash.middleware import LOGIN_AT, TOUCH_EVERY, TOUCHED_AT

pytestmark = pytest.mark.django_db


def _logged_in(bob: User) -> Client:
    c = Client()
    assert (
        c.post("/accounts/login/", {"username": "bob", "password": "bob-pw-1"}).status_code == 302
    )
    return c


def test_a_busy_session_is_renewed_for_the_idle_time_every_few_minutes(bob: User) -> None:
    c = _logged_in(bob)
    assert "sessionid" not in c.get("/me/").cookies  # just renewed by the login
    session = c.session
    session[TOUCHED_AT] = time.time() - TOUCH_EVERY - 1
    session.save()
    response = c.get("/me/")
    assert response.status_code == 200
    assert response.cookies["sessionid"]["max-age"] == 8 * 3600


def test_a_login_older_than_the_longest_time_is_logged_out(bob: User, settings: object) -> None:
    c = _logged_in(bob)
    assert c.get("/me/").status_code == 200
    session = c.session
    session[LOGIN_AT] = time.time() - 7 * 24 * 3600 - 60
    session.save()
    response = c.get("/me/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert c.get("/me/").status_code == 302  # and it stays logged out


def test_a_login_within_the_longest_time_stays(bob: User) -> None:
    c = _logged_in(bob)
    session = c.session
    session[LOGIN_AT] = time.time() - 6 * 24 * 3600
    session.save()
    assert c.get("/me/").status_code == 200
