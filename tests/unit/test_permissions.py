"""Every door asks the policy: the permission matrix of every view.

Personas: alice (superuser: everything), bob (a user with no grants: sees
nothing, may do nothing), charlie (deactivated superuser), and nobody logged in.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import audit_entries
from vmdash.models import Host
from vmdash.virt.domains import Op

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/domains/",
    "/hosts/",
    "/hosts/lab/",
    "/hosts/lab/domains/web1/",
    "/hosts/lab/domains/web1/devices/",
    "/hosts/lab/domains/web1/xml/",
    "/hosts/lab/domains/web1/force-off/confirm/",
    "/hosts/add/",
    "/hosts/lab/edit/",
    "/hosts/lab/delete/",
    "/audit/",
]
POSTS = [
    *[f"/hosts/lab/domains/db/{op.value}/" for op in Op],
    "/hosts/add/",
    "/hosts/lab/edit/",
    "/hosts/lab/toggle/",
    "/hosts/lab/delete/",
]


def client_for(user: User | None) -> Client:
    c = Client()
    if user is not None:
        c.force_login(user)
    return c


@pytest.mark.parametrize("url", PAGES)
def test_the_superuser_may_open_every_page(as_alice: Client, lab: Host, url: str) -> None:
    assert as_alice.get(url).status_code == 200


@pytest.mark.parametrize("url", PAGES + POSTS)
def test_nobody_logged_in_is_sent_to_the_login_page(lab: Host, url: str) -> None:
    c = Client()
    for response in (c.get(url), c.post(url)):
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", PAGES + POSTS)
def test_a_deactivated_account_is_logged_out(charlie: User, lab: Host, url: str) -> None:
    response = client_for(charlie).get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


OBJECT_PAGES = [u for u in PAGES if u.startswith("/hosts/lab")]


@pytest.mark.parametrize("url", OBJECT_PAGES)
def test_a_user_without_grants_gets_404_for_objects(as_bob: Client, lab: Host, url: str) -> None:
    assert as_bob.get(url).status_code == 404


@pytest.mark.parametrize("url", ["/hosts/add/", "/audit/"])
def test_a_user_without_grants_gets_403_for_site_functions(
    as_bob: Client, lab: Host, url: str
) -> None:
    assert as_bob.get(url).status_code == 403


def test_a_user_without_grants_sees_empty_lists(as_bob: Client, lab: Host) -> None:
    for url in ("/", "/domains/", "/hosts/"):
        response = as_bob.get(url)
        assert response.status_code == 200
        page = response.content.decode()
        assert "web1" not in page and "Lab" not in page, url


@pytest.mark.parametrize("url", POSTS)
def test_a_user_without_grants_changes_nothing(as_bob: Client, lab: Host, url: str) -> None:
    response = as_bob.post(url, {"confirm": "db", "slug": "x", "uri": "test:///default"})
    assert response.status_code in (403, 404)
    assert Host.objects.get(slug="lab").enabled
    assert Host.objects.count() == 1
    assert not audit_entries().filter(outcome="ok").exists()
    denied = audit_entries().get(outcome="denied")  # the refused attempt is on record
    assert denied.username == "bob" and url in denied.message
    from vmdash.virt import domains
    from vmdash.virt.enums import DomainState

    summary = domains.get_summary(lab.ref, "db")
    assert summary.state == DomainState.SHUTOFF and not summary.autostart
