"""Snapshots of the real test guest with a qcow2 disk, from its Snapshots tab,
checked with virsh: two taken while it runs (with its memory), the tree,
a revert to the first (the guest runs again from there), and a delete with
the one after it."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import libvirt
import pytest
from django.test import Client
from lxml import etree

from tests.realhost import PREFIX, Guest, fresh_conn, start_domain
from vmdash import jobs
from vmdash.models import AuditEntry, Host
from vmdash.virt.xml.domain import DomainXML

POOL_ROOT = Path("/var/lib/libvirt/images")
# transaction=True: the job writes its audit entry from a thread of its own.
pytestmark = pytest.mark.django_db(transaction=True)


def virsh(*args: str) -> str:
    out = subprocess.run(
        ["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=True
    )
    return out.stdout


@pytest.fixture
def qcow2_disk(system_conn: libvirt.virConnect) -> Iterator[str]:
    """A 64 MiB qcow2 volume in a pool of its own; its path."""
    name = f"{PREFIX}snap-{uuid.uuid4().hex[:6]}"
    root = etree.Element("pool", type="dir")
    etree.SubElement(root, "name").text = name
    etree.SubElement(etree.SubElement(root, "target"), "path").text = str(POOL_ROOT / name)
    p = system_conn.storagePoolDefineXML(etree.tostring(root, encoding="unicode"), 0)
    p.build(0)
    p.create(0)
    vol = etree.Element("volume")
    etree.SubElement(vol, "name").text = "disk.qcow2"
    etree.SubElement(vol, "capacity", unit="MiB").text = "64"
    etree.SubElement(etree.SubElement(vol, "target"), "format", type="qcow2")
    path = p.createXML(etree.tostring(vol, encoding="unicode"), 0).path()
    yield str(path)
    for step in (lambda: [v.delete(0) for v in p.listAllVolumes(0)], p.destroy, p.undefine):
        with contextlib.suppress(libvirt.libvirtError):
            step()
    with contextlib.suppress(OSError):
        (POOL_ROOT / name).rmdir()


def with_disk(guest: Guest, path: str) -> None:
    conn = fresh_conn()
    doc = DomainXML.parse(conn.lookupByName(guest.name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    disk = doc.disks.add(type="file", device="disk")
    disk.driver_name, disk.driver_type = "qemu", "qcow2"
    disk.source_file, disk.target_dev, disk.target_bus = path, "vdb", "virtio"
    conn.defineXML(doc.tostring())


def take(client: Client, vm: str, snap: str) -> None:
    response = client.post(f"/hosts/local/domains/{vm}/snapshots/", {"name": snap})
    assert response.status_code == 302, response.content.decode()[:800]
    job_id = parse_qs(urlsplit(response["Location"]).query)["job"][0]
    deadline = time.monotonic() + 60
    while not (job := jobs.get(job_id)) or not job.finished:
        assert time.monotonic() < deadline, "the snapshot job did not end"
        time.sleep(0.2)
    assert job.state == "done", job.message


def test_a_running_guests_snapshots_are_a_tree_it_reverts_to_and_deletes(
    local: Host, make_guest: Callable[..., Guest], client: Client, qcow2_disk: str
) -> None:
    guest = make_guest()
    with_disk(guest, qcow2_disk)
    start_domain(guest.dom())
    guest.wait_for_banner()
    take(client, guest.name, "before-update")
    take(client, guest.name, "after-update")
    assert virsh("snapshot-list", guest.name, "--name").split() == ["after-update", "before-update"]
    assert virsh("snapshot-parent", guest.name, "after-update").strip() == "before-update"
    info = virsh("snapshot-info", guest.name, "before-update")
    assert "running" in info and "internal" in info.lower()  # state, with memory, in the qcow2

    response = client.post(f"/hosts/local/domains/{guest.name}/snapshots/before-update/revert/")
    assert response.status_code == 302
    assert virsh("snapshot-current", guest.name, "--name").strip() == "before-update"
    assert guest.dom().state()[0] == libvirt.VIR_DOMAIN_RUNNING  # resumed from its memory

    response = client.post(
        f"/hosts/local/domains/{guest.name}/snapshots/before-update/delete/", {"children": "on"}
    )
    assert response.status_code == 302
    assert virsh("snapshot-list", guest.name, "--name").split() == []
    taken = AuditEntry.objects.filter(action="snapshot-create", outcome="ok").count()
    assert taken == 2
