"""A new VM's XML: golden files for a table of wizard inputs, each valid for libvirt's
own schema (virt-xml-validate), and the osinfo defaults the wizard starts from."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from vmdash.virt import osinfo
from vmdash.virt.errors import InvalidInput
from vmdash.virt.xml.newdomain import Boot, DiskKind, DiskSpec, Firmware, NicSpec, VmSpec, build

DATA = Path(__file__).resolve().parent.parent / "data" / "newvm"
GIB = 1024**3


def _from_os(os_id: str, name: str, **kwargs: object) -> VmSpec:
    """What the wizard fills in for `os_id` before the person changes anything."""
    v = osinfo.lookup(os_id)
    assert v is not None
    base: dict[str, object] = {
        "name": name,
        "os_id": os_id,
        "memory_mib": v.memory_mib,
        "vcpus": v.vcpus,
        "machine": v.machine,
        "firmware": Firmware.UEFI_SECURE if v.secure_boot else Firmware.BIOS,
        "tpm": v.tpm,
        "localtime": v.windows,
    }
    return VmSpec(**{**base, **kwargs})  # type: ignore[arg-type]


CASES: dict[str, VmSpec] = {
    "iso-win11": _from_os(
        "win11",
        "win11-desk",
        boot=Boot.CDROM,
        disks=(
            DiskSpec(DiskKind.NEW, "default", "win11-desk.qcow2", "sata", capacity=128 * GIB),
            DiskSpec(DiskKind.CDROM, "isos", "Win11_23H2_English_x64.iso", "sata", "raw"),
        ),
        nics=(NicSpec("network", "default", "e1000e"),),
    ),
    "pxe": _from_os(
        "debian11",
        "pxe-node",
        boot=Boot.NETWORK,
        disks=(DiskSpec(DiskKind.NEW, "default", "pxe-node.qcow2", capacity=20 * GIB),),
        nics=(NicSpec("network", "provisioning", "virtio"),),
        vnc=False,
    ),
    "import": _from_os(
        "ubuntu22.04",
        "imported",
        boot=Boot.HD,
        cpu_mode="host-passthrough",
        disks=(DiskSpec(DiskKind.VOLUME, "default", "jammy.qcow2"),),
        nics=(NicSpec("bridge", "br0", "virtio"),),
    ),
    "kernel": VmSpec(
        name="vmdash-kernel",
        virt_type="qemu",
        machine="pc",
        memory_mib=128,
        boot=Boot.KERNEL,
        kernel="/var/cache/vmdash/test-guest/vmlinuz",
        initrd="/var/cache/vmdash/test-guest/initrd.img",
        cmdline="console=tty0 console=ttyS0,115200n8 quiet",
        disks=(DiskSpec(DiskKind.NEW, "default", "vmdash-kernel.qcow2", capacity=GIB),),
        nics=(NicSpec(),),
    ),
    "uefi-tpm": _from_os(
        "fedora37",
        "fedora-uefi",
        firmware=Firmware.UEFI,
        tpm=True,
        boot=Boot.HD,
        disks=(DiskSpec(DiskKind.NEW, "fast", "fedora-uefi.raw", format="raw", capacity=20 * GIB),),
        nics=(NicSpec(),),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_xml_of_each_wizard_input_equals_its_golden_file(case: str) -> None:
    expected = (DATA / f"{case}.xml").read_text()
    assert build(CASES[case]).tostring() == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_xml_passes_libvirts_schema(case: str, tmp_path: Path) -> None:
    tool = shutil.which("virt-xml-validate")
    assert tool, "virt-xml-validate is missing: apt-get install libvirt-clients libxml2-utils"
    path = tmp_path / f"{case}.xml"
    path.write_text(build(CASES[case]).tostring())
    out = subprocess.run([tool, str(path), "domain"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_windows_11_gets_uefi_secure_boot_a_tpm_sata_and_e1000e() -> None:
    text = (DATA / "iso-win11.xml").read_text()
    for line in (
        "<os firmware='efi'>",
        "<feature enabled='yes' name='secure-boot'/>",
        "<backend type='emulator' version='2.0'/>",
        "<target dev='sda' bus='sata'/>",
        "<model type='e1000e'/>",
        "<clock offset='localtime'/>",
    ):
        assert line in text


@pytest.mark.parametrize(
    ("os_id", "memory_mib", "vcpus", "disk_gib", "net", "bus", "uefi", "tpm"),
    [
        ("win11", 8192, 4, 128, "e1000e", "sata", "required", True),
        ("debian11", 1024, 2, 20, "virtio", "virtio", "", False),
        ("ubuntu22.04", 4096, 2, 25, "virtio", "virtio", "", False),
        ("fedora37", 2048, 2, 20, "virtio", "virtio", "", False),
    ],
)
def test_osinfo_gives_the_recommended_resources_and_devices(
    os_id: str, memory_mib: int, vcpus: int, disk_gib: int, net: str, bus: str, uefi: str, tpm: bool
) -> None:
    v = osinfo.lookup(os_id)
    assert v is not None, f"{os_id} is not in /usr/share/osinfo: apt-get install osinfo-db"
    assert (v.memory_mib, v.vcpus, v.disk_gib) == (memory_mib, vcpus, disk_gib)
    assert (v.net_model, v.disk_bus, v.uefi, v.tpm) == (net, bus, uefi, tpm)


def test_osinfo_merges_entries_that_share_an_id_and_inherits_devices(tmp_path: Path) -> None:
    os_dir = tmp_path / "os" / "example.org"
    os_dir.mkdir(parents=True)
    (os_dir / "a.xml").write_text(
        "<libosinfo><os id='http://example.org/base'><short-id>base1</short-id>"
        "<family>linux</family><devices><device id='http://pcisig.com/pci/1af4/1041'/>"
        "<device id='http://pcisig.com/pci/1af4/1042'/></devices>"
        "<resources arch='all'><minimum><ram>1073741824</ram><n-cpus>2</n-cpus></minimum>"
        "</resources></os>"
        "<os id='http://example.org/child'><short-id>child1</short-id><family>linux</family>"
        "<derives-from id='http://example.org/base'/>"
        "<devices><device id='http://pcisig.com/pci/1af4/1042' supported='false'/></devices>"
        "</os></libosinfo>"
    )
    (os_dir / "b.xml").write_text(  # an override of child1 from /etc/osinfo
        "<libosinfo><os id='http://example.org/child'><resources arch='x86_64'><recommended>"
        "<ram>3221225472</ram></recommended></resources></os></libosinfo>"
    )
    db = osinfo.Db((tmp_path,))
    child = db.variant("child1")
    assert child is not None
    assert child.net_model == "virtio"  # inherited
    assert child.disk_bus == "sata"  # virtio-block taken away by the child
    assert child.memory_mib == 3072  # the override's recommended
    assert child.vcpus == 1  # resources are not inherited: the generic default
    base = db.variant("base1")
    assert base is not None and (base.memory_mib, base.vcpus) == (2048, 4)  # 2 x minimum


def test_the_generic_modern_linux_entry_stands_in_for_releases_the_db_lacks() -> None:
    v = osinfo.lookup("linux2022")
    assert v is not None and v.net_model == "virtio" and v.machine == "q35"
    assert osinfo.db().choices()[0][0] == "linux2022"


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "a/b"},
        {"name": "x" * 300},
        {"name": "bad\x00"},
        {"vcpus": 0},
        {"vcpus": 10000},
        {"memory_mib": 0},
        {"boot": Boot.KERNEL},
        {"firmware": Firmware.UEFI_SECURE, "machine": "pc"},
    ],
)
def test_a_spec_no_host_could_take_is_refused(changes: dict[str, object]) -> None:
    spec = VmSpec(name="ok")
    with pytest.raises(InvalidInput):
        build(VmSpec(**{**spec.__dict__, **changes}))  # type: ignore[arg-type]


def test_quotes_and_unicode_in_a_name_are_escaped_not_broken() -> None:
    text = build(VmSpec(name='it\'s <ü> & "so"')).tostring()
    assert "<name>it&apos;s &lt;ü&gt; &amp; &quot;so&quot;</name>" in text
