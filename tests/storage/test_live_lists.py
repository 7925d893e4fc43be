"""The pools page and a pool's volume list follow what is done elsewhere.

libvirt sends no event when a volume is made or removed (virsh vol-create-as,
vol-delete) and the pools table is not a live region, so both ask again every
10 s: a person sees a change made with libvirt directly without reloading.
"""

from __future__ import annotations

from collections.abc import Callable

import libvirt
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, login

pytestmark = [pytest.mark.browser, pytest.mark.libvirtd]
SOON = 8_000  # ms: the browser server polls every 2 s (VMDASH_LIST_POLL), and a margin


def test_pools_and_volumes_made_elsewhere_appear_and_go_without_a_reload(
    page: Page,
    server: Server,
    make_pool: Callable[[], libvirt.virStoragePool],
) -> None:
    login(page, server.url)
    page.goto(f"{server.url}/hosts/local/storage/")
    pool = make_pool()  # with libvirt directly, after the page was loaded
    expect(page.locator(f"text={pool.name()}").first).to_be_visible(timeout=SOON)

    page.goto(f"{server.url}/hosts/local/storage/{pool.name()}/")
    vol = pool.createXML(
        "<volume><name>elsewhere.raw</name><capacity unit='MiB'>1</capacity>"
        "<target><format type='raw'/></target></volume>",
        0,
    )
    row = page.locator('tr[data-volume="elsewhere.raw"]')
    expect(row).to_be_visible(timeout=SOON)
    vol.delete(0)
    expect(row).to_have_count(0, timeout=SOON)
