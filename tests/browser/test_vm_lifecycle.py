"""A person in Chromium: log in, see the local VMs, start a real guest,
shut it down, start it again and force it off. libvirt itself is the judge."""

from __future__ import annotations

import libvirt
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, login
from tests.realhost import start_domain, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.libvirtd]


def row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f'tr[data-name="{name}"]')


def test_a_person_starts_and_stops_a_real_guest(page: Page, server: Server, make_guest) -> None:
    guest = make_guest()
    login(page, server.url)
    expect(page.locator("h1")).to_have_text("Overview")
    page.click("text=Virtual machines")
    expect(row(page, guest.name)).to_be_visible()
    expect(row(page, guest.name).locator(".badge")).to_have_text("shut off")

    row(page, guest.name).locator('[data-op="start"]').click()
    expect(row(page, guest.name).locator(".badge")).to_have_text("running")
    assert guest.state() == libvirt.VIR_DOMAIN_RUNNING
    expect(row(page, guest.name).locator('[data-op="start"]')).to_have_count(0)

    guest.wait_for_banner()
    row(page, guest.name).locator('[data-op="shutdown"]').click()
    wait_until(lambda: guest.state() == libvirt.VIR_DOMAIN_SHUTOFF, 30, "ACPI shutdown")
    page.reload()
    expect(row(page, guest.name).locator(".badge")).to_have_text("shut off")

    row(page, guest.name).locator('[data-op="start"]').click()
    expect(row(page, guest.name).locator(".badge")).to_have_text("running")
    page.once("dialog", lambda dialog: dialog.accept())
    row(page, guest.name).locator('[data-op="force-off"]').click()
    # QEMU is gone only when PID 1 here reaps it (every 1-2 s, longer when the
    # host is busy): wait for libvirt, then the row must follow.
    wait_until(lambda: guest.state() == libvirt.VIR_DOMAIN_SHUTOFF, 30, "force off")
    expect(row(page, guest.name).locator(".badge")).to_have_text("shut off", timeout=10_000)
    assert guest.dom().state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED


def test_the_detail_page_works_without_javascript(browser, server: Server, make_guest) -> None:  # type: ignore[no-untyped-def]
    guest = make_guest()
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        login(page, server.url)
        page.goto(f"{server.url}/hosts/local/domains/{guest.name}/")
        page.locator('[data-op="start"]').click()
        expect(page.locator(".vm-head .badge").first).to_have_text("running")
        expect(page.locator(".alert-success")).to_contain_text(f"Start: done for VM '{guest.name}'")
        assert guest.state() == libvirt.VIR_DOMAIN_RUNNING
        page.locator('[data-op="force-off"]').click()  # a link to the confirmation page
        expect(page.locator("h1")).to_contain_text(f"Force off VM “{guest.name}”?")
        assert guest.state() == libvirt.VIR_DOMAIN_RUNNING
        page.click(f"text=Force off {guest.name}")
        expect(page.locator(".vm-head .badge").first).to_have_text("shut off")
        assert guest.state() == libvirt.VIR_DOMAIN_SHUTOFF
    finally:
        context.close()


def test_a_refused_action_shows_a_message_in_the_page(
    page: Page, server: Server, make_guest
) -> None:
    guest = make_guest()
    # Cut the live stream so the row stays as loaded (live updates would
    # otherwise replace the Start button at once): the click then races
    # with a change made elsewhere, as it does when events lag.
    page.route_web_socket("**/ws/events/**", lambda ws: None)
    login(page, server.url)
    page.goto(f"{server.url}/domains/?q={guest.name}")
    expect(row(page, guest.name).locator('[data-op="start"]')).to_be_visible()
    start_domain(guest.dom())  # someone else starts it behind our back
    row(page, guest.name).locator('[data-op="start"]').click()
    expect(page.locator("#messages .alert")).to_contain_text(
        f"Cannot start VM '{guest.name}': it is running."
    )
