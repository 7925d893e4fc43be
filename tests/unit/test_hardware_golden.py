"""Golden files for every hardware edit of the Hardware and Devices tabs, on
libvirt-style sample XML (tests/data/xml/qemu-guest.in.xml: other tools'
metadata, a QEMU pass-through argument, comments) and on the vendor NFV
template: the exact text after the edit, what must survive, and libvirt's
schema. Regenerate with VMDASH_REGEN_GOLDEN=1 and read the diff."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from vmdash.virt import disks, media, nics, numa, pinning, placement, sizing
from vmdash.virt.xml.domain import DomainXML

DATA = Path(__file__).parent.parent / "data"
SOURCES = {"qemu": DATA / "xml" / "qemu-guest.in.xml", "vnf": DATA / "newvm" / "vendor-nfv.xml"}
GIB = 2**20  # in KiB


def _nic_tune(doc: DomainXML) -> None:
    """The last NIC: the sample's macvtap becomes a host bridge (its old source and
    virtualport go); the vendor's OVS port keeps its virtualport, gets a new MAC."""
    last = list(doc.interfaces)[-1]
    if last.type == "direct":
        nics._tune(doc, last.mac or "", nics.NicTuning("bridge", "br-lan", "e1000e", ""))
    else:
        nics._tune(doc, last.mac or "", nics.NicTuning("ovs", "br-mgmt", "virtio",
                                                       "52:54:00:aa:00:99"))  # fmt: skip


EDITS: dict[str, Callable[[DomainXML], None]] = {
    "sizing": lambda d: sizing._edit(d, sizing.Sizing(GIB, 4 * GIB, 2, 4)),
    "pins": lambda d: pinning._edit(d, {0: "1", 1: "0-1"}),
    "numa": lambda d: numa._edit(d, [("0", GIB), ("1", GIB)]),
    # vda onto SCSI: renamed to the first free sd name, its PCI address dropped.
    "disk-tune": lambda d: disks._tune(d, "vda", disks.Tuning("scsi", "none", "native", "unmap")),
    "nic-tune": _nic_tune,
    # Memory on host node 0 in 2 MiB hugepages, QEMU's threads on CPUs 2-3.
    "placement": lambda d: placement._edit(d, placement.Wanted("strict", "0", 2048, "2-3")),
}
CASES = [(edit, source) for edit in EDITS for source in SOURCES]


def edited(edit: str, source: str) -> DomainXML:
    doc = DomainXML.parse(SOURCES[source].read_text())
    EDITS[edit](doc)
    return doc


@pytest.mark.parametrize(("edit", "source"), CASES, ids=[f"{e}-{s}" for e, s in CASES])
def test_each_edit_gives_exactly_the_expected_xml(edit: str, source: str) -> None:
    out = edited(edit, source).tostring()
    expected = DATA / "xml" / f"hw-{edit}-{source}.expected.xml"
    if os.environ.get("VMDASH_REGEN_GOLDEN"):
        expected.write_text(out)
    assert out == expected.read_text()


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_what_other_tools_wrote_survives_each_edit(edit: str) -> None:
    out = edited(edit, "qemu").tostring()
    assert "<qemu:arg value='-newarg'/>" in out
    assert '<app2:note>kept "as is" by other tools</app2:note>' in out
    assert "<!-- the system disk: do not move it" in out
    assert "passwd='s3cret" in out  # a secret kept for the define, hidden in diffs
    vnf = edited(edit, "vnf").tostring()
    assert "<vcpusched vcpus='0' scheduler='fifo' priority='1'/>" in vnf
    assert "<page size='2' unit='MiB' nodeset='0'/>" in vnf


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_each_edit_of_the_sample_passes_libvirts_schema(edit: str, tmp_path: Path) -> None:
    validate = shutil.which("virt-xml-validate")
    assert validate, "virt-xml-validate is missing: apt-get install libvirt-clients"
    doc = edited(edit, "qemu")
    # The pass-through namespace is valid for the schema; the passwd is kept.
    path = tmp_path / f"{edit}.xml"
    path.write_text(doc.tostring())
    out = subprocess.run([validate, str(path), "domain"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_a_cd_goes_into_the_samples_drive_with_its_driver_target_and_flags() -> None:
    doc = DomainXML.parse(SOURCES["qemu"].read_text())
    drive = next(d for d in doc.disks if d.device == "cdrom")
    assert media.drive_with(drive, "/var/lib/libvirt/images/tools.iso") == (
        "<disk type='file' device='cdrom'>\n"
        "      <driver name='qemu' type='raw'/>\n"
        "      <source file='/var/lib/libvirt/images/tools.iso'/>\n"
        "      <target dev='sda' bus='sata'/>\n"
        "      <readonly/>\n"
        "    </disk>"
    )
    assert "<source" not in media.drive_with(drive, "")
