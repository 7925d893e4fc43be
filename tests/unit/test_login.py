"""Login in front of every page, and logout."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_person_logs_in_and_lands_where_they_wanted(alice: User) -> None:
    c = Client()
    page = c.get("/domains/", follow=True)
    assert page.redirect_chain[-1][0] == "/accounts/login/?next=/domains/"
    assert "Log in to vmdash" in page.content.decode()
    response = c.post(
        "/accounts/login/", {"username": "alice", "password": "alice-pw-1", "next": "/domains/"}
    )
    assert response.status_code == 302 and response["Location"] == "/domains/"
    assert c.get("/domains/").status_code == 200


def test_a_wrong_password_says_so(alice: User) -> None:
    response = Client().post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "Wrong user name or password." in response.content.decode()


def test_logout_is_a_post_and_ends_the_session(as_alice: Client) -> None:
    assert as_alice.get("/accounts/logout/").status_code == 405
    assert as_alice.get("/").status_code == 200
    response = as_alice.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert as_alice.get("/").status_code == 302


def test_the_login_form_is_csrf_protected(alice: User) -> None:
    c = Client(enforce_csrf_checks=True)
    assert (
        c.post("/accounts/login/", {"username": "alice", "password": "alice-pw-1"}).status_code
        == 403
    )


def test_django_admin_manages_users(alice: User) -> None:
    admin = User.objects.create_superuser("root", password="root-pw-1")
    c = Client()
    c.force_login(admin)
    assert c.get("/admin/auth/user/").status_code == 200
    assert "Users" in c.get("/").content.decode()
