"""The VM timeline on the real libvirtd, with vmdash running as `make run` runs it.

Issue 10, done-when 3: the timeline of the test guest shows a start from
vmdash, a shutdown by the guest itself and a change made with virsh, each
labelled correctly. vmdash is a real server process (its embedded events
service stores libvirt's events through the timeline's sink); the start is
an HTTP POST as a user, the shutdown is `poweroff` typed into the guest's own
serial console, the change is `virsh define` of an edited definition.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from tests.events.wsclient import WsClient, login_cookies
from tests.realhost import SYSTEM_URI, Guest, wait_until
from tests.servers import ADMIN, Vmdash, start_vmdash

pytestmark = [pytest.mark.libvirtd]


class Browser:
    """Requests as a logged-in person would send them (cookies, CSRF token)."""

    def __init__(self, srv: Vmdash, cookies: dict[str, str]) -> None:
        self.srv, self.cookies = srv, cookies

    def request(self, method: str, path: str, body: str = "") -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "X-CSRFToken": self.cookies.get("csrftoken", ""),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        conn.close()
        return response.status, text

    def post(self, path: str, **data: str) -> int:
        return self.request("POST", path, urllib.parse.urlencode(data))[0]

    def get(self, path: str) -> str:
        status, text = self.request("GET", path)
        assert status == 200, (path, status)
        return text


def timeline_lines(page: str) -> list[tuple[str, str, str]]:
    """(what happened, outcome data attribute, what libvirt reported) per row, newest first."""
    rows = re.findall(
        r'<tr class="tl-[^"]*" data-source="([^"]*)" data-outcome="([^"]*)">(.*?)</tr>', page, re.S
    )
    lines = []
    for source, outcome, cells in rows:
        what = re.search(r'<td class="what">(.*?)(?:<br>|</td>)', cells, re.S)
        seen = re.search(r'<td class="small muted mono">(.*?)</td>', cells, re.S)
        assert what and seen
        lines.append((unescape(what.group(1)).strip(), f"{source}/{outcome}", seen.group(1)))
    return lines


def type_on_serial(guest: Guest, text: str) -> None:
    """Type `text` and Enter on the guest's serial console (its root shell)."""
    dom = guest.dom()
    stream = dom.connect().newStream(0)
    dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
    try:
        stream.send(f"\n{text}\n".encode())
        time.sleep(0.5)  # let the console deliver it before the stream closes
    finally:
        try:
            stream.finish()
        except libvirt.libvirtError:
            stream.abort()


def power_off_from_inside(guest: Guest) -> None:
    """`poweroff` in the guest's shell; typed again if the shell was not ready yet."""
    for _attempt in range(3):
        type_on_serial(guest, "poweroff")
        try:
            wait_until(lambda: guest.state() == libvirt.VIR_DOMAIN_SHUTOFF, 20, "the poweroff")
            return
        except AssertionError:
            continue
    raise AssertionError(f"{guest.name} did not power off:\n{guest.serial()[-2000:]}")


def virsh_define_with_description(guest: Guest, description: str, tmp: Path) -> None:
    """`virsh define` of the guest's inactive definition with a new description."""
    xml = subprocess.run(
        ["virsh", "-c", SYSTEM_URI, "dumpxml", "--inactive", guest.name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    root = etree.fromstring(xml.encode())
    node = root.find("description")
    if node is None:
        node = etree.Element("description")
        root.find("uuid").addnext(node)  # type: ignore[union-attr]
    node.text = description
    path = tmp / "changed.xml"
    path.write_bytes(etree.tostring(root))
    subprocess.run(
        ["virsh", "-c", SYSTEM_URI, "define", str(path)], check=True, capture_output=True
    )


def open_a_page_socket(srv: Vmdash, cookies: dict[str, str]) -> None:
    """The embedded events service starts with the first WebSocket (as in the browser)."""

    async def connect() -> None:
        client = await WsClient.connect(srv.url, cookies)
        await client.close()

    asyncio.run(connect())
    wait_until(lambda: "events: watching local" in srv.log.read_text(), 30, "the events service")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Vmdash]:
    srv = start_vmdash(tmp_path / "vmdash", hosts="local=qemu:///system")
    yield srv
    srv.stop()


def test_the_timeline_tells_a_vmdash_start_a_guest_poweroff_and_a_virsh_change(
    server: Vmdash, make_guest, tmp_path: Path
) -> None:
    guest = make_guest()
    cookies = login_cookies(server.url, *ADMIN)
    open_a_page_socket(server, cookies)
    me = Browser(server, cookies)
    base = f"/hosts/local/domains/{guest.name}"

    assert me.post(f"{base}/start/") == 302
    guest.wait_for_banner()
    power_off_from_inside(guest)
    assert "VMDASH-TEST-GUEST POWEROFF" in guest.serial()  # the guest's own init said so
    # libvirt itself says the guest shut down (not destroyed, not crashed).
    assert guest.dom().state() == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN]
    virsh_define_with_description(guest, "changed with virsh", tmp_path)
    assert "changed with virsh" in guest.dom().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)

    wanted = {
        "Started by admin (vmdash)",
        "Shut down by the guest",
        "Definition changed outside vmdash (virsh or another tool)",
    }

    def shown() -> bool:
        return wanted <= {what for what, _o, _s in timeline_lines(me.get(f"{base}/timeline/"))}

    wait_until(shown, 20, "the three lines on the timeline")
    page = me.get(f"{base}/timeline/")
    lines = timeline_lines(page)
    # The events service runs from the server's start, so the test's own
    # first definition of the guest (libvirt directly) may be the oldest line.
    if lines and lines[-1][0] == "Defined outside vmdash (virsh or another tool)":
        lines = lines[:-1]
    assert [what for what, _o, _s in lines] == [
        "Definition changed outside vmdash (virsh or another tool)",
        "Shut down by the guest",
        "Started by admin (vmdash)",
    ]
    changed, down, start = lines
    assert start[1] == "vmdash/ok" and "started (booted)" in start[2]  # one line, not two
    assert down[1] == "guest/ok" and "stopped (shutdown)" in down[2]
    assert changed[1] == "outside/ok" and "defined (updated)" in changed[2]
    assert "Started outside" not in page  # the start is one line, not two
    assert 'href="/hosts/local/domains/' + guest.name + '/timeline/" aria-current="page"' in page
