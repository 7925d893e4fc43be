"""Clone and delete-with-storage on the real libvirtd, checked with libvirt and virsh.

The source VM is the test guest (direct kernel boot) with two qcow2 disk
volumes in a pool of its own, made by vmdash's create step.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from tests.guest import GUEST_CMDLINE
from tests.realhost import PREFIX, fresh_conn, remove_domain, start_domain, wait_until
from vmdash.virt import clone, create
from vmdash.virt.errors import InvalidState
from vmdash.virt.refs import HostRef
from vmdash.virt.xml.newdomain import Boot, DiskKind, DiskSpec, NicSpec, VmSpec

pytestmark = pytest.mark.libvirtd
HOST = HostRef("local", "qemu:///system")
POOL_ROOT = Path("/var/lib/libvirt/images")


def virsh(*args: str) -> str:
    out = subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def vol_list(pool: str) -> set[str]:
    return {line.split()[0] for line in virsh("vol-list", pool).splitlines()[2:] if line.strip()}


@pytest.fixture
def pool_name(system_conn: libvirt.virConnect) -> Iterator[str]:
    name = f"{PREFIX}clone-{uuid.uuid4().hex[:6]}"
    root = etree.Element("pool", type="dir")
    etree.SubElement(root, "name").text = name
    etree.SubElement(etree.SubElement(root, "target"), "path").text = str(POOL_ROOT / name)
    p = system_conn.storagePoolDefineXML(etree.tostring(root, encoding="unicode"), 0)
    p.build(0)
    p.create(0)
    yield name
    for step in (
        lambda: [v.delete(0) for v in p.listAllVolumes(0)],
        p.destroy,
        p.delete,
        p.undefine,
    ):
        try:
            step() if step is not p.delete else p.delete(0)
        except libvirt.libvirtError:
            pass


@pytest.fixture
def names() -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    conn = fresh_conn()
    for name in made:
        try:
            remove_domain(conn.lookupByName(name))
        except libvirt.libvirtError:
            pass


def _source(pool: str, guest_files: Path, names: list[str], start: bool) -> str:
    name = f"{PREFIX}src-{uuid.uuid4().hex[:6]}"
    names.append(name)
    facts = create.host_facts(HOST)
    spec = VmSpec(
        name=name, virt_type=facts.virt_type, machine="pc", memory_mib=128, boot=Boot.KERNEL,
        kernel=str(guest_files / "vmlinuz"), initrd=str(guest_files / "initrd.img"),
        cmdline=GUEST_CMDLINE, vnc=False,
        disks=(
            DiskSpec(DiskKind.NEW, pool, f"{name}.qcow2", capacity=64 * 2**20),
            DiskSpec(DiskKind.NEW, pool, f"{name}-data.qcow2", capacity=32 * 2**20),
        ),
        nics=(NicSpec("network", "default", "virtio"),) if False else (),
    )  # fmt: skip
    create.create_vm(HOST, spec, start=start, autostart=False, progress=lambda f, n: None)
    return name


def _macs_and_uuid(name: str) -> tuple[str, list[str], list[str]]:
    doc = etree.fromstring(virsh("dumpxml", "--inactive", name).encode())
    sources = [s.get("volume") or s.get("file") or "" for s in doc.findall("devices/disk/source")]
    macs = [m.get("address", "") for m in doc.findall("devices/interface/mac")]
    return doc.findtext("uuid") or "", sources, macs


def test_a_stopped_vm_is_cloned_with_new_volumes_and_a_new_uuid(
    pool_name: str, guest_files: Path, names: list[str]
) -> None:
    src = _source(pool_name, guest_files, names, start=False)
    new = f"{PREFIX}cl-{uuid.uuid4().hex[:6]}"
    names.append(new)
    seen: list[float] = []
    clone.clone_vm(HOST, src, new, pause_running=False, progress=lambda f, n: seen.append(f))
    src_uuid, _src_disks, _ = _macs_and_uuid(src)
    new_uuid, new_disks, _ = _macs_and_uuid(new)
    assert new_uuid and new_uuid != src_uuid
    assert new_disks == [f"{new}.qcow2", f"{new}-1.qcow2"]
    assert {f"{new}.qcow2", f"{new}-1.qcow2", f"{src}.qcow2", f"{src}-data.qcow2"} <= vol_list(
        pool_name
    )
    assert seen and seen[-1] == 1.0


def test_a_running_vm_is_refused_unless_paused_for_the_copy_then_runs_on(
    pool_name: str, guest_files: Path, names: list[str]
) -> None:
    src = _source(pool_name, guest_files, names, start=True)
    new = f"{PREFIX}cl-{uuid.uuid4().hex[:6]}"
    with pytest.raises(InvalidState):
        clone.clone_vm(HOST, src, new, pause_running=False, progress=lambda f, n: None)
    assert f"{new}.qcow2" not in vol_list(pool_name)
    names.append(new)
    clone.clone_vm(HOST, src, new, pause_running=True, progress=lambda f, n: None)
    assert fresh_conn().lookupByName(src).state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert _macs_and_uuid(new)[1] == [f"{new}.qcow2", f"{new}-1.qcow2"]
    start_domain(fresh_conn().lookupByName(new))  # the clone boots on its own copies
    wait_until(lambda: fresh_conn().lookupByName(new).isActive() == 1, 30, "the clone to run")


def test_a_clone_gets_new_macs(pool_name: str, guest_files: Path, names: list[str]) -> None:
    src = _source(pool_name, guest_files, names, start=False)
    conn = fresh_conn()
    dom = conn.lookupByName(src)
    nic = "<interface type='network'><source network='default'/><model type='virtio'/></interface>"
    dom.attachDeviceFlags(nic, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    new = f"{PREFIX}cl-{uuid.uuid4().hex[:6]}"
    names.append(new)
    clone.clone_vm(HOST, src, new, pause_running=False, progress=lambda f, n: None)
    src_macs, new_macs = _macs_and_uuid(src)[2], _macs_and_uuid(new)[2]
    assert len(new_macs) == 1 and new_macs != src_macs


def test_delete_with_storage_removes_exactly_the_ticked_volumes(
    pool_name: str, guest_files: Path, names: list[str]
) -> None:
    src = _source(pool_name, guest_files, names, start=False)
    before = vol_list(pool_name)
    keys = {d.key for d in clone.disk_volumes(HOST, src)}
    assert keys == {f"{pool_name}/{src}.qcow2", f"{pool_name}/{src}-data.qcow2"}
    done = clone.delete_with_storage(HOST, src, {f"{pool_name}/{src}.qcow2"})
    assert done.volumes == (f"{pool_name}/{src}.qcow2",)
    assert vol_list(pool_name) == before - {f"{src}.qcow2"}
    assert src not in virsh("list", "--all", "--name").split()
