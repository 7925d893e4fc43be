"""The new-VM wizard as a person uses it, on the real libvirtd, checked through libvirt.

The VM boots the test guest's kernel and initrd directly (as the test guest
itself is made), with a new 1 GiB qcow2 disk in a pool of its own and a NIC
on the default network, and prints its banner on the serial console.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from lxml import etree
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import Server, login
from tests.guest import GUEST_BANNER, GUEST_CMDLINE, GUEST_PROMPT, kvm_usable
from tests.realhost import PREFIX, fresh_conn, remove_domain, wait_until

pytestmark = [pytest.mark.libvirtd, pytest.mark.browser]
SHOTS = Path("/tmp/vmdash-shots")
POOL_ROOT = Path("/var/lib/libvirt/images")  # qemu (libvirt-qemu) must reach the disk


def virsh(*args: str) -> str:
    out = subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def new_pool(system_conn: libvirt.virConnect) -> Iterator[str]:
    """A started dir pool vmdash-t-newvm-<random>; removed with every volume in it."""
    name = f"{PREFIX}newvm-{uuid.uuid4().hex[:6]}"
    root = etree.Element("pool", type="dir")
    etree.SubElement(root, "name").text = name
    etree.SubElement(etree.SubElement(root, "target"), "path").text = str(POOL_ROOT / name)
    p = system_conn.storagePoolDefineXML(etree.tostring(root, encoding="unicode"), 0)
    p.build(0)
    p.create(0)
    yield name
    for step in (
        lambda: [v.delete(0) for v in p.listAllVolumes(0)],
        lambda: p.destroy(),
        lambda: p.delete(0),
        p.undefine,
    ):
        try:
            step()
        except libvirt.libvirtError:
            pass


@pytest.fixture
def default_network(system_conn: libvirt.virConnect) -> Iterator[str]:
    """libvirt's default NAT network, started for the test if it was not running."""
    net = system_conn.networkLookupByName("default")
    started = not net.isActive()
    if started:
        net.create()
    yield "default"
    if started:
        try:
            net.destroy()
        except libvirt.libvirtError:
            pass  # a guest of someone else's test still on it


@pytest.fixture
def vm_name() -> Iterator[str]:
    name = f"{PREFIX}wiz-{uuid.uuid4().hex[:6]}"
    yield name
    try:
        remove_domain(fresh_conn().lookupByName(name))
    except libvirt.libvirtError:
        pass


def _fill_wizard(page: Page, name: str, pool: str, guest_files: Path) -> None:
    page.fill("input[name=name]", name)
    page.select_option("select[name=source]", "kernel")
    page.fill("input[name=kernel]", str(guest_files / "vmlinuz"))
    page.fill("input[name=initrd]", str(guest_files / "initrd.img"))
    page.fill("input[name=cmdline]", GUEST_CMDLINE)
    page.fill("input[name=memory_mib]", "128")
    page.fill("input[name=vcpus]", "1")
    page.check("input[name=new_disk]")
    page.select_option("select[name=disk_pool]", pool)
    page.fill("input[name=disk_gib]", "1")
    page.select_option("select[name=disk_format]", "qcow2")
    page.select_option("select[name=network]", "default")
    page.select_option("select[name=nic_model]", "virtio")
    page.select_option("select[name=firmware]", "bios")
    page.check("input[name=serial]")
    page.check("input[name=start]")


def _active(name: str) -> bool:
    try:
        return bool(fresh_conn().lookupByName(name).isActive())
    except libvirt.libvirtError:
        return False


TERMINAL_HAS = (
    "needle => { const el = document.querySelector('[data-console=serial]');"
    " return el && el.vmdash && el.vmdash.lines().join('\\n').includes(needle); }"
)


def _see_banner(page: Page) -> None:
    """The banner on the serial console. A console shows what comes after it attached,
    and the banner comes ~3 s after the start: if it came before, reboot the guest from
    its own shell (same QEMU, same console) and watch it come again."""
    try:
        page.wait_for_function(TERMINAL_HAS, arg=GUEST_BANNER, timeout=8_000)
        return
    except PlaywrightTimeout:
        pass
    page.locator(".xterm").click()
    page.keyboard.press("Enter")
    page.wait_for_function(TERMINAL_HAS, arg=GUEST_PROMPT, timeout=30_000)
    page.keyboard.type("reboot -f\n")
    page.wait_for_function(TERMINAL_HAS, arg=GUEST_BANNER, timeout=60_000)


def test_the_wizard_makes_a_kernel_boot_vm_that_prints_its_banner(
    page: Page,
    server: Server,
    guest_files: Path,
    new_pool: str,
    default_network: str,
    vm_name: str,
) -> None:
    login(page, server.url)
    page.goto(f"{server.url}/hosts/local/")
    page.click("a.new-vm")
    expect(page.locator("#accelerator")).to_contain_text("qemu" if not kvm_usable() else "kvm")
    _fill_wizard(page, vm_name, new_pool, guest_files)
    page.click("button[name=create]")
    page.wait_for_url("**/domains/new/jobs/**")
    job_url = page.url
    wait_until(lambda: _active(vm_name), 60, f"{vm_name} to run")
    page.goto(f"{server.url}/hosts/local/domains/{vm_name}/serial/")
    expect(page.locator("[data-console=serial]")).to_have_attribute("data-state", "connected")
    _see_banner(page)
    page.goto(job_url)
    expect(page.locator(".job")).to_have_attribute("data-state", "done")
    expect(page.locator(".job")).to_contain_text(
        "type='qemu'" if not kvm_usable() else "type='kvm'"
    )
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "newvm-job.png"))  # full_page here would break a later click

    # What libvirt itself says the VM is.
    doc = etree.fromstring(virsh("dumpxml", vm_name).encode())
    assert doc.get("type") == ("kvm" if kvm_usable() else "qemu")
    assert doc.findtext("os/kernel") == str(guest_files / "vmlinuz")
    assert doc.findtext("os/initrd") == str(guest_files / "initrd.img")
    assert doc.findtext("os/cmdline") == GUEST_CMDLINE
    disks = virsh("domblklist", vm_name, "--details").split()
    assert disks[-4:] == ["volume", "disk", "vda", f"{vm_name}.qcow2"]
    source = doc.find("devices/disk/source")
    assert source is not None and source.get("pool") == new_pool
    assert f"{vm_name}.qcow2" in virsh("vol-list", new_pool).split()
    info = virsh("vol-info", "--pool", new_pool, f"{vm_name}.qcow2", "--bytes")
    assert "1073741824 bytes" in info
    assert "qcow2" in virsh("vol-dumpxml", "--pool", new_pool, f"{vm_name}.qcow2")
    nics = virsh("domiflist", vm_name).split()
    assert "network" in nics and "default" in nics and "virtio" in nics


def test_a_person_imports_xml_sees_nothing_lost_then_deletes_the_vm(
    page: Page, server: Server, guest_files: Path, vm_name: str
) -> None:
    root = etree.Element("domain", type="qemu")
    etree.SubElement(root, "name").text = vm_name
    etree.SubElement(root, "memory", unit="MiB").text = "128"
    os_el = etree.SubElement(root, "os")
    etree.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    etree.SubElement(os_el, "kernel").text = str(guest_files / "vmlinuz")
    login(page, server.url)
    page.goto(f"{server.url}/hosts/local/domains/import/")
    page.fill("textarea[name=xml]", etree.tostring(root, encoding="unicode"))
    page.click("#import-form button[type=submit]")
    expect(page.locator("#kept-all")).to_be_visible()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "newvm-import.png"))
    assert vm_name in virsh("list", "--all", "--name").split()
    page.goto(f"{server.url}/hosts/local/domains/{vm_name}/delete-with-storage/")
    page.screenshot(path=str(SHOTS / "newvm-delete.png"))
    page.fill("input[name=confirm]", vm_name)
    page.click("#delete-form button[type=submit]")
    page.wait_for_url("**/domains/")
    assert vm_name not in virsh("list", "--all", "--name").split()
