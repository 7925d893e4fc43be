"""An admin gives dora rights on one VM through its Access tab, in Chromium.

dora first views the VM only (one row in her list, no buttons, no console);
then a Console user grant that ends about 20 seconds later lets her open the
graphical console, and the console closes by itself when the grant ends.
Real server and console proxy, the real libvirtd's test guest, two browser
contexts (the admin's and dora's).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ADMIN, login
from tests.console.conftest import ConsoleGuest, ConsoleServer

pytestmark = [pytest.mark.libvirtd, pytest.mark.browser]

DORA = ("dora", "dora-access-tab-pw-1")
LASTS = 20  # seconds the console grant lasts
ENDS_WITHIN = 5.0  # seconds after its end by which the console must have closed


def _context_page(browser: Browser, server: ConsoleServer, who: tuple[str, str]) -> Page:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(20_000)
    login(page, server.url, *who)
    return page


def _give(admin: Page, role: str, until: datetime | None = None) -> None:
    """On the Access tab already open: give `role` to dora, maybe until a time."""
    form = admin.locator("form.access-add")
    form.locator("select[name=user]").select_option(label=DORA[0])
    form.locator("select[name=role]").select_option(label=role)
    if until is not None:
        # The server's time zone (UTC in the test server), to the second.
        form.locator("input[name=expires_at]").fill(until.strftime("%Y-%m-%dT%H:%M:%S"))
    form.get_by_role("button", name="Give").click()


@pytest.fixture
def dora(console_server: ConsoleServer) -> None:
    console_server.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"User.objects.filter(username={DORA[0]!r}).delete()\n"
        f"User.objects.create_user({DORA[0]!r}, password={DORA[1]!r})\n",
    )


def test_an_admin_grants_dora_one_vm_then_a_console_that_closes_when_it_ends(
    browser: Browser, console_server: ConsoleServer, running_a: ConsoleGuest, dora: None
) -> None:
    url, vm = console_server.url, running_a.name
    admin = _context_page(browser, console_server, ADMIN)
    admin.goto(f"{url}/hosts/local/domains/{vm}/")
    admin.locator("nav.tabs [data-tab=access]").click()
    expect(admin.locator("h1")).to_have_text(f"Access to VM {vm}")
    _give(admin, "Viewer")
    dora_row = admin.locator("tr[data-person=dora]")
    expect(dora_row.locator("[data-action]")).to_have_text(["view"])
    expect(dora_row).to_contain_text("Viewer · this VM")
    admin.screenshot(path="/tmp/h6-access-tab.png", full_page=True)

    page = _context_page(browser, console_server, DORA)
    page.goto(f"{url}/domains/")
    rows = page.locator("tr[data-live=domain-row]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-name", vm)
    expect(rows.first.locator("button, [data-op]")).to_have_count(0)
    page.goto(f"{url}/hosts/local/domains/{vm}/")
    expect(page.locator(".vm-head [data-op]")).to_have_count(0)
    expect(page.locator("[data-tab=access]")).to_have_count(0)
    console = page.goto(f"{url}/hosts/local/domains/{vm}/console/")
    assert console is not None and console.status == 403  # no console for a Viewer

    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LASTS)
    _give(admin, "Console user", ends)
    expect(dora_row.locator("[data-action=console]")).to_have_count(1)
    # Other console tests share this server and VM (tests/security/test_grant_expiry.py
    # leaves tess's ended grant): dora's row is the one that counts.
    dora_console = admin.locator("tr[data-grant]:not([data-expired])", has_text="Console user")
    dora_console = dora_console.filter(has_text="dora")
    expect(dora_console).to_contain_text(ends.strftime("%H:%M:%S"))

    page.goto(f"{url}/hosts/local/domains/{vm}/console/")
    screen = page.locator("[data-console=vnc]")
    expect(screen).to_have_attribute("data-state", "connected")
    page.wait_for_selector("[data-console=vnc][data-first-frame-ms]")
    left = ends.timestamp() - time.time()
    assert left > 2, "the console took longer to open than the grant lasts"
    expect(screen).to_have_attribute("data-state", "denied", timeout=(left + ENDS_WITHIN) * 1000)
    closed_after = time.time() - ends.timestamp()
    assert -1 < closed_after < ENDS_WITHIN, closed_after
    print(f"dora's console closed {closed_after:.2f} s after her grant ended")
    expect(page.locator("[data-role=status]")).to_have_text("Access denied")
    expect(page.locator("[data-role=message]")).to_contain_text(
        "You may no longer open the console of this VM"
    )
    # The admin's tab shows the ended grant greyed.
    admin.reload()
    ended = admin.locator("tr[data-expired]", has_text="Console user").filter(has_text="dora")
    expect(ended).to_contain_text("ended")
    admin.context.close()
    page.context.close()
