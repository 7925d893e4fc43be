"""The VM page's graphs follow what the guest really does (issue 13, done-when 1).

A person opens the running test guest's page and its serial console, starts a
busy loop in the guest, watches the CPU graph rise, kills the loop and sees
it fall. The figures come from the sampler's bulk reads of the real libvirtd
(virConnectGetAllDomainStats), checked against libvirt's own cpu.time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import libvirt
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import ConsoleGuest, ConsoleServer
from tests.console.test_browser import TERMINAL_TEXT, open_page, vm_url
from tests.realhost import fresh_conn, wait_until

pytestmark = [pytest.mark.libvirtd, pytest.mark.browser]

CPU_NOW = "document.querySelector('[data-chart=cpu] [data-now]').dataset.value"


def cpu_shown(page: Page) -> float | None:
    value = page.evaluate(CPU_NOW)
    return float(value) if value else None


def wait_for_cpu(page: Page, ok: Callable[[float], bool], timeout: float = 40) -> float:
    """The CPU figure the page shows, once `ok` holds (polled from here: the
    page's CSP allows no eval, so no wait_for_function)."""
    deadline = time.monotonic() + timeout
    shown = None
    while time.monotonic() < deadline:
        shown = cpu_shown(page)
        if shown is not None and ok(shown):
            return shown
        time.sleep(0.25)
    raise AssertionError(f"the CPU graph shows {shown} after {timeout:g} s")


def terminal_has(page: Page, needle: str, timeout: float = 30) -> None:
    wait_until(lambda: needle in str(page.eval_on_selector(".xterm", TERMINAL_TEXT)), timeout,
               f"{needle!r} on the serial console")  # fmt: skip


def libvirt_cpu_percent(name: str, seconds: float = 3.0) -> float:
    """What libvirt says, without vmdash: cpu.time over a few seconds, per vCPU."""
    dom = fresh_conn().lookupByName(name)
    flags = libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_VCPU
    first = dom.connect().domainListGetStats([dom], flags)[0][1]
    t0 = time.monotonic()
    time.sleep(seconds)
    second = dom.connect().domainListGetStats([dom], flags)[0][1]
    used = second["cpu.time"] - first["cpu.time"]
    return 100.0 * used / ((time.monotonic() - t0) * 1e9 * second["vcpu.current"])


def test_the_cpu_graph_rises_with_a_busy_loop_in_the_guest_and_falls_when_it_ends(
    browser: Browser, console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    graphs = open_page(browser, console_server)
    serial = open_page(browser, console_server)
    try:
        graphs.goto(vm_url(console_server, running_a, "")[:-1])
        expect(graphs.locator("[data-charts]")).to_be_visible()
        quiet = wait_for_cpu(graphs, lambda v: v < 40)

        serial.goto(vm_url(console_server, running_a, "serial"))
        expect(serial.locator("[data-console=serial]")).to_have_attribute("data-state", "connected")
        serial.locator(".xterm").click()
        serial.keyboard.press("Enter")
        terminal_has(serial, "vmdash-guest# ")
        serial.keyboard.type("while :; do :; done &")
        serial.keyboard.press("Enter")
        busy = wait_for_cpu(graphs, lambda v: v > 60)
        graphs.screenshot(path=str(console_server.data / "graphs-busy.png"), full_page=True)
        # libvirt agrees (a busy TCG vCPU gets ~70-100 % of a core on this
        # two-core host while the other worker runs)
        assert libvirt_cpu_percent(running_a.name) > 50
        assert int(graphs.get_attribute("[data-charts]", "data-points") or 0) >= 3
        serial.keyboard.type("kill $!; echo loop-$((40+2))-ended")
        serial.keyboard.press("Enter")
        terminal_has(serial, "\nloop-42-ended")
        calm = wait_for_cpu(graphs, lambda v: v < 40)
        assert libvirt_cpu_percent(running_a.name) < 40
        assert quiet < busy and calm < busy
    finally:
        # Never leave a spinning guest to the other console tests.
        serial.keyboard.type("kill %1 2>/dev/null; kill $! 2>/dev/null")
        serial.keyboard.press("Enter")
        graphs.context.close()
        serial.context.close()
