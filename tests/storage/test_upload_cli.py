"""`vmdash-cli upload` with an API token: the file streams over the upload
WebSocket through libvirt into a real dir pool, byte for byte (read back with
libvirt's own stream); a token narrowed to Viewer is refused and leaves
nothing; a wrong token opens nothing. Against `manage.py vmdash_run`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest

from tests.servers import Vmdash, start_vmdash

MiB = 1 << 20
MAKE_TOKEN = """
from django.contrib.auth.models import User
from people import tokens
from people.models import ApiToken
from vmdash.access.models import Role
user = User.objects.get(username="admin")
role = Role.objects.get(slug={role!r}) if {role!r} else None
print(tokens.issue(ApiToken(user=user, name={name!r}, role=role, scope="site" if role else "")))
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Vmdash]:
    srv = start_vmdash(tmp_path / "vmdash", hosts="local=qemu:///system")
    yield srv
    srv.stop()


def token(srv: Vmdash, name: str, role: str = "") -> str:
    return srv.manage("shell", "-v", "0", "-c", MAKE_TOKEN.format(name=name, role=role)).split()[-1]


def cli(srv: Vmdash, raw: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("vmdash-cli")
    env = {"PATH": "/usr/bin:/bin", "VMDASH_URL": srv.url, "VMDASH_TOKEN": raw}
    return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=120)


def read_back(vol: libvirt.virStorageVol, size: int) -> bytes:
    stream = vol.connect().newStream(0)
    vol.download(stream, 0, size, 0)
    out = bytearray()
    while len(out) < size:
        got = stream.recv(MiB)
        if not got:
            break
        out += got
    stream.finish()
    return bytes(out)


def test_the_cli_uploads_a_file_through_libvirt(
    server: Vmdash, make_pool: Callable[[], libvirt.virStoragePool], tmp_path: Path
) -> None:
    p = make_pool()
    data = os.urandom(5 * MiB + 123)
    source = tmp_path / "image.raw"
    source.write_bytes(data)

    done = cli(server, token(server, "full"), "upload", f"local/{p.name()}", str(source))
    assert done.returncode == 0, done.stderr
    assert f"local/{p.name()}/image.raw: {len(data)} bytes uploaded" in done.stdout
    p.refresh(0)
    vol = p.storageVolLookupByName("image.raw")
    assert vol.info()[1] == len(data)
    assert read_back(vol, len(data)) == data  # what libvirt holds, byte for byte

    viewer = cli(server, token(server, "viewer", "viewer"), "upload", f"local/{p.name()}",
                 str(source), "--name", "refused.raw")  # fmt: skip
    assert viewer.returncode == 1
    assert "may not upload" in viewer.stderr
    wrong = cli(server, "vmd_000000000000_nope", "upload", f"local/{p.name()}", str(source))
    assert wrong.returncode == 1 and "Log in" in wrong.stderr
    p.refresh(0)
    assert sorted(p.listVolumes()) == ["image.raw"]  # the refused ones left nothing
