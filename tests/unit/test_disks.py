"""The Devices tab's disks card on libvirt's test driver, and the disk XML
and target names it makes. For real: tests/integration/test_disks_real.py."""

from __future__ import annotations

import lxml.html
import pytest
from django.test import Client

from vmdash.models import Host
from vmdash.virt import disks

pytestmark = pytest.mark.django_db


def test_the_card_lists_the_disks_and_offers_the_buses(lab: Host, as_alice: Client) -> None:
    page = lxml.html.fromstring(as_alice.get("/hosts/lab/domains/web1/devices/").content)
    assert page.xpath("//section[@id='disks']//tbody/tr/@data-target") == ["vda"]
    buses = page.xpath("//form[@id='disk-add-form']//select[@name='bus']/option/@value")
    assert buses == list(disks.BUSES)


def test_targets_are_the_first_free_name_of_the_bus() -> None:
    assert disks.free_target({"vda", "hdc"}, "virtio") == "vdb"
    assert disks.free_target({"vda"}, "sata") == "sda"
    assert disks.free_target({"sda", "sdb"}, "scsi") == "sdc"
    assert disks.free_target(set(), "ide") == "hda"


def test_a_block_volume_becomes_a_block_disk() -> None:
    assert disks.new_disk("/dev/vg0/data", "block", "raw", "vdb", "virtio") == (
        "<disk type='block' device='disk'><driver name='qemu' type='raw'/>"
        "<source dev='/dev/vg0/data'/><target dev='vdb' bus='virtio'/></disk>"
    )
