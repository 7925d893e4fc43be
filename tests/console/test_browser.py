"""Consoles as a person uses them: Chromium, the real server and proxy, real guests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import login
from tests.console.conftest import ConsoleGuest, ConsoleServer
from tests.guest import GUEST_BANNER, VGA_BLUE
from tests.realhost import wait_until

pytestmark = [pytest.mark.libvirtd, pytest.mark.browser]

# Fraction of the canvas that is exactly the guest's VGA blue (0, 0, 168).
BLUE_SHARE = """(canvas) => {
  const [R, G, B] = BLUE;
  const { width, height } = canvas;
  const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  let blue = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] === R && data[i + 1] === G && data[i + 2] === B) blue++;
  }
  return blue / (width * height);
}""".replace("BLUE", str(list(VGA_BLUE)))

TERMINAL_TEXT = "el => el.closest('[data-console=serial]').vmdash.lines().join('\\n')"


def open_page(browser: Browser, server: ConsoleServer) -> Page:
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    login(page, server.url)
    return page


@pytest.fixture
def page(browser: Browser, console_server: ConsoleServer) -> Iterator[Page]:
    pg = open_page(browser, console_server)
    yield pg
    pg.context.close()


def vm_url(server: ConsoleServer, guest: ConsoleGuest, tab: str) -> str:
    return f"{server.url}/hosts/local/domains/{guest.name}/{tab}/"


def wait_for_text(page: Page, selector: str, needle: str, timeout: float = 30_000) -> str:
    page.wait_for_function(
        "([sel, needle]) => document.querySelector(sel)"
        "  .closest('[data-console=serial]').vmdash.lines().join('\\n').includes(needle)",
        arg=[selector, needle],
        timeout=timeout,
    )
    return str(page.eval_on_selector(selector, TERMINAL_TEXT))


def test_a_person_sees_the_screen_and_uses_the_serial_console(
    page: Page, console_server: ConsoleServer, guest_a: ConsoleGuest
) -> None:
    # Boot the guest while its serial console is open, so the banner arrives live.
    guest_a.stop()
    guest_a.start(wait_banner=False)
    page.goto(vm_url(console_server, guest_a, "serial"))
    expect(page.locator("[data-console=serial]")).to_have_attribute("data-state", "connected")
    wait_for_text(page, ".xterm", GUEST_BANNER, timeout=60_000)
    wait_for_text(page, ".xterm", "vmdash-guest# ")
    page.locator(".xterm").click()
    page.keyboard.type("echo vmdash-$((6*7))")
    page.keyboard.press("Enter")
    text = wait_for_text(page, ".xterm", "\nvmdash-42")
    assert "vmdash-42" in text.splitlines()

    page.get_by_role("link", name="Console", exact=True).click()
    console = page.locator("[data-console=vnc]")
    expect(console).to_have_attribute("data-state", "connected")
    page.wait_for_selector("[data-console=vnc][data-first-frame-ms]")
    canvas = page.locator("[data-role=screen] canvas")
    page.wait_for_function(
        f"(c) => ({BLUE_SHARE})(c) > 0.5", arg=canvas.element_handle(), timeout=20_000
    )
    assert canvas.evaluate(BLUE_SHARE) > 0.5
    expect(page.locator(".viewers")).to_contain_text("admin (you)")
    expect(page.locator(".viewers")).to_contain_text("graphical console")


def test_the_console_waits_for_the_vm_and_reconnects_by_itself(
    page: Page, console_server: ConsoleServer, running_b: ConsoleGuest
) -> None:
    # guest b has a VNC password: the page never asks for it.
    page.goto(vm_url(console_server, running_b, "console"))
    console = page.locator("[data-console=vnc]")
    expect(console).to_have_attribute("data-state", "connected")
    page.wait_for_selector("[data-console=vnc][data-first-frame-ms]")
    assert "pw-4-vnc" not in page.content()
    running_b.stop()  # forced off through libvirt, not through vmdash
    expect(console).to_have_attribute("data-state", "waiting")
    expect(page.locator("[data-role=status]")).to_have_text("Waiting for the VM to start…")
    expect(page.locator("[data-role=message]")).to_contain_text("The VM is shut off")
    expect(page.get_by_role("button", name="Stop waiting")).to_be_visible()
    page.evaluate(
        "document.querySelector('[data-console=vnc]').removeAttribute('data-first-frame-ms')"
    )
    running_b.start(wait_banner=False)  # through libvirt; nobody clicks anything
    expect(console).to_have_attribute("data-state", "connected", timeout=30_000)
    page.wait_for_selector("[data-console=vnc][data-first-frame-ms]", timeout=30_000)


def test_stop_waiting_stops_the_reconnect(
    page: Page, console_server: ConsoleServer, running_b: ConsoleGuest
) -> None:
    page.goto(vm_url(console_server, running_b, "console"))
    console = page.locator("[data-console=vnc]")
    expect(console).to_have_attribute("data-state", "connected")
    running_b.stop()
    expect(console).to_have_attribute("data-state", "waiting")
    page.get_by_role("button", name="Stop waiting").click()
    expect(console).to_have_attribute("data-state", "not-running")
    running_b.start(wait_banner=False)
    page.wait_for_timeout(3000)
    expect(console).to_have_attribute("data-state", "not-running")
    page.get_by_role("button", name="Reconnect").click()
    expect(console).to_have_attribute("data-state", "connected")


def test_the_console_says_when_the_proxy_is_unreachable(
    browser: Browser, server_without_proxy: ConsoleServer, running_a: ConsoleGuest
) -> None:
    page = open_page(browser, server_without_proxy)
    try:
        page.goto(vm_url(server_without_proxy, running_a, "console"))
        expect(page.locator("[data-console=vnc]")).to_have_attribute("data-state", "proxy-down")
        expect(page.locator("[data-role=status]")).to_have_text("Console proxy unreachable")
        expect(page.locator("[data-role=message]")).to_contain_text(
            "The console proxy does not answer"
        )
        expect(page.get_by_role("button", name="Reconnect")).to_be_visible()
    finally:
        page.context.close()


def test_a_busy_serial_console_offers_take_over(
    browser: Browser, page: Page, console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    page.goto(vm_url(console_server, running_a, "serial"))
    first = page.locator("[data-console=serial]")
    expect(first).to_have_attribute("data-state", "connected")

    other = open_page(browser, console_server)
    try:
        other.goto(vm_url(console_server, running_a, "serial"))
        second = other.locator("[data-console=serial]")
        expect(second).to_have_attribute("data-state", "busy")
        expect(other.locator("[data-role=message]")).to_contain_text("in use by admin")
        other.get_by_role("button", name="Take over").click()
        expect(second).to_have_attribute("data-state", "connected")
        expect(first).to_have_attribute("data-state", "taken-over")
        expect(page.locator("[data-role=message]")).to_contain_text("admin took over")
        expect(page.get_by_role("button", name="Take it back")).to_be_visible()
    finally:
        other.context.close()


def test_a_vm_without_devices_gets_clear_messages(
    page: Page, console_server: ConsoleServer, guest_bare: ConsoleGuest
) -> None:
    bare = guest_bare
    page.goto(vm_url(console_server, bare, "console"))
    expect(page.locator("[data-console=vnc]")).to_have_attribute("data-state", "no-graphics")
    expect(page.locator("[data-role=message]")).to_contain_text("has no graphical display")
    page.goto(vm_url(console_server, bare, "serial"))
    expect(page.locator("[data-console=serial]")).to_have_attribute("data-state", "no-serial")
    expect(page.locator("[data-role=message]")).to_contain_text("has no serial console")


def test_console_tools_paste_screenshot_view_only_and_pop_out(
    page: Page, console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    page.goto(vm_url(console_server, running_a, "console"))
    console = page.locator("[data-console=vnc]")
    expect(console).to_have_attribute("data-state", "connected")

    # Paste as keys: typed on the guest's screen (tty1), whose shell writes to ttyS0.
    page.get_by_role("button", name="Paste as keys…").click()
    page.locator("[data-role=paste-text]").fill("echo vmdash-pasted-$((6*7)) >/dev/ttyS0\n")
    page.get_by_role("button", name="Type it").click()
    wait_until(lambda: "vmdash-pasted-42" in running_a.serial(), 30, "pasted keys")

    with page.expect_download() as download:
        page.get_by_role("button", name="Screenshot").click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.get_by_label("View only").check()
    expect(page.locator("[data-role=status]")).to_have_text("Connected (view only)")
    expect(page.get_by_role("button", name="Paste as keys…")).to_be_disabled()
    expect(page.locator(".viewers")).to_contain_text("view only")

    with page.context.expect_page() as popped:
        page.get_by_role("button", name="Pop out").click()
    window = popped.value
    expect(window.locator("[data-console=vnc]")).to_have_attribute("data-state", "connected")
    expect(console).to_have_attribute("data-state", "popped")
    window.close()
