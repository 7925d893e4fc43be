"""Host URIs as an attack: libvirt's remote driver runs `command=` & co. as its
transport, and the test driver quotes the files it parses.

A canary script would create a file if any entrance (the dashboard's form, the
Django admin, VMDASH_HOSTS, a URI already in the database, the pool) let
libvirt run it. None may; each says which part of the URI it refused.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from tests.conftest import TESTNODE_URI, audit_entries
from vmdash.hostsync import sync_hosts
from vmdash.models import Host
from vmdash.virt.connection import pool
from vmdash.virt.errors import HostUnavailable

pytestmark = pytest.mark.django_db


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(the payload script, the file it would create)."""
    sign = tmp_path / "canary"
    script = tmp_path / "payload"
    script.write_text(f"#!/bin/sh\ntouch {sign}\n")
    script.chmod(0o755)
    yield script, sign
    assert not sign.exists(), "libvirt ran the payload"


def attacks(script: Path) -> list[tuple[str, str]]:
    """(attack URI, the part the refusal names)."""
    quoted = urllib.parse.quote(str(script), safe="")
    return [
        (f"qemu+ext:///system?command={script}", "'qemu+ext'"),
        (f"qemu+ssh://x@127.0.0.1/system?command={script}", "'command'"),
        ("qemu+ssh://x@127.0.0.1/system?command=/bin/sh", "'command'"),
        (f"qemu+ssh://{quoted}@127.0.0.1/system?command=/bin/sh", "% escapes"),
        (f"qemu+ssh://root@127.0.0.1/system?netcat={script}", "'netcat'"),
        (f"qemu+tcp://127.0.0.1/system?proxy={script}", "'proxy'"),
        (f"qemu+unix:///system?socket={script}", "'socket'"),
        (f"qemu:///system?command={script}", "'command'"),
        ("qemu+ssh://root@127.0.0.1/system?keyfile=/etc/shadow", "keyfile="),
        ("qemu+ssh://root@127.0.0.1/system?sshauth=agent", "'sshauth'"),
        ("qemu+ssh://root@127.0.0.1/system?mode=direct", "'mode'"),
        ("qemu+libssh2://root@127.0.0.1/system?known_hosts=/etc/shadow", "'known_hosts'"),
        ("qemu+tls://127.0.0.1/system?pkipath=/etc", "'pkipath'"),
        (f"qemu+ssh://-oProxyCommand={script}@127.0.0.1/system", "-oProxyCommand"),
        ("test:///etc/shadow", "test driver"),
        (f"test://{django_settings.DATA_DIR}/secret_key", "test driver"),
    ]


@pytest.fixture
def root(db: None) -> Client:
    c = Client()
    c.force_login(User.objects.create_superuser("root-admin", password="root-pw-1"))
    return c


def page(response: Any) -> str:
    return html.unescape(response.content.decode())


def test_the_dashboard_form_refuses_every_attack_uri(
    as_alice: Client, canary: tuple[Path, Path]
) -> None:
    for n, (uri, named) in enumerate(attacks(canary[0])):
        response = as_alice.post("/hosts/add/", {"slug": f"e{n}", "uri": uri, "enabled": "on"})
        assert response.status_code == 400, uri
        assert named in page(response), uri
    assert not Host.objects.exists()
    denied = audit_entries().filter(action="host-add", outcome="denied")
    assert denied.count() == len(attacks(canary[0]))
    assert all(e.message.split(":")[0] for e in denied)


def test_editing_a_host_to_an_attack_uri_is_refused(
    as_alice: Client, lab: Host, canary: tuple[Path, Path]
) -> None:
    uri, named = attacks(canary[0])[0]
    response = as_alice.post("/hosts/lab/edit/", {"slug": "lab", "uri": uri, "enabled": "on"})
    assert response.status_code == 400 and named in page(response)
    assert Host.objects.get(slug="lab").uri == TESTNODE_URI
    entry = audit_entries().get(action="host-edit")
    assert entry.outcome == "denied" and f"{TESTNODE_URI} → {uri}" in entry.message


def test_the_admin_refuses_every_attack_uri(root: Client, canary: tuple[Path, Path]) -> None:
    for n, (uri, named) in enumerate(attacks(canary[0])):
        response = root.post(
            "/admin/vmdash/host/add/", {"slug": f"e{n}", "name": "", "uri": uri, "enabled": "on"}
        )
        assert response.status_code == 200, uri  # the form again, with the error
        assert named in page(response), uri
    assert not Host.objects.exists()


def test_vmdash_hosts_refuses_every_attack_uri(settings: Any, canary: tuple[Path, Path]) -> None:
    for uri, named in attacks(canary[0]):
        settings.VMDASH_HOSTS = f"evil={uri}"
        with pytest.raises(ImproperlyConfigured) as err:
            sync_hosts()
        assert "'evil'" in str(err.value) and named in str(err.value), uri
    assert not Host.objects.exists()


def test_the_pool_never_opens_an_attack_uri(canary: tuple[Path, Path]) -> None:
    for uri, named in attacks(canary[0]):
        with pytest.raises(HostUnavailable) as err:
            pool().get(uri)
        assert named in str(err.value), uri


def test_an_attack_uri_already_in_the_database_is_never_opened(
    as_alice: Client, lab: Host, canary: tuple[Path, Path]
) -> None:
    for uri, named in attacks(canary[0]):
        Host.objects.filter(slug="lab").update(uri=uri)  # as an older vmdash stored it
        pool().drop(uri)
        for url in ("/", "/hosts/", "/hosts/lab/", "/domains/"):
            response = as_alice.get(url)
            assert response.status_code == 200, url
            assert "vmdash does not open" in page(response), (url, uri)
            assert named in page(response), (url, uri)
        toggle = as_alice.post("/hosts/lab/toggle/")  # disable: allowed, nothing opened
        assert toggle.status_code == 302
        Host.objects.filter(slug="lab").update(enabled=True)


def secrets() -> list[str]:
    first = Path("/etc/shadow").read_text().splitlines()[0]
    return [first, first.split(":")[1], django_settings.SECRET_KEY]


def test_no_page_shows_the_content_of_a_file_libvirt_read(
    as_alice: Client, settings: Any, tmp_path: Path
) -> None:
    # Even a test-driver world the rule lets through shows no line of what
    # libvirt parsed: a file that is not XML gives a fixed sentence.
    settings.VMDASH_TEST_DRIVER_DIR = str(tmp_path)
    leak = tmp_path / "leak.xml"
    leak.write_text(f"{django_settings.SECRET_KEY}\n")
    uris = ["test:///etc/shadow", f"test://{settings.DATA_DIR}/secret_key", f"test://{leak}"]
    for n, uri in enumerate(uris):
        response = as_alice.post("/hosts/add/", {"slug": f"f{n}", "uri": uri, "enabled": "on"})
        assert response.status_code == 400
        shown = page(response) + " ".join(e.message for e in audit_entries())
        for secret in secrets():
            assert secret not in shown, uri
    assert "libvirt refused the URI (error" in page(response)


def test_vmdash_run_stops_on_sigterm_with_a_silent_host(tmp_path: Path) -> None:
    """A silent host probed and listed leaves no thread that holds the shutdown."""
    import socket
    import subprocess
    import threading

    from tests.security.conftest import Browserless
    from tests.servers import ADMIN, start_vmdash

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    threading.Thread(
        target=lambda: [held.append(listener.accept()[0]) for _ in range(64)], daemon=True
    ).start()
    silent = f"qemu+tcp://127.0.0.1:{listener.getsockname()[1]}/system"
    srv = start_vmdash(
        tmp_path, hosts=f"demo=test:///default,silent={silent}", VMDASH_HOST_TIMEOUT="1"
    )
    try:
        person = Browserless(srv)
        assert person.login(*ADMIN) == 302
        status, _h, body = person.request(
            "/hosts/add/", {"slug": "s2", "uri": silent + "?no_tty=1", "enabled": "on"}
        )
        assert status == 400 and "no answer within 1 s" in body
        status, _h, body = person.request("/domains/")
        assert status == 200 and 'data-name="test"' in body  # the demo host's VM
        for url in ("/hosts/", "/"):
            status, _h, body = person.request(url)
            assert status == 200 and "unreachable" in body, url
        srv.proc.terminate()
        try:
            srv.proc.wait(5)
        except subprocess.TimeoutExpired:
            pytest.fail(f"vmdash_run ignored SIGTERM:\n{srv.log.read_text()[-2000:]}")
    finally:
        srv.stop()
        listener.close()
        for s in held:
            s.close()
