"""A person uses the production deployment through nginx: two web workers on
PostgreSQL and Redis, one events process, the console proxy (docs/deploy.md).

Which worker holds a page's live connection is read from the machine, not
from vmdash: nginx keeps no idle upstream connections, so an established TCP
connection from nginx to a worker is a WebSocket it relays.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest
from django.core import signing
from playwright.sync_api import Browser, BrowserContext, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import ADMIN
from tests.console.wsclient import Refused, WebSocket
from tests.deploy.conftest import METRICS_TOKEN, Stack, fetch, fetch_all, fetch_headers
from tests.realhost import start_domain, wait_until
from vmdash.console.tickets import _SALT as SALT

pytestmark = [pytest.mark.browser, pytest.mark.libvirtd]


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    made: list[BrowserContext] = []
    yield made
    for context in made:
        context.close()


def login_through_nginx(browser: Browser, stack: Stack, made: list[BrowserContext]) -> Page:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1366, "height": 800})
    made.append(context)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{stack.url}/accounts/login/")
    page.fill("input[name=username]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    try:
        page.wait_for_url(f"{stack.url}/")
    except PlaywrightTimeout:
        # On loaded bare-machine runs Chromium has twice dropped the form's POST
        # after about a second (nginx logged 499; the worker logged the login
        # as done a moment later, its answer had nowhere to go): once it stayed
        # on the filled form, once it showed its own error page. A person
        # presses the button again, or opens the login page again.
        if page.url.startswith("chrome-error:"):
            page.goto(f"{stack.url}/accounts/login/")
            page.fill("input[name=username]", ADMIN[0])
            page.fill("input[name=password]", ADMIN[1])
        assert page.url.endswith("/accounts/login/"), page.url
        page.click("button[type=submit]")
        page.wait_for_url(f"{stack.url}/")
    return page


def open_list(page: Page, stack: Stack) -> int:
    """Open the VM list and wait for its live connection; the port of the
    worker that holds it."""
    before = stack.worker_sockets()
    page.goto(f"{stack.url}/domains/")
    expect(page.locator("#live")).to_have_attribute("data-state", "connected")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    grew: list[int] = []

    def one_more() -> bool:  # exactly one connection that was not there before
        now = stack.worker_sockets()
        grew[:] = [port for port in now for _ in now[port] - before[port]]
        return len(grew) == 1

    wait_until(one_more, 10, "the page's WebSocket to show on one worker")
    return grew[0]


def row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f'tr[data-name="{name}"]')


def upstream_of(stack: Stack, request: str) -> int:
    """The worker nginx sent the last `request` ("POST /path") to, from its log."""
    lines = [line for line in stack.access_log() if f'"{request} ' in line]
    assert lines, f"nginx logged no {request!r}"
    found = re.search(r"upstream=127\.0\.0\.1:(\d+)", lines[-1])
    assert found, lines[-1]
    return int(found.group(1))


def test_a_person_works_through_nginx_on_two_workers_and_one_may_die(
    browser: Browser, stack: Stack, contexts: list[BrowserContext], make_guest: Any
) -> None:
    guest = make_guest()
    # Two people, each on the VM list, whose live connections nginx gave to
    # different workers (a third page is opened when round robin put the
    # first two on one).
    pages: dict[int, Page] = {}
    for _ in range(6):
        page = login_through_nginx(browser, stack, contexts)
        pages.setdefault(open_list(page, stack), page)
        if len(pages) == 2:
            break
        # Round robin over two workers: a page that makes an even number of
        # requests puts every live connection on the same one. One request
        # more moves the next page's to the other.
        fetch(f"{stack.url}/accounts/login/")
    assert len(pages) == 2, "nginx gave every live connection to one worker"
    (port_a, a), (port_b, b) = pages.items()
    for page in (a, b):
        expect(row(page, guest.name).locator(".badge")).to_have_text("shut off")

    # A starts the VM; both lists follow, the one on the other worker included.
    row(a, guest.name).locator('[data-op="start"]').click()
    for page in (a, b):
        expect(row(page, guest.name).locator(".badge")).to_have_text("running", timeout=20_000)
    assert guest.state() == libvirt.VIR_DOMAIN_RUNNING
    posted_to = upstream_of(stack, f"POST /hosts/local/domains/{guest.name}/start/")
    assert posted_to in (port_a, port_b)
    # The page whose live connection is on the worker that did not take the
    # POST saw the change come in, without reloading.
    other = b if posted_to == port_a else a
    assert other.evaluate("window.sameDocument") is True

    # B opens the console: the relay through nginx's /websockify.
    guest.wait_for_banner()
    b.goto(f"{stack.url}/hosts/local/domains/{guest.name}/console/")
    console = b.locator("[data-console=vnc]")
    expect(console).to_have_attribute("data-state", "connected", timeout=30_000)

    # A's worker dies. A's live connection comes back through the other
    # worker, and the next change reaches it; B's console stays open.
    stack.kill_web(port_a)
    live = a.locator("#live")
    expect(live).not_to_have_attribute("data-state", "connected", timeout=10_000)
    expect(live).to_have_attribute("data-state", "connected", timeout=30_000)
    assert stack.worker_sockets()[port_a] == set()
    expect(console).to_have_attribute("data-state", "connected")  # the relay is not a worker
    guest.dom().destroy()
    wait_until(lambda: guest.state() == libvirt.VIR_DOMAIN_SHUTOFF, 30, "force off")
    expect(row(a, guest.name).locator(".badge")).to_have_text("shut off", timeout=20_000)
    assert a.evaluate("window.sameDocument") is True
    for _ in range(4):  # every new page is served, by the worker that is left
        assert fetch(f"{stack.url}/accounts/login/") == 200
    assert upstream_of(stack, "GET /accounts/login/") == port_b
    # The VM went away under the console: it says so rather than hanging.
    expect(console).not_to_have_attribute("data-state", "connected", timeout=20_000)

    # systemd starts the worker again (Restart=always); nginx uses it again.
    stack.restart_web(port_a)
    wait_until(
        lambda: (
            fetch(f"{stack.url}/accounts/login/") == 200
            and upstream_of(stack, "GET /accounts/login/") == port_a
        ),
        30,
        "nginx to send pages to the restarted worker",
    )


def test_pages_come_through_nginx_over_tls_from_both_workers(stack: Stack) -> None:
    status, headers = fetch_headers(f"{stack.url}/accounts/login/")
    assert status == 200
    # Django knows the request was HTTPS (X-Forwarded-Proto from nginx).
    assert "max-age=" in headers.get("Strict-Transport-Security", "")
    assert "Secure" in headers.get("Set-Cookie", "")  # the CSRF cookie
    assert fetch(f"{stack.url}/static/vendor/htmx/htmx.min.js") == 200
    for _ in range(6):
        assert fetch(f"{stack.url}/accounts/login/") == 200
    served_by = {
        int(m.group(1))
        for line in stack.access_log()
        if '"GET /accounts/login/ ' in line
        for m in [re.search(r"upstream=127\.0\.0\.1:(\d+)", line)]
        if m
    }
    assert served_by == set(stack.webs)  # round robin reached both workers


def test_graphs_and_metrics_of_the_one_sampler_come_from_every_worker(
    browser: Browser, stack: Stack, contexts: list[BrowserContext], make_guest: Any
) -> None:
    """The sampler runs in the events process; the workers serve its history
    and latest values from Redis."""
    guest = make_guest()
    start_domain(guest.dom())
    page = login_through_nginx(browser, stack, contexts)
    stats_url = f"{stack.url}/hosts/local/domains/{guest.name}/stats/?range=10m"

    def charted() -> bool:
        points = page.request.get(stats_url).json()["points"]
        return len([p for p in points if p[1] is not None]) >= 2  # CPU % known

    wait_until(charted, 30, "two CPU points of the running guest")
    before = len(stack.access_log())
    for _ in range(4):  # round robin: both workers answer, with the same history
        assert charted()
    workers = {
        int(m.group(1))
        for line in stack.access_log()[before:]
        for m in [re.search(r"upstream=127\.0\.0\.1:(\d+)", line)]
        if m and "/stats/" in line
    }
    assert workers == set(stack.webs)

    uuid = guest.dom().UUIDString()
    series = f'vmdash_vm_cpu_percent{{host="local",name="{guest.name}",uuid="{uuid}"}}'
    for _ in range(2):
        status, _, body = fetch_all(f"{stack.url}/metrics", Authorization=f"Bearer {METRICS_TOKEN}")
        assert status == 200
        assert series in body
        assert 'vmdash_host_up{host="local"} 1' in body
    status, _, body = fetch_all(f"{stack.url}/metrics", Authorization="Bearer wrong")
    assert status == 401 and guest.name not in body


def test_a_database_that_stops_mid_run_gets_a_clear_page_that_comes_back_by_itself(
    browser: Browser, stack: Stack, contexts: list[BrowserContext]
) -> None:
    """PostgreSQL stops under the running deployment: every page needs it
    (the login's session), so a person gets a 503 that says what does not
    answer instead of "Server error", and the page shows vmdash again by
    itself once the database is back (no worker restarted)."""
    page = login_through_nginx(browser, stack, contexts)
    page.goto(f"{stack.url}/domains/")
    expect(page.locator("#domain-table")).to_be_visible()
    stack.database.stop()
    try:
        response = page.goto(f"{stack.url}/domains/")
        assert response is not None and response.status == 503
        assert response.headers.get("retry-after") == "10"
        expect(page.locator("main h1")).to_have_text("vmdash cannot reach its database")
        expect(page.locator("body")).to_contain_text("DATABASE_URL")
        page.screenshot(path=str(stack.directory / "database-down.png"))
        again = page.goto(f"{stack.url}/hosts/")  # round robin: the other worker says the same
        assert again is not None and again.status == 503
    finally:
        stack.database.start()
    # The page reloads itself every 10 s: the list is back without a click.
    expect(page.locator("header.top nav")).to_be_visible(timeout=25_000)
    expect(page.locator("h1")).to_have_text("Hosts")
    assert fetch(f"{stack.url}/accounts/login/") == 200
    # The long-running processes lived through it. A ticket signed with the
    # deployment's key makes the console proxy look it up in the database: the
    # desk's warm connection died with PostgreSQL and once took the proxy with
    # it. Now the lookup runs on a new connection and the ticket is unknown.
    port = int(stack.deployment.env["VMDASH_CONSOLE_PROXY_PORT"])
    signer = signing.TimestampSigner(key=stack.deployment.env["VMDASH_SECRET_KEY"], salt=SALT)
    with pytest.raises(Refused) as refused:
        WebSocket(f"ws://127.0.0.1:{port}/?token={signer.sign('999999.no-such-nonce')}")
    assert refused.value.status == 403
    wait_until(lambda: "unknown ticket" in stack.console.log.read_text(), 10, "the refusal")
    assert stack.console.proc is not None and stack.console.proc.poll() is None
    assert stack.events.proc is not None and stack.events.proc.poll() is None
