"""Lifecycle on the real libvirtd with the real test guest.

vmdash acts through its pages; what happened is checked with the bare
libvirt API on a connection of the test's own.
"""

from __future__ import annotations

import html
import re

import libvirt
import pytest
from django.test import Client

from tests.conftest import audit_entries
from tests.realhost import Guest, wait_until
from vmdash.models import Host

pytestmark = [pytest.mark.django_db, pytest.mark.libvirtd]

RUNNING, PAUSED, SHUTOFF = (
    libvirt.VIR_DOMAIN_RUNNING,
    libvirt.VIR_DOMAIN_PAUSED,
    libvirt.VIR_DOMAIN_SHUTOFF,
)


def post(client: Client, guest: Guest, op: str, **data: str) -> int:
    return client.post(f"/hosts/local/domains/{guest.name}/{op}/", data).status_code


def test_it_starts_and_shuts_down_a_real_guest(client: Client, local: Host, make_guest) -> None:
    guest = make_guest()
    page = client.get("/domains/").content.decode()
    assert f'data-name="{guest.name}" data-state="shutoff"' in page
    assert post(client, guest, "start") == 302
    assert guest.state() == RUNNING
    guest.wait_for_banner()
    assert post(client, guest, "shutdown") == 302
    wait_until(lambda: guest.state() == SHUTOFF, 30, "the guest to power off after ACPI shutdown")
    assert guest.dom().state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN
    actions = list(audit_entries().order_by("id").values_list("action", "outcome"))
    assert actions == [("start", "ok"), ("shutdown", "ok")]


def test_it_forces_off_pauses_and_resumes(client: Client, local: Host, make_guest) -> None:
    guest = make_guest()
    post(client, guest, "start")
    assert post(client, guest, "pause") == 302
    assert guest.state() == PAUSED
    page = client.get(f"/hosts/local/domains/{guest.name}/").content.decode()
    assert 'class="badge state-paused"' in page and 'data-op="resume"' in page
    assert post(client, guest, "resume") == 302
    assert guest.state() == RUNNING
    assert post(client, guest, "force-off", confirm=guest.name) == 302
    assert guest.state() == SHUTOFF
    assert guest.dom().state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED


def test_it_hibernates_and_restores(client: Client, local: Host, make_guest) -> None:
    guest = make_guest()
    post(client, guest, "start")
    guest.wait_for_banner()
    assert post(client, guest, "save") == 302
    assert guest.state() == SHUTOFF
    assert guest.dom().hasManagedSaveImage(0)
    page = client.get("/domains/").content.decode()
    assert f'data-name="{guest.name}"' in page, re.findall(r"host-unreachable.*?</span>", page)
    row = page[page.index(f'data-name="{guest.name}"') :].split("</tr>")[0]
    assert ">saved<" in row and ">Restore<" in row
    assert post(client, guest, "start") == 302
    assert guest.dom().state() == [RUNNING, libvirt.VIR_DOMAIN_RUNNING_RESTORED]
    assert not guest.dom().hasManagedSaveImage(0)


def test_it_sets_autostart_and_deletes(client: Client, local: Host, make_guest) -> None:
    guest = make_guest()
    assert post(client, guest, "autostart-on") == 302
    assert guest.dom().autostart() == 1
    assert post(client, guest, "autostart-off") == 302
    assert guest.dom().autostart() == 0
    assert post(client, guest, "delete", confirm=guest.name) == 302
    with pytest.raises(libvirt.libvirtError):
        guest.dom()


def test_an_action_invalid_for_the_state_is_refused(
    client: Client, local: Host, make_guest
) -> None:
    guest = make_guest()
    response = client.post(f"/hosts/local/domains/{guest.name}/shutdown/")
    assert response.status_code == 409
    assert (
        f"Cannot shut down VM &#x27;{guest.name}&#x27;: it is shut off."
        in response.content.decode()
    )
    assert guest.state() == SHUTOFF


def test_the_detail_page_shows_the_real_devices(client: Client, local: Host, make_guest) -> None:
    guest = make_guest()
    post(client, guest, "start")
    page = client.get(f"/hosts/local/domains/{guest.name}/").content.decode()
    assert guest.dom().UUIDString() in page
    assert "direct kernel boot" in page and "128 MiB current" in page
    devices = client.get(f"/hosts/local/domains/{guest.name}/devices/").content.decode()
    assert "VNC" in devices and "127.0.0.1" in devices
    assert "/dev/pts/" in devices  # the serial pty the running guest got


def test_odd_titles_render_escaped_and_act_on_the_right_vm(
    client: Client, local: Host, make_guest
) -> None:
    odd = make_guest(title='<i>"quoted" & ünïcode</i>', description="it's <b>bold</b> & more")
    other = make_guest()
    page = client.get("/domains/").content.decode()
    assert html.escape('<i>"quoted" & ünïcode</i>') in page
    assert "<i>" not in page and "<b>bold" not in page
    post(client, odd, "start")
    assert odd.state() == RUNNING and other.state() == SHUTOFF
