"""The pool and volume XML vmdash generates: golden files, libvirt's RNG schema, reads."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from vmdash.virt.errors import InvalidInput
from vmdash.virt.storage import PoolSpec, VolumeSpec, detect_format, pool_doc, volume_doc
from vmdash.virt.xml.pool import PoolType, PoolXML
from vmdash.virt.xml.volume import VolumeFormat, VolumeXML

DATA = Path(__file__).parent.parent / "data" / "xml"
GiB = 1 << 30

POOLS = {
    "pool-dir": PoolSpec("images", PoolType.DIR, "/var/lib/vmdash/images"),
    "pool-fs": PoolSpec("ext", PoolType.FS, "/mnt/ext", source_device="/dev/vdb1",
                        source_format="ext4"),
    "pool-netfs": PoolSpec("nfs", PoolType.NETFS, "/mnt/nfs", source_host="nfs.example.org",
                           source_dir="/export/images"),
    "pool-logical": PoolSpec("vg0", PoolType.LOGICAL, source_name="vg0",
                             source_device="/dev/vdc"),
    "pool-disk": PoolSpec("whole", PoolType.DISK, "/dev", source_device="/dev/vdd",
                          source_format="gpt"),
    "pool-iscsi": PoolSpec("san", PoolType.ISCSI, source_host="san.example.org",
                           source_device="iqn.2024-01.org.example:storage"),
    "pool-odd-name": PoolSpec("it's <b>& \"ünï\"", PoolType.DIR, "/srv/odd dir"),
}  # fmt: skip
VOLUMES = {
    "volume-qcow2": (VolumeSpec("disk.qcow2", VolumeFormat.QCOW2, 20 * GiB), "", ""),
    "volume-raw-full": (VolumeSpec("disk.raw", VolumeFormat.RAW, GiB, preallocate=True), "", ""),
    "volume-overlay": (
        VolumeSpec("top.qcow2", VolumeFormat.QCOW2, 20 * GiB, backing="base.qcow2"),
        "/var/lib/vmdash/images/base.qcow2",
        "qcow2",
    ),
}


def _golden(case: str, text: str) -> None:
    path = DATA / f"{case}.xml"
    if os.environ.get("VMDASH_REGEN_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def _validate(tmp_path: Path, text: str, schema: str) -> None:
    f = tmp_path / "x.xml"
    f.write_text(text)
    out = subprocess.run(["virt-xml-validate", str(f), schema], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("case", sorted(POOLS))
def test_the_pool_xml_of_each_type_is_as_expected_and_valid(case: str, tmp_path: Path) -> None:
    text = pool_doc(POOLS[case]).tostring()
    _golden(case, text)
    _validate(tmp_path, text, "storagepool")


@pytest.mark.parametrize("case", sorted(VOLUMES))
def test_the_volume_xml_is_as_expected_and_valid(case: str, tmp_path: Path) -> None:
    spec, backing, fmt = VOLUMES[case]
    text = volume_doc(spec, backing, fmt).tostring()
    _golden(case, text)
    _validate(tmp_path, text, "storagevol")


def test_the_pool_xml_only_holds_the_fields_of_its_type() -> None:
    spec = PoolSpec("d", PoolType.DIR, "/x", source_host="ignored", source_dir="/ignored")
    assert "ignored" not in pool_doc(spec).tostring()


def test_a_pool_read_from_libvirt_says_where_its_storage_is() -> None:
    doc = PoolXML.parse(pool_doc(POOLS["pool-netfs"]).tostring())
    assert doc.source_text == "nfs.example.org:/export/images"
    assert PoolXML.parse(pool_doc(POOLS["pool-logical"]).tostring()).source_text == "VG vg0"


@pytest.mark.parametrize("size", [0, -1, 2**60])
def test_a_volume_of_no_or_absurd_size_is_refused(size: int) -> None:
    with pytest.raises(InvalidInput):
        volume_doc(VolumeSpec("v", VolumeFormat.RAW, size))


def test_only_a_qcow2_volume_has_a_backing_volume() -> None:
    with pytest.raises(InvalidInput):
        volume_doc(VolumeSpec("v", VolumeFormat.RAW, GiB, backing="base"))


def test_the_volume_sizes_are_written_in_bytes() -> None:
    doc = VolumeXML.parse(volume_doc(VOLUMES["volume-qcow2"][0]).tostring())
    assert doc.capacity == 20 * GiB and doc.capacity_unit == "bytes" and doc.allocation == 0


def test_it_tells_qcow2_iso_and_raw_apart_by_their_first_bytes() -> None:
    assert detect_format(b"QFI\xfb" + b"\0" * 100) == VolumeFormat.QCOW2
    iso = bytearray(0x8006)
    iso[0x8001:0x8006] = b"CD001"
    assert detect_format(bytes(iso)) == VolumeFormat.ISO
    assert detect_format(b"\0" * 0x9000) == VolumeFormat.RAW
