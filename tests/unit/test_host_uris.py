"""The one URI rule: what vmdash may open, and every entrance asks it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from tests.conftest import TESTNODE_URI
from vmdash.hostsync import parse_hosts, sync_hosts
from vmdash.models import Host
from vmdash.virt.connection import pool
from vmdash.virt.errors import HostUnavailable, InvalidInput
from vmdash.virt.uris import check_uri, redact


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        ("qemu:///system", "qemu:///system"),
        ("qemu:///session", "qemu:///session"),
        ("  qemu+ssh://root@Lab1.example.org/system ", "qemu+ssh://root@lab1.example.org/system"),
        ("qemu+ssh://vm-admin_1@10.0.0.5:2222/system?no_tty=1", None),
        ("qemu+tls://lab1/system?no_verify=1", None),
        ("qemu+tcp://[::1]:16509/system", None),
        ("qemu+libssh2://root@lab1/system", None),
        ("qemu+unix:///system", None),
        ("qemu://lab1/system", None),
    ],
)
def test_it_accepts_the_usual_host_uris(uri: str, normal: str | None) -> None:
    assert check_uri(uri) == (normal or uri)


@pytest.mark.parametrize(
    ("uri", "refused"),
    [
        ("qemu+ext:///system?command=/tmp/x", "'qemu+ext'"),
        ("qemu+ssh://x@127.0.0.1/system?command=/bin/sh", "'command'"),
        ("qemu+ssh://%2Ftmp%2Fpayload@127.0.0.1/system?command=/bin/sh", "% escapes"),
        ("qemu+ssh://root@lab1/system?netcat=/tmp/x", "'netcat'"),
        ("qemu+unix:///system?socket=/tmp/evil.sock", "'socket'"),
        ("qemu+tcp://lab1/system?proxy=/tmp/x", "'proxy'"),
        ("qemu+ssh://root@lab1/system?sshauth=privkey", "'sshauth'"),
        ("qemu+ssh://root@lab1/system?mode=legacy", "'mode'"),
        ("qemu+libssh2://root@lab1/system?known_hosts=/etc/shadow", "'known_hosts'"),
        ("qemu+tls://lab1/system?pkipath=/etc", "'pkipath'"),
        ("qemu+ssh://root@lab1/system?keyfile=/etc/shadow", "keyfile="),
        ("qemu+ssh://root@lab1/system?no_tty=yes", "0 or 1"),
        ("qemu+ssh://root@lab1/system?no_tty=1&no_tty=1", "twice"),
        ("qemu+ssh://-oProxyCommand=x@lab1/system", "'-oProxyCommand=x'"),
        ("qemu+ssh://root:pw@lab1/system", "A password in the URI"),
        ("qemu+ssh://root@-lab1/system", "'-lab1'"),
        ("qemu+ssh://root@lab1/etc/passwd", "'/etc/passwd'"),
        ("qemu+ssh:///system", "needs a host name"),
        ("qemu+unix://lab1/system", "leave the host out"),
        ("qemu+tcp://lab1:99999/system", "'99999'"),
        ("xen:///system", "'xen'"),
        ("QEMU:///system", "not a libvirt URI"),
        ("qemu:///sys\ntem", "control characters"),
        ("test:///etc/shadow", "test driver"),
        ("test:///default", "demo host"),
        ("test:///default?again", "test driver"),
    ],
)
def test_it_refuses_anything_else_and_names_the_refused_part(uri: str, refused: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_uri(uri)
    assert refused in str(err.value)


def test_the_demo_host_is_allowed_where_vmdash_itself_adds_it() -> None:
    assert check_uri("test:///default", allow_demo=True) == "test:///default"


def test_test_driver_worlds_are_allowed_only_inside_their_directory(
    settings: Any, tmp_path: Path
) -> None:
    assert check_uri(TESTNODE_URI) == TESTNODE_URI
    settings.VMDASH_TEST_DRIVER_DIR = str(tmp_path / "worlds")
    (tmp_path / "worlds").mkdir()
    (tmp_path / "worlds" / "a.xml").write_text("<node/>")
    (tmp_path / "worlds" / "escape.xml").symlink_to("/etc/passwd")
    assert check_uri(f"test://{tmp_path}/worlds/a.xml") == f"test://{tmp_path}/worlds/a.xml"
    for outside in (TESTNODE_URI, f"test://{tmp_path}/worlds/../a.xml", "test:///etc/x.xml"):
        with pytest.raises(InvalidInput):
            check_uri(outside)
    with pytest.raises(InvalidInput):
        check_uri(f"test://{tmp_path}/worlds/escape.xml")  # a symlink out is outside
    settings.VMDASH_TEST_DRIVER_DIR = ""
    with pytest.raises(InvalidInput):
        check_uri(f"test://{tmp_path}/worlds/a.xml")


def test_keyfile_must_lie_inside_the_key_directory(settings: Any, tmp_path: Path) -> None:
    keys = tmp_path / "ssh"
    keys.mkdir()
    (keys / "id_lab1").write_text("key")
    (keys / "out").symlink_to("/etc/shadow")
    settings.VMDASH_SSH_KEY_DIR = str(keys)
    uri = f"qemu+ssh://root@lab1/system?keyfile={keys}/id_lab1"
    assert check_uri(uri) == uri
    for bad in (f"{keys}/../x", f"{keys}/out", "/etc/shadow", "", f"{keys}"):
        with pytest.raises(InvalidInput) as err:
            check_uri(f"qemu+ssh://root@lab1/system?keyfile={bad}")
        assert "VMDASH_SSH_KEY_DIR" in str(err.value)


def test_a_password_in_a_refused_uri_is_not_kept() -> None:
    assert redact("qemu+ssh://root:hunter2@lab1/system") == "qemu+ssh://root:***@lab1/system"


@pytest.mark.django_db
def test_the_model_refuses_a_bad_uri_on_save_and_clean() -> None:
    with pytest.raises(ValidationError):
        Host.objects.create(slug="x", uri="qemu+ext:///system?command=/bin/true")
    host = Host(slug="x", uri="qemu+ssh://x@127.0.0.1/system?command=/bin/sh")
    with pytest.raises(ValidationError) as err:
        host.full_clean()
    assert "'command'" in str(err.value)
    assert not Host.objects.exists()


@pytest.mark.django_db
def test_vmdash_hosts_names_the_entry_it_refuses(settings: Any) -> None:
    settings.VMDASH_HOSTS = f"lab={TESTNODE_URI},evil=qemu+ext:///system?command=/bin/true"
    with pytest.raises(ImproperlyConfigured) as err:
        sync_hosts()
    assert "'evil'" in str(err.value) and "'qemu+ext'" in str(err.value)
    assert not Host.objects.exists()
    assert parse_hosts("demo=test:///default") == [("demo", "test:///default")]


def test_the_pool_never_opens_a_uri_the_rule_refuses() -> None:
    with pytest.raises(HostUnavailable) as err:
        pool().get("qemu+ext:///system?command=/bin/true")
    assert "'qemu+ext'" in str(err.value)
