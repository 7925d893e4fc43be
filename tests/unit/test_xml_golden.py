"""Golden files hold the XML layer: input XML, a short edit, the exact expected XML.

tests/data/xml/<case>.in.xml is what libvirt (or a person) wrote;
<case>.expected.xml is the text after the edit below, byte for byte. To
review a change of the layer, regenerate with VMDASH_REGEN_GOLDEN=1 and read
the diff of the expected files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from vmdash.virt.xml.domain import CpuMode, DomainXML, Placement

DATA = Path(__file__).parent.parent / "data" / "xml"


def grow_the_test_domain(doc: DomainXML) -> None:
    doc.memory_kib = 4 * 1024 * 1024
    doc.title = "The test driver's 'test'"
    doc.acpi = True
    disk = doc.disks[0]
    disk.driver_name, disk.driver_type = "qemu", "qcow2"
    disk.boot_order = 1
    doc.boot.remove(doc.boot[0])  # per-device boot order replaces <os><boot>
    vnc = doc.graphics.add(type="vnc")
    vnc.port, vnc.autoport = -1, True
    vnc.listen_at("127.0.0.1")


def rework_the_qemu_guest(doc: DomainXML) -> None:
    doc.current_memory_kib = 2 * 1024 * 1024  # a whole number of MiB: the unit stays
    doc.vcpus_current = None
    doc.cpu_mode = CpuMode.HOST_MODEL
    doc.apic = False
    cdrom = doc.disks[1]
    cdrom.source_volume = "debian-13.iso"
    doc.interfaces[1].link_state = "up"
    doc.graphics[0].port = 5906
    serial = doc.chars.add("serial", type="file")
    serial.source_path = "/var/log/demo-second-serial.log"
    serial.target_port = 1


def touch_the_odd_domain(doc: DomainXML) -> None:
    doc.disks[0].target_bus = "virtio"
    doc.vcpus = 2


EDITS: dict[str, Callable[[DomainXML], None]] = {
    "test-default": grow_the_test_domain,
    "qemu-guest": rework_the_qemu_guest,
    "unknown-element": touch_the_odd_domain,
}
VALID = ["test-default", "qemu-guest"]  # unknown-element is, by design, not libvirt's schema


def edited(case: str) -> DomainXML:
    doc = DomainXML.parse((DATA / f"{case}.in.xml").read_text())
    EDITS[case](doc)
    return doc


@pytest.mark.parametrize("case", sorted(EDITS))
def test_an_edit_gives_exactly_the_expected_xml(case: str) -> None:
    out = edited(case).tostring()
    expected = DATA / f"{case}.expected.xml"
    if os.environ.get("VMDASH_REGEN_GOLDEN"):
        expected.write_text(out)
    assert out == expected.read_text()


@pytest.mark.parametrize("case", sorted(EDITS))
def test_parsing_and_writing_back_changes_nothing(case: str) -> None:
    text = (DATA / f"{case}.in.xml").read_text()
    doc = DomainXML.parse(text)
    assert doc.tostring() == text
    assert doc.diff() == "" and not doc.changed


@pytest.mark.parametrize("case", VALID)
def test_edited_xml_passes_libvirts_schema(case: str, tmp_path: Path) -> None:
    validate = shutil.which("virt-xml-validate")
    assert validate, "virt-xml-validate is missing: apt-get install libvirt-clients"
    assert shutil.which("xmllint"), "xmllint is missing: apt-get install libxml2-utils"
    path = tmp_path / f"{case}.xml"
    path.write_text(edited(case).tostring())
    out = subprocess.run([validate, str(path), "domain"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_unknown_and_foreign_parts_survive_an_edit() -> None:
    out = edited("unknown-element").tostring()
    assert "<vendor-extension xmlns='http://example.org/ext' level='3'>" in out
    assert "<future-flag/>" in out
    assert out.startswith('<?xml version="1.0"?>\n<!-- written by hand')
    qemu = edited("qemu-guest").tostring()
    assert "<qemu:arg value='-newarg'/>" in qemu
    assert '<app2:note>kept "as is" by other tools</app2:note>' in qemu
    assert "<!-- the system disk: do not move it" in qemu


def test_the_diff_names_only_the_changed_lines_and_hides_the_password() -> None:
    diff = edited("qemu-guest").diff()
    changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert changed == [
        "-  <currentMemory unit='MiB'>1536</currentMemory>",
        "-  <vcpu placement='static' current='1'>2</vcpu>",
        "+  <currentMemory unit='MiB'>2048</currentMemory>",
        "+  <vcpu placement='static'>2</vcpu>",
        "-    <apic/>",
        "-  <cpu mode='host-passthrough' check='none' migratable='on'/>",
        "+  <cpu mode='host-model' check='none' migratable='on'/>",
        "-      <source pool='iso' volume='debian-12.iso'/>",
        "+      <source pool='iso' volume='debian-13.iso'/>",
        "-      <link state='down'/>",
        "+      <link state='up'/>",
        "+    <serial type='file'>",
        "+      <source path='/var/log/demo-second-serial.log'/>",
        "+      <target port='1'/>",
        "+    </serial>",
        "-    <graphics type='vnc' port='5905' autoport='no' listen='0.0.0.0' passwd='(hidden)'>",
        "+    <graphics type='vnc' port='5906' autoport='no' listen='0.0.0.0' passwd='(hidden)'>",
    ]
    assert "s3cret" not in diff
    assert "s3cret" in edited("qemu-guest").tostring()  # the define keeps it


def test_reading_the_fields_gives_typed_values() -> None:
    doc = DomainXML.parse((DATA / "qemu-guest.in.xml").read_text())
    assert (doc.type, doc.name, doc.title) == ("kvm", "demo", "Demo guest")
    assert doc.description == "A QEMU guest like the examples of libvirt's docs"
    assert (doc.memory_kib, doc.current_memory_kib) == (2 * 1024 * 1024, 1536 * 1024)
    assert (doc.vcpus, doc.vcpus_current, doc.vcpu_placement) == (2, 1, Placement.STATIC)
    assert (doc.os_type, doc.arch, doc.machine, doc.firmware) == (
        "hvm",
        "x86_64",
        "pc-q35-7.2",
        "efi",
    )
    assert [b.dev for b in doc.boot] == ["hd", "cdrom"]
    assert doc.cpu_mode is CpuMode.HOST_PASSTHROUGH and doc.cpu_model is None
    assert (doc.acpi, doc.apic, doc.pae) == (True, True, False)
    assert doc.kernel is None and doc.emulator == "/usr/bin/qemu-system-x86_64"
    vda, cdrom, rbd = doc.disks
    assert (vda.type, vda.device, vda.driver_type, vda.driver_cache, vda.driver_io) == (
        "file",
        "disk",
        "qcow2",
        "none",
        "native",
    )
    assert (vda.source_file, vda.target_dev, vda.target_bus, vda.readonly) == (
        "/var/lib/libvirt/images/demo.qcow2",
        "vda",
        "virtio",
        False,
    )
    assert (cdrom.source_pool, cdrom.source_volume, cdrom.readonly) == (
        "iso",
        "debian-12.iso",
        True,
    )
    assert (rbd.source_protocol, rbd.source_name, rbd.source_host, rbd.source_port) == (
        "rbd",
        "pool/image",
        "ceph.example.org",
        6789,
    )
    net, direct = doc.interfaces
    assert (net.mac, net.source_network, net.model, net.link_state) == (
        "52:54:00:AB:CD:01",
        "default",
        "virtio",
        None,
    )
    assert (direct.type, direct.source_dev, direct.source_mode, direct.link_state) == (
        "direct",
        "eth0",
        "vepa",
        "down",
    )
    (vnc,) = doc.graphics
    assert (vnc.type, vnc.port, vnc.autoport, vnc.address, vnc.has_password) == (
        "vnc",
        5905,
        False,
        "0.0.0.0",
        True,
    )
    assert (vnc.listen_type, vnc.listen_address) == ("address", "0.0.0.0")
    serial, console = doc.chars
    assert (serial.tag, serial.type, serial.target_type, serial.target_port) == (
        "serial",
        "pty",
        "isa-serial",
        0,
    )
    assert serial.log_file == "/var/log/libvirt/qemu/demo-serial.log"
    assert (console.tag, console.target_type) == ("console", "serial")
