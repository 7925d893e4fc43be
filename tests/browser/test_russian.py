"""The interface in Russian, in Chromium, on the real libvirtd (issue 14,
done-when 3): a browser that asks for Russian (locale ru-RU, so its
Accept-Language) sees every visible word of the VM list, a VM page, its
serial console and the storage pages in Russian, and counts with the right
plural form.

What may stay Latin is said here, word by word: the names of the objects on
the page (as libvirt reports them), units, and the technical names an admin
reads the same in every language (libvirt, QEMU, UUID, MAC, disk buses...).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ADMIN, Server, login
from tests.realhost import start_domain

pytestmark = [pytest.mark.browser, pytest.mark.libvirtd]

# Latin words that are the same in a Russian interface: product and protocol
# names, units, and the identifiers libvirt reports for devices and formats.
ALLOWED = {
    *("vmdash", "libvirt", "libvirtd", "virsh", "QEMU", "KVM", "TCG", "VNC", "SPICE", "UUID"),
    *("MiB", "GiB", "KiB", "TiB", "B", "CPU", "vCPU", "XML", "NAT", "MAC", "IP", "DHCP", "API"),
    *("BIOS", "UEFI", "TPM", "ISO", "CD-ROM", "NVRAM", "OS", "PXE", "DNS", "VLAN", "MTU"),
    *(
        "hvm",
        "x86_64",
        "i686",
        "aarch64",
        "hd",
        "fd",
        "pc",
        "q35",
        "i440fx",
        "virtio",
        "e1000",
        "e1000e",
        "rtl8139",
        "ide",
        "sata",
    ),
    *("scsi", "usb", "fdc", "qcow2", "raw", "iso", "file", "block", "dir", "network"),
    *("bridge", "pty", "serial", "console", "isa-serial", "pci-serial", "kvm", "qemu"),
    *("vda", "vdb", "sda", "sdb", "hda", "hdc", "vnet", "virbr", "default", "disk"),
    *("cdrom", "tcp", "unix", "spapr-vty", "Ctrl", "Alt", "Del", "Esc", "Enter", "Tab"),
}
# Text that is an address or a path, not a word: taken out before the split.
NOT_WORDS = re.compile(
    r"[a-z][a-z0-9+]*://\S*"  # URIs
    r"|\b[KMGTPE]?i?B/s\b"  # rates
    r"|(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}"  # MAC addresses
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}"  # UUIDs
    r"|\d{1,3}(?:\.\d{1,3}){3}(?:/\d+)?"  # IPv4
    r"|(?<!\w)/[\w./+-]*"  # paths
    r"|\S+\.\w+"  # file and host names with a dot
)
LATIN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def english_left(text: str, names: set[str]) -> set[str]:
    """The Latin words of `text` that are neither allowed nor an object's name."""
    allowed = {w.lower() for w in ALLOWED}
    for name in names:
        allowed |= {w.lower() for w in LATIN.findall(name)}
    words = LATIN.findall(NOT_WORDS.sub(" ", text))
    return {
        w
        for w in words
        if w.lower() not in allowed and w.lower().strip("0123456789_-") not in allowed
    }


def object_names(conn: libvirt.virConnect) -> set[str]:
    """Everything libvirt names on the host, and the host and user names."""
    names = {"local", ADMIN[0]}
    names |= {d.name() for d in conn.listAllDomains()}
    names |= {n.name() for n in conn.listAllNetworks()}
    for pool in conn.listAllStoragePools():
        names.add(pool.name())
        if pool.isActive():
            names |= {v.name() for v in pool.listAllVolumes()}
    return names


def russian_form(n: int, forms: tuple[str, str, str]) -> str:
    """The plural rule of the catalogue's header, written out."""
    if n % 10 == 1 and n % 100 != 11:
        return forms[0]
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return forms[1]
    return forms[2]


@pytest.fixture
def ru_page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(locale="ru-RU", viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def pool(system_conn: libvirt.virConnect, tmp_path: Path) -> Iterator[libvirt.virStoragePool]:
    name = f"vmdash-t-ru-{uuid.uuid4().hex[:6]}"
    xml = f"<pool type='dir'><name>{name}</name><target><path>{tmp_path}</path></target></pool>"
    p = system_conn.storagePoolDefineXML(xml)
    p.create()
    p.createXML(
        "<volume><name>disk-ru.qcow2</name><capacity unit='MiB'>16</capacity>"
        "<target><format type='qcow2'/></target></volume>"
    )
    yield p
    for v in p.listAllVolumes():
        v.delete()
    p.destroy()
    p.undefine()


# What the page shows verbatim as libvirt or the guest said it: the Timeline's
# "libvirt reported" column ("started (booted)", as `virsh event` prints it) and
# the serial console's terminal (what the VM prints: its banner and shell).
VERBATIM = "td.mono, .xterm"


def visible_text(page: Page) -> str:
    page.wait_for_load_state("networkidle")
    return page.evaluate(
        """sel => { const body = document.body.cloneNode(true);
        body.querySelectorAll(sel).forEach(e => e.remove());
        document.body.after(body); const text = body.innerText; body.remove();
        return text; }""",
        VERBATIM,
    )


def assert_russian(page: Page, conn: libvirt.virConnect, url: str) -> str:
    page.goto(url)
    text = visible_text(page)
    assert re.search("[а-яА-Я]{4}", text), f"{url}: no Russian at all:\n{text}"
    left = english_left(text, object_names(conn))
    assert not left, f"{url}: English left: {sorted(left)}\n{text[:1500]}"
    return text


def test_every_page_of_a_vm_and_its_storage_is_russian(
    ru_page: Page, server: Server, make_guest, system_conn: libvirt.virConnect, pool
) -> None:  # type: ignore[no-untyped-def]
    guest = make_guest()
    start_domain(guest.dom())
    login(ru_page, server.url)
    vm = f"{server.url}/hosts/local/domains/{guest.name}"
    expect(ru_page.locator("html")).to_have_attribute("lang", "ru")
    for url in (
        f"{server.url}/domains/",
        f"{vm}/",
        f"{vm}/devices/",
        f"{vm}/timeline/",
        f"{server.url}/hosts/local/storage/",
        f"{server.url}/hosts/local/storage/{pool.name()}/",
    ):
        assert_russian(ru_page, system_conn, url)
    ru_page.goto(f"{vm}/serial/")
    expect(ru_page.locator("body")).to_contain_text("Подключено")
    assert_russian(ru_page, system_conn, f"{vm}/serial/")


def test_the_vm_list_counts_in_the_right_plural_form(
    ru_page: Page, server: Server, make_guest, system_conn: libvirt.virConnect
) -> None:  # type: ignore[no-untyped-def]
    make_guest()
    login(ru_page, server.url)
    # The other workers' guests come and go: the count is held against
    # libvirt's when it did not change while the page was read.
    for _attempt in range(5):
        before = len(system_conn.listAllDomains())
        ru_page.goto(f"{server.url}/domains/")
        text = visible_text(ru_page)
        if len(system_conn.listAllDomains()) == before:
            break
    found = re.search(r"(\d+)\s+(машина|машины|машин)(?!\w)", text)
    assert found, text
    n = int(found.group(1))
    assert n == before
    assert found.group(2) == russian_form(n, ("машина", "машины", "машин"))


def test_the_check_finds_english_and_lets_names_units_and_addresses_pass() -> None:
    text = (
        "vmdash-t-ab12 работает · 1 vCPU · 128 MiB · чтение 0 B/s · x86_64 · hd "
        "/usr/bin/qemu-system-x86_64 52:54:00:aa:bb:cc 10.0.0.1/24 qemu:///system"
    )
    assert english_left(text, {"vmdash-t-ab12"}) == set()
    assert english_left(text + " Start · shut off", {"vmdash-t-ab12"}) == {"Start", "shut", "off"}
