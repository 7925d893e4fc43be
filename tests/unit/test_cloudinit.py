"""The cloud-init NoCloud seed: its text (golden files), the ISO xorriso makes, the
wizard's validation and the seed CD-ROM in the new VM's XML."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.test import Client

from tests.unit.test_newvm_views import URL, _name, _post, _volumes, demo  # noqa: F401
from vmdash.models import Host
from vmdash.virt import cloudinit
from vmdash.virt.cloudinit import CloudInit
from vmdash.virt.errors import InvalidInput
from vmdash.virt.xml import parse
from vmdash.virt.xml.newdomain import Boot, DiskKind, DiskSpec, VmSpec, build

GOLDEN = Path(__file__).parent.parent / "data" / "newvm" / "cloudinit"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBnY0l1cO0Ss0b7xkZ3bYj5GmO6k5qk2n2gR9y8N4x3Q me@x"
SEEDS = {
    "hostname-only": CloudInit("vmdash-ci-a", instance_id="iid-1"),
    "user-key": CloudInit("web-1", user="debian", ssh_key=KEY, instance_id="iid-2"),
    "key-only": CloudInit("web-2", ssh_key=KEY, instance_id="iid-3"),
    "raw": CloudInit("db-1", user_data="#cloud-config\npackages: [nginx]\n", instance_id="iid-4"),
}


@pytest.mark.parametrize("case", sorted(SEEDS))
def test_seed_text_matches_golden(case: str) -> None:
    seed = SEEDS[case]
    text = f"# meta-data\n{cloudinit.meta_data(seed)}# user-data\n{cloudinit.user_data(seed)}"
    assert text == (GOLDEN / f"{case}.txt").read_text()


def test_tricky_values_are_quoted_not_pasted() -> None:
    seed = CloudInit("h", user='x"\nruncmd: [reboot]', instance_id="iid")
    assert "\nruncmd" not in cloudinit.user_data(seed)
    assert '"x\\"\\nruncmd: [reboot]"' in cloudinit.user_data(seed)


def test_generated_instance_ids_differ() -> None:
    a, b = (cloudinit.meta_data(CloudInit("h")) for _ in range(2))
    assert a != b and a.startswith('instance-id: "iid-')


def _iso_read(path: Path, *args: str) -> str:
    done = subprocess.run(
        ["xorriso", "-indev", str(path), *args], capture_output=True, text=True, check=True
    )
    return done.stdout + done.stderr


def test_iso_has_label_cidata_and_both_files(tmp_path: Path) -> None:
    seed = SEEDS["user-key"]
    iso = tmp_path / "seed.iso"
    iso.write_bytes(cloudinit.build_iso(seed))
    assert "Volume Id    : cidata" in _iso_read(iso, "-pvd_info")
    listing = _iso_read(iso, "-ls", "/")
    assert "'meta-data'" in listing and "'user-data'" in listing
    out = tmp_path / "out"
    out.mkdir()
    _iso_read(iso, "-osirrox", "on", "-extract", "/", str(out))
    assert (out / "meta-data").read_text() == cloudinit.meta_data(seed)
    assert (out / "user-data").read_text() == cloudinit.user_data(seed)


@pytest.mark.parametrize("bad", ["", "-x", "a_b", "x" * 64, "héte"])
def test_bad_hostnames_are_refused(bad: str) -> None:
    assert cloudinit.hostname_problem(bad)
    with pytest.raises(InvalidInput):
        cloudinit.build_iso(CloudInit(bad))


def test_user_data_must_be_cloud_config() -> None:
    assert "#cloud-config" in cloudinit.user_data_problem("packages: [x]\n")
    assert cloudinit.user_data_problem("#cloud-config\npackages: [x]\n") == ""


def test_seed_is_a_readonly_cdrom_on_virtio_scsi() -> None:
    seed_disk = DiskSpec(DiskKind.SEED, "default", "vm1-cidata.iso", "scsi", "raw")
    spec = VmSpec("vm1", boot=Boot.KERNEL, kernel="/k", disks=(seed_disk,), cloudinit=SEEDS["raw"])
    root = parse(build(spec).tostring())
    disk = root.find("devices/disk[@device='cdrom']")
    assert disk is not None and disk.find("readonly") is not None
    assert disk.find("source").attrib == {"pool": "default", "volume": "vm1-cidata.iso"}
    assert disk.find("target").get("bus") == "scsi"
    assert root.find("devices/controller[@type='scsi']").get("model") == "virtio-scsi"


def test_spec_with_bad_seed_is_refused() -> None:
    spec = VmSpec("vm1", cloudinit=CloudInit("bad_name"))
    with pytest.raises(InvalidInput):
        build(spec)


# The wizard (test driver): a message next to the field, and the seed in the XML.


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ci_hostname": "bad_name"}, "ci_hostname"),
        ({"ci_user": "debian"}, "ci_hostname"),
        ({"ci_hostname": "h", "ci_user_data": "packages: [x]"}, "ci_user_data"),
    ],
)
def test_bad_cloud_init_input_gets_a_message_next_to_its_field(
    as_alice: Client,
    demo: Host,  # noqa: F811
    changes: dict[str, str],
    field: str,
) -> None:
    before = _volumes()
    response = as_alice.post(URL, {**_post(_name()), **changes})
    assert response.status_code == 400
    page = response.content.decode()
    start = page.index(f'id="field-{field}"')
    assert "error-text" in page[start : page.index("</div>", start)], field
    assert _volumes() == before


@pytest.mark.django_db(transaction=True)
def test_show_the_xml_has_the_seed_cdrom(as_alice: Client, demo: Host) -> None:  # noqa: F811
    name = _name()
    page = as_alice.post(URL, _post(name, preview="1", ci_hostname="web-1")).content.decode()
    assert f"{name}-cidata.iso" in page and "virtio-scsi" in page
    assert f"{name}-cidata.iso" not in _volumes()  # nothing made by a preview
