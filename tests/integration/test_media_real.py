"""A CD-ROM's media on the real test guest, from its Devices tab: an ISO volume
put in while the guest runs and taken out again, checked with
`virsh domblklist` (what the running guest has) and `dumpxml --inactive`
(what the next start gets)."""

from __future__ import annotations

import contextlib
import html
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest
from django.test import Client
from lxml import etree

from tests.realhost import PREFIX, Guest, fresh_conn, start_domain
from vmdash.models import AuditEntry, Host
from vmdash.virt.xml.domain import DomainXML

POOL_ROOT = Path("/var/lib/libvirt/images")


def virsh(*args: str) -> str:
    out = subprocess.run(
        ["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=True
    )
    return out.stdout


@pytest.fixture
def iso_pool(system_conn: libvirt.virConnect, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A running dir pool holding one small ISO (xorriso); (pool name, the ISO's path)."""
    name = f"{PREFIX}media-{uuid.uuid4().hex[:6]}"
    root = etree.Element("pool", type="dir")
    etree.SubElement(root, "name").text = name
    etree.SubElement(etree.SubElement(root, "target"), "path").text = str(POOL_ROOT / name)
    p = system_conn.storagePoolDefineXML(etree.tostring(root, encoding="unicode"), 0)
    p.build(0)
    p.create(0)
    content = tmp_path / "cd"
    content.mkdir()
    (content / "README").write_text("vmdash test media\n")
    iso = POOL_ROOT / name / "tools.iso"
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-quiet", "-V", "VMDASHCD", "-o", str(iso), str(content)],
        check=True,
    )
    p.refresh(0)
    yield name, str(iso)
    for step in (lambda: [v.delete(0) for v in p.listAllVolumes(0)], p.destroy, p.undefine):
        with contextlib.suppress(libvirt.libvirtError):
            step()
    with contextlib.suppress(OSError):
        (POOL_ROOT / name).rmdir()


def with_cdrom(guest: Guest) -> None:
    """An empty IDE CD-ROM drive (hdc) in the guest's definition."""
    conn = fresh_conn()
    doc = DomainXML.parse(conn.lookupByName(guest.name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    drive = doc.disks.add(type="file", device="cdrom")
    drive.target_dev, drive.target_bus, drive.readonly = "hdc", "ide", True
    conn.defineXML(doc.tostring())


def cdrom_now(name: str) -> str:
    """The running guest's hdc source, as `virsh domblklist` prints it ("-": empty)."""
    for line in virsh("domblklist", name).splitlines():
        parts = line.split()
        if parts and parts[0] == "hdc":
            return parts[1]
    raise AssertionError(f"no hdc in {virsh('domblklist', name)}")


def test_an_iso_goes_into_the_running_guests_drive_and_out_again(
    local: Host,
    make_guest: Callable[..., Guest],
    client: Client,
    iso_pool: tuple[str, str],
) -> None:
    pool_name, iso = iso_pool
    guest = make_guest()
    with_cdrom(guest)
    start_domain(guest.dom())
    # Booted first, as a person would wait: while its kernel probes the drive a
    # guest keeps the tray shut, and QEMU then refuses the insert (ci41, ci42).
    guest.wait_for_banner()
    url = f"/hosts/local/domains/{guest.name}/"
    page = client.get(f"{url}devices/").content.decode()
    assert f'value="{pool_name}/tools.iso"' in page and 'data-drive="hdc"' in page

    said = client.post(
        f"{url}media/", {"target": "hdc", "volume": f"{pool_name}/tools.iso"}, follow=True
    ).content.decode()
    assert "is in hdc" in said and "The running guest sees it now" in said
    assert cdrom_now(guest.name) == iso
    assert f"<source file='{iso}'" in virsh("dumpxml", "--inactive", guest.name)

    said = client.post(f"{url}media/", {"target": "hdc", "volume": ""}, follow=True)
    assert "The media is ejected from hdc." in said.content.decode()
    assert cdrom_now(guest.name) == "-"
    assert iso not in virsh("dumpxml", "--inactive", guest.name)
    assert AuditEntry.objects.filter(action="media", outcome="ok").count() == 2


def test_a_path_that_is_not_a_volume_is_refused(
    local: Host, make_guest: Callable[..., Guest], client: Client
) -> None:
    guest = make_guest()
    with_cdrom(guest)
    url = f"/hosts/local/domains/{guest.name}/media/"
    said = client.post(url, {"target": "hdc", "volume": "/etc/shadow"}, follow=True)
    assert "There is no volume '/etc/shadow' on this host." in html.unescape(said.content.decode())
    assert "/etc/shadow" not in virsh("dumpxml", "--inactive", guest.name)
    assert AuditEntry.objects.filter(action="media", outcome="error").count() == 1
