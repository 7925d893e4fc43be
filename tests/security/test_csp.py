"""Content-Security-Policy: every page carries it, no template needs it loosened
(no inline script, handler or style), and in Chromium the pages that do the
most — the VNC and serial consoles, the VM list's htmx actions, live updates —
run with zero violations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.browser.conftest import browser as browser  # the Chromium fixture, shared
from tests.browser.conftest import login
from tests.console.conftest import ConsoleGuest, ConsoleServer
from tests.servers import ADMIN as SERVER_ADMIN
from tests.servers import Vmdash, start_vmdash
from vmdash.models import Host

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_DIRS = ["templates", "vmdash", "hosts", "domains", "networks", "storage", "people"]
TEMPLATE_DIRS += ["stats"]  # every app with templates; a new one is found below
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
HANDLER = re.compile(r"""\s(on[a-z]+|hx-on[:\w-]*)\s*=\s*["']""", re.I)
STYLE_ATTR = re.compile(r"""\sstyle\s*=\s*["']""", re.I)


def _templates() -> list[Path]:
    found = [p for d in TEMPLATE_DIRS for p in (REPO / d).rglob("*.html") if (REPO / d).exists()]
    return sorted(set(found))


def test_every_app_with_templates_is_searched() -> None:
    with_templates = {p.relative_to(REPO).parts[0] for p in REPO.glob("*/templates")}
    with_templates |= {"vmdash"} if (REPO / "vmdash").exists() else set()
    assert with_templates <= set(TEMPLATE_DIRS), with_templates - set(TEMPLATE_DIRS)
    assert len(_templates()) > 50


@pytest.mark.parametrize(
    ("pattern", "what"),
    [(INLINE_SCRIPT, "an inline <script>"), (HANDLER, "an inline event handler"),
     (STYLE_ATTR, "an inline style= attribute")],
)  # fmt: skip
def test_no_template_needs_the_policy_loosened(pattern: re.Pattern[str], what: str) -> None:
    offenders = [
        f"{p.relative_to(REPO)}:{text[: m.start()].count(chr(10)) + 1}"
        for p in _templates()
        for text in [p.read_text()]
        for m in pattern.finditer(text)
    ]
    assert offenders == [], f"{what} in {offenders}"


PAGES = [
    "/", "/domains/", "/hosts/", "/hosts/lab/", "/hosts/lab/domains/web1/",
    "/hosts/lab/domains/web1/devices/", "/hosts/lab/domains/web1/console/",
    "/hosts/lab/domains/web1/serial/", "/hosts/demo/storage/", "/hosts/demo/storage/default-pool/",
    "/hosts/demo/networks/", "/hosts/demo/networks/default/", "/users/", "/groups/", "/me/",
    "/me/two-factor/", "/access/", "/audit/",
]  # fmt: skip


def _directives(header: str) -> dict[str, list[str]]:
    parts = (d.strip().split() for d in header.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_every_page_carries_the_policy(lab: Host, alice: User, path: str) -> None:
    Host.objects.create(slug="demo", name="Demo", uri="test:///default")
    client = Client()
    client.force_login(alice)
    response = client.get(path)
    assert response.status_code == 200, path
    policy = _directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    # xterm.js writes <style> elements of its own (vmdash.middleware.INLINE_STYLE_PAGES).
    serial = path.endswith("/serial/")
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"] if serial else ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    # 'self' covers ws: to this origin; the console proxy listens on a port of its own.
    assert policy["connect-src"] == ["'self'", "ws://testserver:6080/"]
    assert not INLINE_SCRIPT.search(response.content.decode())


@pytest.mark.django_db
def test_the_login_page_carries_the_policy_too() -> None:
    response = Client().get("/accounts/login/")
    assert "script-src 'self'" in response["Content-Security-Policy"]


# --- Chromium: what a person's browser refuses -----------------------------------

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def watched(browser: Browser, console_server: ConsoleServer) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(20_000)
    refused: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text or msg.text.startswith("Refused to"):
            refused.append(msg.text)

    page.on("console", on_console)
    login(page, console_server.url)
    yield page, refused
    context.close()


def _violations(page: Page, refused: list[str]) -> list[str]:
    return [*refused, *page.evaluate("window.__csp")]


@pytest.mark.libvirtd
@pytest.mark.browser
def test_the_consoles_and_the_vm_list_run_without_a_violation(
    watched: tuple[Page, list[str]], console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    page, refused = watched
    base = f"{console_server.url}/hosts/local/domains/{running_a.name}"

    page.goto(f"{base}/console/")
    console = page.locator("[data-console=vnc]")
    expect(console).to_have_attribute("data-state", "connected")
    page.wait_for_selector("[data-console=vnc][data-first-frame-ms]")
    assert _violations(page, refused) == [], "VNC console"

    page.goto(f"{base}/serial/")
    expect(page.locator("[data-console=serial]")).to_have_attribute("data-state", "connected")
    page.wait_for_timeout(500)
    assert _violations(page, refused) == [], "serial console"

    page.goto(f"{console_server.url}/domains/?q={running_a.name}")
    expect(page.locator("#live")).to_have_attribute("data-state", "connected")
    row = page.locator("tr", has_text=running_a.name)
    row.locator("[data-op=pause]").click()  # an htmx POST; the row comes back paused
    expect(row.locator("[data-op=resume]")).to_be_visible()
    row.locator("[data-op=resume]").click()
    expect(row.locator("[data-op=pause]")).to_be_visible()
    page.screenshot(path=str(console_server.data / "csp-domains.png"))
    assert _violations(page, refused) == [], "VM list"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vmdash]:
    srv = start_vmdash(tmp_path_factory.mktemp("vmdash-csp"), hosts="demo=test:///default")
    try:
        yield srv
    finally:
        srv.stop()


DEMO_PAGES = [
    "/", "/domains/", "/hosts/", "/hosts/demo/", "/hosts/demo/domains/test/",
    "/hosts/demo/domains/test/devices/", "/hosts/demo/domains/test/xml/",
    "/hosts/demo/storage/", "/hosts/demo/storage/default-pool/",
    "/hosts/demo/storage/default-pool/upload/", "/hosts/demo/networks/",
    "/hosts/demo/networks/default/", "/users/", "/groups/", "/me/", "/me/two-factor/",
    "/access/", "/audit/", "/admin/",
]  # fmt: skip


@pytest.mark.browser
def test_the_pages_run_without_a_violation_in_chromium(
    browser: Browser, demo_server: Vmdash
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    try:
        login(page, demo_server.url, *SERVER_ADMIN)
        for path in DEMO_PAGES:
            response = page.goto(demo_server.url + path)
            assert response is not None and response.status == 200, path
            page.wait_for_load_state("networkidle")
            assert _violations(page, refused) == [], path
    finally:
        context.close()
