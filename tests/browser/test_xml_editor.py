"""A person edits a real guest's XML in Chromium: the diff first, apply; a
change made meanwhile with `virsh define` makes the guard refuse a stale
apply; the History tab shows both versions (the virsh one "outside vmdash",
seen by the events service) and a revert restores the first. libvirt, read
with virsh, is the judge."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, login
from tests.realhost import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.libvirtd]


def virsh(*args: str) -> str:
    out = subprocess.run(
        ["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=True
    )
    return out.stdout


def defined(name: str) -> str:
    return virsh("dumpxml", "--inactive", name)


def test_a_person_edits_the_xml_is_stopped_by_a_virsh_change_and_reverts(
    page: Page, server: Server, make_guest, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    guest = make_guest()
    first = defined(guest.name)
    assert "<on_crash>destroy</on_crash>" in first
    login(page, server.url)
    page.goto(f"{server.url}/hosts/local/domains/{guest.name}/xml/")
    editor = page.locator("textarea[data-xml-editor]")
    expect(page.locator(".xml-gutter")).to_contain_text("1\n2\n3")  # line numbers
    text = editor.input_value()
    editor.fill(text.replace("<on_crash>destroy</on_crash>", "<on_crash>restart</on_crash>"))
    page.get_by_role("button", name="Show the change").click()
    diff = page.locator("#xml-result pre.diff")
    expect(diff).to_contain_text("+  <on_crash>restart</on_crash>")
    assert "<on_crash>destroy</on_crash>" in defined(guest.name)  # shown, not done
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".alert")).to_contain_text("Saved. It applies when the VM next starts.")
    assert "<on_crash>restart</on_crash>" in defined(guest.name)

    # Opened again, then changed with virsh define before this apply.
    text = editor.input_value()
    changed = tmp_path / "changed.xml"
    changed.write_text(
        defined(guest.name).replace(
            "<on_reboot>restart</on_reboot>", "<on_reboot>destroy</on_reboot>"
        )
    )
    virsh("define", str(changed))
    editor.fill(
        text.replace("<on_poweroff>destroy</on_poweroff>", "<on_poweroff>restart</on_poweroff>")
    )
    page.get_by_role("button", name="Show the change").click()
    result = page.locator("#xml-result")
    expect(result).to_contain_text("it was changed since you opened it")
    expect(result.locator("pre.diff")).to_contain_text("+  <on_reboot>destroy</on_reboot>")
    assert "<on_poweroff>destroy</on_poweroff>" in defined(guest.name)

    page.goto(f"{server.url}/hosts/local/domains/{guest.name}/history/")
    rows = page.locator("table.versions tbody tr")
    # The events service heard virsh's define and kept it, outside vmdash.
    wait_until(
        lambda: page.reload() or rows.count() == 3, 15, "the virsh definition in the history"
    )
    expect(rows.nth(0).locator("td").nth(1)).to_have_text("outside vmdash")
    expect(rows.nth(1).locator("td").nth(1)).to_contain_text("XML edited")
    # The guest's first definition was made by the test, outside vmdash too.
    expect(rows.nth(2).locator("td").nth(1)).to_have_text("outside vmdash")
    rows.nth(2).get_by_role("button", name="Revert to this").click()
    expect(page.locator(".alert").first).to_contain_text(re.compile("Reverted to the version of"))
    now = defined(guest.name)
    assert "<on_crash>destroy</on_crash>" in now and "<on_reboot>restart</on_reboot>" in now
    assert now == first
