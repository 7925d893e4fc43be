"""The wizard's cloud-init section on the real libvirtd, seen in Chromium and libvirt.

The test guest (v2 of scripts/make-test-guest) reads a NoCloud seed at boot
(an iso9660 labelled cidata), sets its hostname from meta-data's
local-hostname and prints GUEST_HOSTNAME_MARKER + the name on ttyS0: so the
hostname typed into the wizard comes back on the serial console only if the
seed was built, uploaded into the pool, attached and readable by the guest.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from lxml import etree
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import Server, login
from tests.browser.test_new_vm import (  # noqa: F401  (fixtures)
    SHOTS,
    TERMINAL_HAS,
    _active,
    new_pool,
    virsh,
    vm_name,
)
from tests.guest import GUEST_CMDLINE, GUEST_HOSTNAME_MARKER, GUEST_PROMPT
from tests.realhost import wait_until
from vmdash.virt import create
from vmdash.virt.cloudinit import CloudInit
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import HostRef
from vmdash.virt.xml.newdomain import Boot, DiskKind, DiskSpec, VmSpec

pytestmark = [pytest.mark.libvirtd, pytest.mark.browser]


def _fill(page: Page, name: str, pool: str, guest_files: Path, hostname: str) -> None:
    page.fill("input[name=name]", name)
    page.select_option("select[name=source]", "kernel")
    page.fill("input[name=kernel]", str(guest_files / "vmlinuz"))
    page.fill("input[name=initrd]", str(guest_files / "initrd.img"))
    page.fill("input[name=cmdline]", GUEST_CMDLINE)
    page.fill("input[name=memory_mib]", "128")
    page.fill("input[name=vcpus]", "1")
    page.uncheck("input[name=new_disk]")
    page.select_option("select[name=disk_pool]", pool)  # where the seed ISO goes
    page.select_option("select[name=network]", "")
    page.select_option("select[name=firmware]", "bios")
    page.check("input[name=serial]")
    page.check("input[name=start]")
    page.fill("input[name=ci_hostname]", hostname)
    page.fill("input[name=ci_user]", "debian")


def _see(page: Page, needle: str) -> None:
    """`needle` on the serial console; when it came before the console attached,
    reboot the guest from its shell (same QEMU, same seed) and watch it come again."""
    try:
        page.wait_for_function(TERMINAL_HAS, arg=needle, timeout=8_000)
        return
    except PlaywrightTimeout:
        pass
    page.locator(".xterm").click()
    page.keyboard.press("Enter")
    page.wait_for_function(TERMINAL_HAS, arg=GUEST_PROMPT, timeout=30_000)
    page.keyboard.type("reboot -f\n")
    page.wait_for_function(TERMINAL_HAS, arg=needle, timeout=60_000)


def test_the_wizard_seeds_cloud_init_and_the_guest_prints_its_hostname(
    page: Page,
    server: Server,
    guest_files: Path,
    new_pool: str,  # noqa: F811
    vm_name: str,  # noqa: F811
) -> None:
    hostname = f"vmdash-ci-{uuid.uuid4().hex[:6]}"
    login(page, server.url)
    page.goto(f"{server.url}/hosts/local/")
    page.click("a.new-vm")
    _fill(page, vm_name, new_pool, guest_files, hostname)
    SHOTS.mkdir(exist_ok=True)
    page.locator("#newvm-cloudinit").screenshot(path=str(SHOTS / "newvm-cloudinit.png"))
    page.click("button[name=create]")
    page.wait_for_url("**/domains/new/jobs/**")
    wait_until(lambda: _active(vm_name), 60, f"{vm_name} to run")
    page.goto(f"{server.url}/hosts/local/domains/{vm_name}/serial/")
    expect(page.locator("[data-console=serial]")).to_have_attribute("data-state", "connected")
    _see(page, f"{GUEST_HOSTNAME_MARKER}{hostname}")
    page.screenshot(path=str(SHOTS / "newvm-cloudinit-console.png"))

    # What libvirt says: the seed is a read-only CD-ROM volume of the chosen pool.
    seed = f"{vm_name}-cidata.iso"
    rows = virsh("domblklist", vm_name, "--details").split()
    assert rows[-4:] == ["volume", "cdrom", "sda", seed]
    doc = etree.fromstring(virsh("dumpxml", vm_name).encode())
    source = doc.find("devices/disk[@device='cdrom']/source")
    assert source is not None and source.get("pool") == new_pool
    assert seed in virsh("vol-list", new_pool).split()
    size = int(
        virsh("vol-info", "--pool", new_pool, seed, "--bytes").split("Capacity:")[1].split()[0]
    )
    assert 0 < size < 2 * 1024 * 1024  # a few hundred kB of ISO, not an empty volume


def test_a_failed_create_removes_the_seed_volume_too(new_pool: str, vm_name: str) -> None:  # noqa: F811
    """The seed is uploaded and the VM defined, then the start fails (no such kernel):
    the VM and the seed volume are both gone, as libvirt reports."""
    seed = f"{vm_name}-cidata.iso"
    spec = VmSpec(
        vm_name, memory_mib=128, virt_type="qemu", machine="pc", boot=Boot.KERNEL,
        kernel="/nonexistent/vmlinuz", vnc=False,
        disks=(DiskSpec(DiskKind.SEED, new_pool, seed, "scsi", "raw"),),
        cloudinit=CloudInit("vmdash-ci-fail"),
    )  # fmt: skip
    steps: list[str] = []
    with pytest.raises(VirtError, match="Everything this create made was removed"):
        create.create_vm(
            HostRef("local", "qemu:///system"), spec, True, False, lambda f, s: steps.append(s)
        )
    assert f"Uploading cloud-init seed {new_pool}/{seed}" in steps  # it was made, then removed
    assert seed not in virsh("vol-list", new_pool).split()
    assert vm_name not in virsh("list", "--all", "--name").split()
