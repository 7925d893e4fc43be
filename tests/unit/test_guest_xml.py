"""The XML we generate passes libvirt's own RNG schemas (virt-xml-validate)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.guest import guest_domain_xml


@pytest.mark.parametrize("options", [{}, {"vnc": False, "serial": False}, {"title": "<&\"'>"}])
def test_the_test_guest_definition_is_valid(tmp_path: Path, options: dict[str, object]) -> None:
    validate = shutil.which("virt-xml-validate")
    assert validate, "virt-xml-validate is missing: apt-get install libvirt-clients"
    path = tmp_path / "guest.xml"
    path.write_text(
        guest_domain_xml(
            "vmdash-t-schema",
            kernel=Path("/var/cache/vmdash/test-guest/vmlinuz"),
            initrd=Path("/var/cache/vmdash/test-guest/initrd.img"),
            serial_log=tmp_path / "serial.log",
            **options,  # type: ignore[arg-type]
        )
    )
    out = subprocess.run([validate, str(path), "domain"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
