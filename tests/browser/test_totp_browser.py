"""Two-factor login as a person does it in Chromium: enrol on their own page by
reading the key off the screen (as an app would scan it), keep the recovery
codes, log out, log in again with a code — and the live WebSocket connects
only once the code is given. Zero CSP violations on the way."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.servers import Vmdash, start_vmdash

pytestmark = pytest.mark.browser

PERSON = ("tessa", "tessa-pw-123456")
SHOTS = Path("/tmp/vmdash-shots")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vmdash]:
    srv = start_vmdash(tmp_path_factory.mktemp("vmdash-totp"), hosts="demo=test:///default")
    srv.manage(
        "shell", "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user({PERSON[0]!r}, password={PERSON[1]!r})",
    )  # fmt: skip
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def tab(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(15_000)
    refused: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text:
            refused.append(msg.text)

    page.on("console", on_console)
    yield page, refused
    context.close()


def code_for(secret: str, steps: int = 0) -> str:
    key = base64.b32decode(secret.replace(" ", "") + "=" * (-len(secret.replace(" ", "")) % 8))
    totp = TOTP(key)
    totp.time = time.time() + steps * 30
    return f"{totp.token():06d}"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"totp-{name}.png"))


def password_step(page: Page, url: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", PERSON[0])
    page.fill("input[name=password]", PERSON[1])
    page.click("button[type=submit]")


def test_a_person_enrols_then_logs_in_with_a_code(
    tab: tuple[Page, list[str]], demo: Vmdash
) -> None:
    page, refused = tab
    password_step(page, demo.url)
    page.wait_for_url(f"{demo.url}/")
    page.goto(f"{demo.url}/me/")
    page.get_by_role("link", name="Set up two-factor login").click()
    page.wait_for_url(f"{demo.url}/me/two-factor/")
    qr = page.locator("img.qr")
    expect(qr).to_be_visible()
    assert page.evaluate("img => img.naturalWidth", qr.element_handle()) > 100
    secret = page.locator("#secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7 ]{32,}", secret)
    shot(page, "enrol")
    page.fill("input[name=code]", code_for(secret))
    page.get_by_role("button", name="Turn on two-factor login").click()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    shot(page, "recovery-codes")
    page.get_by_role("link", name="I have kept them").click()
    page.wait_for_url(f"{demo.url}/")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r".*/accounts/login/"))
    password_step(page, demo.url)
    page.wait_for_url(re.compile(r".*/accounts/code/\?next="))
    expect(page.locator("#live")).to_have_count(0)  # no live socket before the code
    shot(page, "code")
    page.fill("input[name=code]", code_for(secret, steps=1))  # the next one: each works once
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{demo.url}/")
    expect(page.locator("#live")).to_have_attribute("data-state", "connected")
    page.goto(f"{demo.url}/me/two-factor/")
    expect(page.locator("#codes-left")).to_have_text("10")
    shot(page, "manage")
    assert refused == []


def test_a_wrong_code_keeps_the_person_on_the_code_page(
    tab: tuple[Page, list[str]], demo: Vmdash
) -> None:
    page, _refused = tab
    demo.manage(
        "shell", "-c",
        "from django.contrib.auth.models import User; "
        "from django_otp.plugins.otp_totp.models import TOTPDevice; "
        "u = User.objects.create_user('ulla', password='ulla-pw-123456'); "
        "TOTPDevice.objects.create(user=u, name='phone', confirmed=True)",
    )  # fmt: skip
    page.goto(f"{demo.url}/accounts/login/")
    page.fill("input[name=username]", "ulla")
    page.fill("input[name=password]", "ulla-pw-123456")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/accounts/code/"))
    page.fill("input[name=code]", "000000")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    page.goto(f"{demo.url}/domains/")
    assert "/accounts/code/" in page.url
