"""Two-factor login (people/twofactor.py): enrolment on /me/, the code after the
password, recovery codes, the lockout, group enforcement, the admin's reset —
and a login that owes its code is nobody at every door (pages, htmx, the
Django admin, the events WebSocket, the console proxy's session check).

Codes are computed as an app would, from the device's key (django_otp.oath).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group, User
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from people import twofactor
from tests.events.wsclient import WsClient
from tests.security.conftest import Browserless, query
from tests.servers import Vmdash
from vmdash.models import AuditEntry
from vmdash.revoke import session_holds


def code_of(device: TOTPDevice, steps: int = 0) -> str:
    """What the authenticator app shows now (or `steps` time steps later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps * device.step
    return f"{totp.token():0{device.digits}d}"


def enrol(user: User) -> tuple[TOTPDevice, list[str]]:
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return device, twofactor.new_recovery_codes(user)


def password_login(username: str, password: str) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": password})
    assert response.status_code == 302, "the password was not accepted"
    return client


def send_code(client: Client, code: str, next_url: str = "/") -> Any:
    return client.post("/accounts/code/", {"code": code, "next": next_url})


def entries(action: str, outcome: str | None = None) -> list[AuditEntry]:
    rows = AuditEntry.objects.filter(action=action)
    return list(rows.filter(outcome=outcome) if outcome else rows)


@pytest.mark.django_db
def test_enrolment_shows_a_qr_code_and_the_key_and_needs_one_right_code(bob: User) -> None:
    client = password_login("bob", "bob-pw-1")
    page = client.get("/me/two-factor/")
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert 'src="data:image/svg+xml' in html
    device = TOTPDevice.objects.get(user=bob, confirmed=False)
    shown = re.search(r'<code id="secret">([A-Z2-7 ]+)</code>', html)
    assert shown and shown.group(1) == twofactor.secret_text(device)

    wrong = client.post("/me/two-factor/confirm/", {"code": "000000"})
    assert wrong.status_code == 400
    assert not TOTPDevice.objects.filter(user=bob, confirmed=True).exists()
    time.sleep(1.1)  # a wrong code makes the next one wait a second (django-otp's throttle)

    done = client.post("/me/two-factor/confirm/", {"code": code_of(device)})
    assert done.status_code == 200 and "no-store" in done["Cache-Control"]
    codes = re.findall(r"<li><code>(\w+)</code></li>", done.content.decode())
    assert len(codes) == 10
    assert sorted(codes) == sorted(StaticToken.objects.values_list("token", flat=True))
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert client.get("/").status_code == 200  # enrolling verified this session
    assert entries("two-factor-enrol", "ok")


@pytest.mark.django_db
def test_the_password_alone_reaches_only_the_code_page(alice: User) -> None:
    device, _codes = enrol(alice)
    client = password_login("alice", "alice-pw-1")
    for path in ("/", "/domains/", "/users/", "/me/", "/me/two-factor/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/code/?next="), path
    htmx = client.post("/users/alice/unlock/", headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and htmx["HX-Redirect"] == "/accounts/code/"
    assert client.get("/accounts/code/?next=/users/").status_code == 200

    response = send_code(client, code_of(device), "/users/")
    assert response.status_code == 302 and response["Location"] == "/users/"
    assert client.get("/users/").status_code == 200
    assert entries("login-code", "ok")


@pytest.mark.django_db
def test_a_wrong_code_is_refused_recorded_counted_and_slows_the_next_one(alice: User) -> None:
    device, _codes = enrol(alice)
    client = password_login("alice", "alice-pw-1")
    wrong = send_code(client, "123456" if code_of(device) != "123456" else "654321")
    assert wrong.status_code == 400 and "not right" in wrong.content.decode()
    assert entries("login-code", "denied")
    assert sum(a.failures_since_start for a in AccessAttempt.objects.filter(username="alice")) == 1
    # django-otp's throttle: for a second after a wrong code even the right one is refused.
    throttled = send_code(client, code_of(device))
    assert throttled.status_code == 400 and "wait" in throttled.content.decode()
    time.sleep(2.1)  # the second failure doubled the wait
    assert send_code(client, code_of(device)).status_code == 302
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_a_code_is_accepted_once_only(alice: User) -> None:
    device, _codes = enrol(alice)
    code = code_of(device)
    first = password_login("alice", "alice-pw-1")
    assert send_code(first, code).status_code == 302
    second = password_login("alice", "alice-pw-1")
    replay = send_code(second, code)
    assert replay.status_code == 400
    assert second.get("/").status_code == 302  # still owes its code


@pytest.mark.django_db
def test_a_recovery_code_logs_in_once(alice: User) -> None:
    _device, codes = enrol(alice)
    first = password_login("alice", "alice-pw-1")
    assert send_code(first, codes[0]).status_code == 302
    assert first.get("/").status_code == 200
    assert twofactor.recovery_left(alice) == 9
    assert entries("login-code", "ok")[0].message == "recovery code"
    second = password_login("alice", "alice-pw-1")
    assert send_code(second, codes[0]).status_code == 400


@pytest.mark.django_db
def test_ten_wrong_codes_lock_the_account_out(alice: User, settings: Any) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # the lockout, not the throttle, is under test
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    device, _codes = enrol(alice)
    client = password_login("alice", "alice-pw-1")
    bad = "123456" if code_of(device) != "123456" else "654321"
    answers = [send_code(client, bad).status_code for _ in range(10)]
    assert answers[:9] == [400] * 9
    assert answers[9] == 429  # django-axes' lockout page, and this session is logged out
    assert client.get("/").status_code == 302 and "/accounts/login/" in client.get("/")["Location"]
    again = Client().post("/accounts/login/", {"username": "alice", "password": "alice-pw-1"})
    assert again.status_code == 429


@pytest.mark.django_db
def test_a_group_that_requires_it_sends_members_to_enrol_first(alice: User, bob: User) -> None:
    ops = Group.objects.create(name="ops")
    bob.groups.add(ops)
    before = password_login("bob", "bob-pw-1")  # logged in while it was optional
    assert before.get("/").status_code == 200

    admin = Client()
    admin.force_login(alice)
    assert admin.post(f"/groups/{ops.pk}/two-factor/", {"required": "1"}).status_code == 302
    assert entries("group-two-factor", "ok")[0].message == "required"

    for client in (before, password_login("bob", "bob-pw-1")):
        for path in ("/", "/domains/", "/me/"):
            response = client.get(path)
            assert response.status_code == 302 and response["Location"].startswith(
                "/me/two-factor/?next="
            ), path
    page = before.get("/me/two-factor/")
    assert page.status_code == 200 and "requires two-factor login" in page.content.decode()
    device = TOTPDevice.objects.get(user=bob, confirmed=False)
    assert before.post("/me/two-factor/confirm/", {"code": code_of(device)}).status_code == 200
    assert before.get("/").status_code == 200
    # Required: it cannot be turned off by its owner.
    assert before.post("/me/two-factor/off/").status_code == 302
    assert TOTPDevice.objects.filter(user=bob, confirmed=True).exists()


@pytest.mark.django_db
def test_an_admin_resets_a_second_factor_and_logs_its_owner_out(alice: User, bob: User) -> None:
    device, _codes = enrol(bob)
    bobs = password_login("bob", "bob-pw-1")
    assert send_code(bobs, code_of(device)).status_code == 302
    admin = Client()
    admin.force_login(alice)
    assert "Reset second factor" in admin.get("/users/bob/").content.decode()
    assert admin.post("/users/bob/two-factor/reset/").status_code == 302
    assert not TOTPDevice.objects.filter(user=bob).exists()
    assert not StaticToken.objects.filter(device__user=bob).exists()
    assert bobs.get("/")["Location"].startswith("/accounts/login/")
    (entry,) = entries("two-factor-reset", "ok")
    assert entry.username == "alice" and entry.object_name == "bob"
    assert "1 sessions ended" in entry.message
    fresh = password_login("bob", "bob-pw-1")  # no second factor any more, none required
    assert fresh.get("/").status_code == 200


@pytest.mark.django_db
def test_a_plain_user_may_not_reset_or_require_second_factors(bob: User, alice: User) -> None:
    enrol(alice)
    client = Client()
    client.force_login(bob)
    group = Group.objects.create(name="ops")
    assert client.post("/users/alice/two-factor/reset/").status_code == 403
    assert client.post(f"/groups/{group.pk}/two-factor/", {"required": "1"}).status_code == 403
    assert TOTPDevice.objects.filter(user=alice).exists()
    assert not twofactor.SecondFactorRequired.objects.exists()


@pytest.mark.django_db
def test_the_django_admin_login_asks_for_the_code_too(alice: User) -> None:
    device, _codes = enrol(alice)
    client = Client()
    client.post("/admin/login/?next=/admin/", {"username": "alice", "password": "alice-pw-1"})
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/code/")
    assert send_code(client, code_of(device), "/admin/").status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_the_console_proxy_check_refuses_a_login_that_owes_its_code(alice: User) -> None:
    device, _codes = enrol(alice)
    client = password_login("alice", "alice-pw-1")
    key = client.session.session_key
    assert not session_holds(alice.pk, key)
    assert send_code(client, code_of(device)).status_code == 302
    assert session_holds(alice.pk, client.session.session_key)
    assert client.session.session_key != key  # a new session key once the code was given


# --- a real server: the events WebSocket of a login that owes its code -------------


def _enrol_on(srv: Vmdash, username: str, password: str) -> bytes:
    """A user with a confirmed TOTP device on the real server; the device's key."""
    srv.manage(
        "shell", "-c",
        "from django.contrib.auth.models import User; "
        "from django_otp.plugins.otp_totp.models import TOTPDevice; "
        f"u = User.objects.create_superuser({username!r}, password={password!r}); "
        "TOTPDevice.objects.create(user=u, name='phone', confirmed=True)",
    )  # fmt: skip
    (row,) = query(
        srv,
        "SELECT d.key FROM otp_totp_totpdevice d JOIN auth_user u ON u.id = d.user_id "
        "WHERE u.username = ?",
        username,
    )
    return bytes.fromhex(row["key"])


async def test_the_events_socket_refuses_a_login_until_its_code_is_given(
    vmdash_demo: Vmdash,
) -> None:
    name = f"tina{int(time.time() * 1000) % 100000}"
    key = _enrol_on(vmdash_demo, name, "tina-pw-123456")
    person = Browserless(vmdash_demo)
    assert person.login(name, "tina-pw-123456") == 302
    cookies = {c.name: c.value or "" for c in person.jar}
    refused = await WsClient.connect(vmdash_demo.url, cookies)
    try:
        assert await refused.receive(timeout=5) is None
        assert refused.close_code == 4401
    finally:
        await refused.close()
    assert await _serial_state(vmdash_demo, cookies) == "denied"

    code = f"{TOTP(key).token():06d}"
    status, headers, _body = person.request("/accounts/code/", {"code": code, "next": "/"})
    assert status == 302 and headers["Location"] == "/"
    cookies = {c.name: c.value or "" for c in person.jar}
    allowed = await WsClient.connect(vmdash_demo.url, cookies)
    try:
        await allowed.subscribe([{"region": "domain-table"}])
        await allowed.drain(quiet=1.0)
        assert allowed.close_code is None
    finally:
        await allowed.close()
    # Past the door now: the test driver's VM has no serial console to open.
    assert await _serial_state(vmdash_demo, cookies) != "denied"


async def _serial_state(srv: Vmdash, cookies: dict[str, str]) -> str:
    """The state the serial console socket of the demo host's VM says first."""
    client = await WsClient.connect(srv.url, cookies, path="/ws/hosts/demo/domains/test/serial/")
    try:
        frame = await client.receive(timeout=10)
        assert frame is not None, f"closed with {client.close_code} before a word"
        return str(json.loads(frame.text)["state"])
    finally:
        await client.close()
