"""A person makes a NAT network in the browser, reserves an address, and sees
the lease a real DHCP client took (vmdash in its own process, the real
libvirtd, Debian's chromium). Checked with libvirt directly."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import libvirt
import pytest
from lxml import etree
from playwright.sync_api import Browser

from tests.networks.conftest import NET_PREFIX
from tests.realhost import SYSTEM_URI
from tests.servers import ADMIN, Vmdash

pytestmark = [pytest.mark.browser, pytest.mark.libvirtd]


def test_a_person_makes_a_nat_network_reserves_an_address_and_sees_the_lease(
    browser: Browser,
    served: Vmdash,
    real_networks: Callable[[], libvirt.virConnect],
    dhcp_client: Callable[[str, str, str], str],
) -> None:
    name, mac = f"{NET_PREFIX}browser", "52:54:00:25:41:01"
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{served.url}/accounts/login/")
    page.fill("input[name=username]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{served.url}/")

    page.goto(f"{served.url}/hosts/local/networks/new/")
    page.fill("input[name=name]", name)
    page.select_option("select[name=mode]", "nat")
    page.fill("input[name=ipv4_address]", "10.251.41.1/24")
    page.fill("input[name=ipv4_dhcp_start]", "10.251.41.100")
    page.fill("input[name=ipv4_dhcp_end]", "10.251.41.150")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/networks/{name}/")
    assert "active" in page.inner_text("h1")

    page.fill("input[name=mac]", mac)
    page.fill("input[name=ip]", "10.251.41.10")
    page.fill("input[name=name]", "browser-guest")
    page.click("form.stack button")  # htmx swaps the DHCP section
    page.wait_for_selector(f'.static-hosts tr[data-mac="{mac}"]')

    net = real_networks().networkLookupByName(name)
    assert net.isActive()
    for flags in (0, libvirt.VIR_NETWORK_XML_INACTIVE):
        host = etree.fromstring(net.XMLDesc(flags)).find("ip/dhcp/host")
        assert host is not None and (host.get("mac"), host.get("ip")) == (mac, "10.251.41.10")

    assert dhcp_client(net.bridgeName(), mac, "browser-guest") == "10.251.41.10"
    page.reload()
    lease = page.locator(f'.leases tr[data-mac="{mac}"]')
    assert "10.251.41.10/24" in lease.inner_text() and "browser-guest" in lease.inner_text()
    assert [(x["mac"], x["ipaddr"]) for x in net.DHCPLeases()] == [(mac, "10.251.41.10")]
    page.context.close()


def virsh(*args: str) -> None:
    subprocess.run(["virsh", "-q", "-c", SYSTEM_URI, *args], check=True, capture_output=True)


def test_networks_defined_started_stopped_and_undefined_with_virsh_follow_on_the_pages(
    browser: Browser, served: Vmdash, real_networks: Callable[[], libvirt.virConnect],
    tmp_path: Path,
) -> None:  # fmt: skip
    name = f"{NET_PREFIX}elsewhere"
    page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{served.url}/accounts/login/")
    page.fill("input[name=username]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{served.url}/")
    page.goto(f"{served.url}/hosts/local/networks/")
    page.wait_for_selector("#live[data-state=connected]", state="attached")
    row = f'tr[data-name="{name}"]'
    assert page.locator(row).count() == 0

    xml = tmp_path / "net.xml"
    xml.write_text(f"<network><name>{name}</name><ip address='10.251.49.1' prefix='24'/></network>")
    virsh("net-define", str(xml))
    page.wait_for_selector(f'{row}[data-state="inactive"]')  # appeared, no reload
    virsh("net-start", name)
    page.wait_for_selector(f'{row}[data-state="active"]')
    page.screenshot(path=str(tmp_path / "list.png"))

    page.click(f"{row} a")
    page.wait_for_url(f"**/networks/{name}/")
    page.wait_for_selector("#live[data-state=connected]", state="attached")
    virsh("net-destroy", name)
    page.wait_for_selector("section[data-live=network-header] .badge.state-shutoff")
    virsh("net-undefine", name)
    page.wait_for_selector('section[data-state="gone"]')
    assert "no longer exists" in page.inner_text('section[data-state="gone"]')

    page.goto(f"{served.url}/hosts/local/networks/")
    page.wait_for_selector("#live[data-state=connected]", state="attached")
    virsh("net-define", str(xml))
    page.wait_for_selector(row)
    virsh("net-undefine", name)
    page.wait_for_selector(row, state="detached")  # gone from the list too
    assert name not in {n.name() for n in real_networks().listAllNetworks(0)}
    page.context.close()
