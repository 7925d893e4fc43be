"""Console tickets on the test driver: who gets one, what it holds, when it is refused.

The same refusals are checked end to end against the real proxy in
test_proxy.py; here they are quick and exact about the reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.console.conftest import grant_console
from vmdash.console import tickets
from vmdash.console.models import ConsoleTicket
from vmdash.models import AuditEntry, Host
from vmdash.policy import Action, Who
from vmdash.virt import consoles
from vmdash.virt.refs import HostRef

pytestmark = pytest.mark.django_db

TICKET = "/hosts/lab/domains/{}/console/ticket/"
DATA = Path(__file__).parent / "data"


def allow(monkeypatch: pytest.MonkeyPatch, *actions: Action) -> None:
    """Make the policy grant exactly `actions` to any active user (roles come later).

    The policy function itself is replaced: the door asks it through its module.
    """

    def can(who: Who, action: Action, ref: object = None) -> bool:
        return who.active and action in actions

    monkeypatch.setattr("vmdash.policy.can", can)


def ask(client: Client, vm: str = "web1", **data: str) -> tuple[int, dict[str, Any]]:
    response = client.post(TICKET.format(vm), data)
    try:
        return response.status_code, json.loads(response.content)
    except ValueError:
        return response.status_code, {}


def token_of(answer: dict[str, Any]) -> str:
    return str(answer["url"]).split("token=", 1)[1]


def cookie(client: Client) -> str:
    return f"sessionid={client.cookies['sessionid'].value}"


def redeem(token: str, client: Client | None = None, header: str | None = None) -> tickets.Grant:
    return tickets.redeem(
        token, cookie_header=header if client is None else cookie(client), remote_addr="127.0.0.1"
    )


def test_the_superuser_gets_a_ticket_for_the_vms_vnc_port(as_alice: Client, lab: Host) -> None:
    status, answer = ask(as_alice)
    assert status == 200, answer
    assert answer["url"].startswith("ws://testserver:6080/?token=")  # the page's host name
    assert answer["view_only"] is False
    row = ConsoleTicket.objects.get()
    assert (row.vm_name, row.target_host, row.target_port) == ("web1", "127.0.0.1", 5901)
    assert row.used_at is None


def test_the_ticket_url_follows_the_public_url_setting(
    as_alice: Client, lab: Host, settings: Any
) -> None:
    settings.VMDASH_CONSOLE_PUBLIC_URL = "wss://vmdash.example.org/websockify"
    _status, answer = ask(as_alice)
    assert answer["url"].startswith("wss://vmdash.example.org/websockify?token=")


def test_it_refuses_get(as_alice: Client, lab: Host) -> None:
    assert as_alice.get(TICKET.format("web1")).status_code == 405
    assert not ConsoleTicket.objects.exists()


def test_a_user_who_may_not_see_the_vm_gets_404_and_no_ticket(as_bob: Client, lab: Host) -> None:
    assert ask(as_bob)[0] == 404
    assert as_bob.get("/hosts/lab/domains/web1/console/").status_code == 404
    assert as_bob.get("/hosts/lab/domains/web1/serial/").status_code == 404
    assert not ConsoleTicket.objects.exists()


def test_a_user_who_may_see_but_not_open_the_console_gets_403_and_no_ticket(
    as_bob: Client, lab: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(monkeypatch, Action.VIEW)
    assert ask(as_bob)[0] == 403
    assert as_bob.get("/hosts/lab/domains/web1/console/").status_code == 403
    assert as_bob.get("/hosts/lab/domains/web1/console/viewers/").status_code == 403
    assert not ConsoleTicket.objects.exists()
    denied = AuditEntry.objects.filter(action="console-denied", username="bob")
    assert denied.exists()


def test_a_user_with_view_only_rights_gets_a_view_only_ticket(
    as_bob: Client, lab: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(monkeypatch, Action.VIEW, Action.CONSOLE_VIEW_ONLY)
    status, answer = ask(as_bob)
    assert status == 200 and answer["view_only"] is True
    assert redeem(token_of(answer), as_bob).view_only


def test_the_superuser_may_choose_view_only(as_alice: Client, lab: Host) -> None:
    _status, answer = ask(as_alice, view_only="1")
    assert answer["view_only"] is True
    assert ConsoleTicket.objects.get().view_only


def test_a_vm_without_graphics_gets_a_clear_refusal(as_alice: Client, lab: Host) -> None:
    status, answer = ask(as_alice, "db")
    assert status == 409
    assert answer["state"] == "no-graphics"
    assert "no graphical display" in answer["message"]


def test_the_vnc_password_stays_on_the_server(as_alice: Client, db: None, settings: Any) -> None:
    settings.VMDASH_TEST_DRIVER_DIR = str(DATA)
    Host.objects.create(slug="lab", uri=f"test://{DATA / 'locked.xml'}")
    response = as_alice.post(TICKET.format("locked"))
    assert response.status_code == 200
    assert b"s3cret-pw" not in response.content
    page = as_alice.get("/hosts/lab/domains/locked/console/")
    assert page.status_code == 200 and b"s3cret-pw" not in page.content
    grant = redeem(token_of(json.loads(response.content)), as_alice)
    assert grant.password == "s3cret-pw"
    assert (grant.target_host, grant.target_port) == ("127.0.0.1", 5905)  # 0.0.0.0, locally
    tickets.forget(grant.ticket_id)  # the desk does this right after answering
    assert ConsoleTicket.objects.get().password == ""


def test_a_remote_display_on_loopback_gets_advice_not_a_blank_canvas() -> None:
    far = HostRef("far", "qemu+ssh://root@far.example/system", "far")
    with pytest.raises(consoles.ConsoleUnavailable) as raised:
        consoles._connect_address(far, "web1", "127.0.0.1")
    assert raised.value.reason == "loopback-only"
    assert "listen address" in str(raised.value)
    assert consoles._connect_address(far, "web1", "0.0.0.0") == "far.example"
    assert consoles._connect_address(far, "web1", "192.0.2.7") == "192.0.2.7"


@pytest.fixture
def issued(as_alice: Client, lab: Host) -> Callable[..., str]:
    def issue(**data: str) -> str:
        status, answer = ask(as_alice, **data)
        assert status == 200, answer
        return token_of(answer)

    return issue


def test_a_fresh_ticket_opens_once(as_alice: Client, issued: Callable[..., str]) -> None:
    token = issued()
    grant = redeem(token, as_alice)
    assert (grant.username, grant.vm_name, grant.target_port) == ("alice", "web1", 5901)
    with pytest.raises(tickets.Refused, match="already used"):
        redeem(token, as_alice)


def test_a_forged_ticket_is_refused(as_alice: Client, issued: Callable[..., str]) -> None:
    token = issued()
    for forged in ("", "1.abc", token[:-2] + "xx", token.replace(token.split(":")[0], "2.x")):
        with pytest.raises(tickets.Refused, match=r"forged|malformed"):
            redeem(forged, as_alice)
    redeem(token, as_alice)  # the real one still works


def test_an_expired_ticket_is_refused(
    as_alice: Client, issued: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = issued()
    later = time.time() + 31
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    with pytest.raises(tickets.Refused, match="expired"):
        redeem(token, as_alice)


def test_a_ticket_past_its_row_expiry_is_refused(
    as_alice: Client, issued: Callable[..., str]
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    token = issued()
    ConsoleTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(tickets.Refused, match="used or expired"):
        redeem(token, as_alice)


def test_a_ticket_is_refused_from_another_session(
    as_alice: Client, as_bob: Client, alice: User, issued: Callable[..., str]
) -> None:
    other_alice = Client()
    other_alice.force_login(alice)
    for header in (cookie(as_bob), cookie(other_alice), None, "sessionid=", "garbage;;=="):
        token = issued()
        with pytest.raises(tickets.Refused, match="another session"):
            redeem(token, header=header)


def test_session_binding_can_be_turned_off(issued: Callable[..., str], settings: Any) -> None:
    settings.VMDASH_CONSOLE_BIND_SESSION = False
    assert redeem(issued(), header=None).vm_name == "web1"


def test_a_ticket_is_refused_once_its_user_lost_the_right(
    as_alice: Client, alice: User, issued: Callable[..., str]
) -> None:
    token = issued()
    alice.is_superuser = False
    alice.save()
    with pytest.raises(tickets.Refused, match="may no longer"):
        redeem(token, as_alice)


def test_a_ticket_is_refused_once_its_host_is_disabled(
    as_alice: Client, lab: Host, issued: Callable[..., str]
) -> None:
    token = issued()
    Host.objects.filter(pk=lab.pk).update(enabled=False)
    with pytest.raises(tickets.Refused, match="disabled"):
        redeem(token, as_alice)


def test_a_ticket_names_the_run_of_the_vm_it_was_issued_for(
    as_alice: Client, lab: Host, issued: Callable[..., str]
) -> None:
    token = issued()
    ConsoleTicket.objects.update(domain_id=999)  # as if the VM had been restarted since
    with pytest.raises(tickets.Refused, match="stopped or restarted"):
        redeem(token, as_alice)


def test_a_view_only_grant_in_the_policy_alone_rules_the_ticket_desk(
    as_bob: Client, lab: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant_console(monkeypatch, "bob", "web1", full=True)
    status, full = ask(as_bob)
    assert status == 200 and full["view_only"] is False
    grant_console(monkeypatch, "bob", "web1", full=False)  # the grant narrowed to watching
    status, watch = ask(as_bob)
    assert status == 200 and watch["view_only"] is True  # asked for full, given view only
    assert redeem(token_of(watch), as_bob).view_only
    with pytest.raises(tickets.Refused, match="may no longer"):
        redeem(token_of(full), as_bob)
    assert ask(as_bob, "db")[0] == 404  # no grant on the other VM: not even seen


def test_a_ticket_is_refused_once_its_session_logged_out(
    as_alice: Client, issued: Callable[..., str]
) -> None:
    token, header = issued(), cookie(as_alice)
    as_alice.post("/accounts/logout/")
    with pytest.raises(tickets.Refused, match="session of user 'alice' has ended"):
        redeem(token, header=header)
