"""Disks of the real test guest, from its Devices tab, checked with virsh: a
volume attached to the shut-off guest, a second one plugged into the running
guest (virtio), one taken out again with its volume kept; a volume another
VM uses and one that does not exist are refused."""

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

from tests.realhost import PREFIX, Guest, start_domain
from vmdash.models import Host

POOL_ROOT = Path("/var/lib/libvirt/images")


def virsh(*args: str) -> str:
    out = subprocess.run(
        ["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=True
    )
    return out.stdout


def blk(name: str, *flags: str) -> dict[str, str]:
    """target -> source, as `virsh domblklist` prints them."""
    lines = virsh("domblklist", name, *flags).splitlines()[2:]
    return {p[0]: p[1] for p in (line.split() for line in lines) if len(p) == 2}


@pytest.fixture
def data_pool(system_conn: libvirt.virConnect) -> Iterator[tuple[str, libvirt.virStoragePool]]:
    name = f"{PREFIX}disks-{uuid.uuid4().hex[:6]}"
    root = etree.Element("pool", type="dir")
    etree.SubElement(root, "name").text = name
    etree.SubElement(etree.SubElement(root, "target"), "path").text = str(POOL_ROOT / name)
    p = system_conn.storagePoolDefineXML(etree.tostring(root, encoding="unicode"), 0)
    p.build(0)
    p.create(0)
    for vol in ("data1.qcow2", "data2.qcow2"):
        v = etree.Element("volume")
        etree.SubElement(v, "name").text = vol
        etree.SubElement(v, "capacity", unit="MiB").text = "16"
        etree.SubElement(etree.SubElement(v, "target"), "format", type="qcow2")
        p.createXML(etree.tostring(v, encoding="unicode"), 0)
    yield name, p
    for step in (lambda: [v.delete(0) for v in p.listAllVolumes(0)], p.destroy, p.undefine):
        with contextlib.suppress(libvirt.libvirtError):
            step()
    with contextlib.suppress(OSError):
        (POOL_ROOT / name).rmdir()


def post(client: Client, vm: str, what: str, **data: str) -> str:
    response = client.post(f"/hosts/local/domains/{vm}/disks/{what}/", data, follow=True)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_volumes_are_attached_plugged_in_and_detached_with_the_volume_kept(
    local: Host, make_guest: Callable[..., Guest], client: Client, data_pool: tuple[str, object]
) -> None:
    pool_name, _p = data_pool
    guest = make_guest()  # no disks: direct kernel boot
    said = post(client, guest.name, "add", volume=f"{pool_name}/data1.qcow2", bus="virtio")
    assert f"{pool_name}/data1.qcow2 is disk vda." in said
    assert blk(guest.name, "--inactive") == {"vda": str(POOL_ROOT / pool_name / "data1.qcow2")}
    assert "<driver name='qemu' type='qcow2'/>" in virsh("dumpxml", "--inactive", guest.name)

    start_domain(guest.dom())
    guest.wait_for_banner()
    said = post(client, guest.name, "add", volume=f"{pool_name}/data2.qcow2", bus="virtio")
    assert "is disk vdb." in said and "The running guest sees it now" in said
    assert set(blk(guest.name)) == {"vda", "vdb"} == set(blk(guest.name, "--inactive"))

    said = post(client, guest.name, "remove", target="vdb")
    assert "vdb" not in blk(guest.name, "--inactive")
    assert "the volume stays" in said.lower() or "The volume stays." in said
    assert "data2.qcow2" in virsh("vol-list", pool_name)


def test_a_volume_another_vm_uses_or_none_at_all_is_refused(
    local: Host, make_guest: Callable[..., Guest], client: Client, data_pool: tuple[str, object]
) -> None:
    pool_name, _p = data_pool
    first, second = make_guest(), make_guest()
    post(client, first.name, "add", volume=f"{pool_name}/data1.qcow2", bus="virtio")
    said = post(client, second.name, "add", volume=f"{pool_name}/data1.qcow2", bus="virtio")
    assert f"Another VM uses this volume: {first.name}." in said
    said = post(client, second.name, "add", volume=f"{pool_name}/nothing.qcow2", bus="virtio")
    assert f"There is no volume '{pool_name}/nothing.qcow2' on this host." in said
    said = post(client, second.name, "add", volume=f"{pool_name}/data2.qcow2", bus="floppy")
    assert "Choose a bus: virtio" in said
    assert blk(second.name, "--inactive") == {}
