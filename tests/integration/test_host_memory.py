"""The host page's memory is the kernel's, as `virsh nodememstats` reports it."""

from __future__ import annotations

import re
import subprocess

import pytest
from django.test import Client

from vmdash.models import Host

pytestmark = [pytest.mark.django_db, pytest.mark.libvirtd]

_UNIT = {"KiB": 1 / 1024**2, "MiB": 1 / 1024, "GiB": 1, "TiB": 1024}


def test_the_host_page_shows_the_total_virsh_nodememstats_shows(
    client: Client, local: Host
) -> None:
    page = client.get("/hosts/local/").content.decode()
    shown = re.search(r"([\d.]+) (KiB|MiB|GiB|TiB) total", page)
    assert shown is not None and 'data-memory-from="nodememstats"' in page
    out = subprocess.run(
        ["virsh", "-c", "qemu:///system", "nodememstats"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total_kib = int(re.search(r"^total\s*:\s*(\d+) KiB", out, re.M).group(1))  # type: ignore[union-attr]
    gib = float(shown.group(1)) * _UNIT[shown.group(2)]
    half_a_decimal = 0.05 * _UNIT[shown.group(2)]  # the page rounds to one decimal
    assert abs(gib - total_kib / 1024**2) <= half_a_decimal + 1e-9
