"""libvirtd stops while vmdash runs: pages say so, and vmdash reconnects by itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from tests.realhost import libvirtd_pids, start_libvirtd, stop_libvirtd, wait_until
from vmdash.models import Host

pytestmark = [pytest.mark.django_db, pytest.mark.libvirtd, pytest.mark.restarts_libvirtd]


@pytest.fixture
def restart_afterwards() -> Iterator[None]:
    yield
    if not libvirtd_pids():
        start_libvirtd()


def test_pages_survive_a_libvirtd_restart_and_reconnect(
    client: Client, local: Host, make_guest, restart_afterwards: None, settings
) -> None:
    settings.VMDASH_RECONNECT_INTERVAL = 1
    guest = make_guest()
    assert f'data-name="{guest.name}"' in client.get("/domains/").content.decode()

    stop_libvirtd()
    response = client.get("/domains/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Host This machine is unreachable" in page and f'data-name="{guest.name}"' not in page
    host_page = client.get("/hosts/local/").content.decode()
    assert "unreachable" in host_page
    assert client.get(f"/hosts/local/domains/{guest.name}/").status_code == 503
    action = client.post(f"/hosts/local/domains/{guest.name}/start/")
    assert action.status_code == 503

    start_libvirtd()
    wait_until(
        lambda: f'data-name="{guest.name}"' in client.get("/domains/").content.decode(),
        30,
        "vmdash to list the guest again after libvirtd came back",
    )
    assert "connected" in client.get("/hosts/local/").content.decode()
    assert client.post(f"/hosts/local/domains/{guest.name}/start/").status_code == 302
    assert guest.state() == 1
