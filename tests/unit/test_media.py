"""The Devices tab's removable media on libvirt's test driver: the drives and
the ISO volumes offered, who may change them, and that a driver without
virDomainUpdateDeviceFlags (the test driver) gets libvirt's sentence, not a
500. Inserting and ejecting for real: tests/integration/test_media_real.py."""

from __future__ import annotations

import libvirt
import lxml.html
import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import TESTNODE_URI
from tests.unit.test_grants import dora
from vmdash.models import AuditEntry, Host
from vmdash.virt.connection import pool

__all__ = ["dora"]  # a persona (tests/unit/test_grants.py), used by name

pytestmark = pytest.mark.django_db

URL = "/hosts/lab/domains/db/"


@pytest.fixture
def drive_and_iso(lab: Host) -> None:
    conn = pool().get(TESTNODE_URI)
    xml = conn.lookupByName("db").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    cdrom = "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>"
    conn.defineXML(xml.replace("</devices>", cdrom + "</devices>"))
    p = conn.storagePoolDefineXML(
        "<pool type='dir'><name>isos</name><target><path>/vmdash-t/isos</path></target></pool>"
    )
    p.create()
    for name in ("debian-12.iso", "disk.qcow2"):
        p.createXML(f"<volume><name>{name}</name><capacity>1048576</capacity></volume>")


def test_the_tab_lists_each_cd_rom_drive_and_the_iso_volumes(
    drive_and_iso: None, as_alice: Client
) -> None:
    page = lxml.html.fromstring(as_alice.get(f"{URL}devices/").content)
    rows = page.xpath("//section[@id='media']//tbody/tr")
    assert [r.get("data-drive") for r in rows] == ["hdc"]
    assert rows[0].xpath("string(td[3])").strip() == "(empty)"
    assert rows[0].xpath(".//select[@name='volume']/option/@value") == ["isos/debian-12.iso"]
    assert not rows[0].xpath(".//button[text()='Eject']")  # nothing in it


def test_a_driver_that_cannot_change_media_says_so(drive_and_iso: None, as_alice: Client) -> None:
    response = as_alice.post(
        f"{URL}media/", {"target": "hdc", "volume": "isos/debian-12.iso"}, follow=True
    )
    assert response.status_code == 200
    assert "Cannot change the media of VM &#x27;db&#x27;" in response.content.decode()
    assert "not supported" in response.content.decode()
    assert AuditEntry.objects.get(action="media").outcome == "error"


@pytest.mark.parametrize(
    ("target", "volume", "said"),
    [
        ("hdc", "/etc/shadow", "There is no volume &#x27;/etc/shadow&#x27;"),
        ("hdc", "shadow", "choose a volume as pool/volume"),
        ("vda", "isos/debian-12.iso", "it has no CD-ROM drive &#x27;vda&#x27;"),
    ],
)
def test_what_is_not_a_volume_or_a_drive_is_refused(
    drive_and_iso: None, as_alice: Client, target: str, volume: str, said: str
) -> None:
    response = as_alice.post(f"{URL}media/", {"target": target, "volume": volume}, follow=True)
    assert said in response.content.decode()


def test_only_who_may_change_the_vm_sees_or_uses_the_drives(
    drive_and_iso: None, dora: User
) -> None:
    c = Client()
    c.force_login(dora)  # Viewer of web1
    page = lxml.html.fromstring(c.get("/hosts/lab/domains/web1/devices/").content)
    assert not page.xpath("//section[@id='media']")
    assert c.post("/hosts/lab/domains/web1/media/", {"target": "hdc"}).status_code == 403
