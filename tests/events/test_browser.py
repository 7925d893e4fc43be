"""A person watches the VM list in Chromium while someone else uses libvirt
directly: the page follows without a reload, and says when it lost the server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import login
from tests.events.conftest import Deployment, VmdashProcess
from tests.realhost import start_domain

pytestmark = [pytest.mark.browser, pytest.mark.libvirtd]


@pytest.fixture
def web(deployment: Any) -> VmdashProcess:
    """A vmdash of its own (embedded events), which this test stops and starts."""
    d: Deployment = deployment()
    return d.web()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f'tr[data-name="{name}"]')


def test_the_vm_list_follows_changes_made_outside_vmdash(
    page: Page, web: VmdashProcess, make_guest: Any
) -> None:
    login(page, web.url)
    page.goto(f"{web.url}/domains/")
    indicator = page.locator("#live")
    expect(indicator).to_have_attribute("data-state", "connected", timeout=15_000)
    expect(indicator).to_be_visible()
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    guest = make_guest()  # defined elsewhere: it appears
    expect(row(page, guest.name).locator(".badge")).to_have_text("shut off")
    expect(row(page, guest.name).locator('[data-op="start"]')).to_be_visible()

    start_domain(guest.dom())
    expect(row(page, guest.name).locator(".badge")).to_have_text("running")
    expect(row(page, guest.name).locator('[data-op="shutdown"]')).to_be_visible()
    expect(row(page, guest.name).locator('[data-op="start"]')).to_have_count(0)

    guest.dom().destroy()
    expect(row(page, guest.name).locator(".badge")).to_have_text("shut off")
    expect(row(page, guest.name).locator('[data-op="start"]')).to_be_visible()
    expect(row(page, guest.name).locator('[data-op="force-off"]')).to_have_count(0)
    expect(page.locator("#toasts")).to_contain_text(f"{guest.name} was forced off outside vmdash")
    assert page.evaluate("window.sameDocument") is True

    web.stop()
    expect(indicator).to_have_attribute("data-state", "reconnecting", timeout=15_000)
    expect(indicator).to_contain_text("reconnecting")
    start_domain(guest.dom())  # while the page cannot hear about it

    web.start()
    expect(indicator).to_have_attribute("data-state", "connected", timeout=30_000)
    expect(row(page, guest.name).locator(".badge")).to_have_text("running", timeout=15_000)
    assert page.evaluate("window.sameDocument") is True
