"""Network interfaces of the real test guest, from its Devices tab, checked
with virsh: one added to the shut-off guest's definition, one plugged into
the running guest, a link set down and up again, one taken out. An isolated
network of the test's own carries them."""

from __future__ import annotations

import contextlib
import html
import subprocess
import uuid
from collections.abc import Callable, Iterator

import libvirt
import pytest
from django.test import Client
from lxml import etree

from tests.realhost import PREFIX, Guest, start_domain
from vmdash.models import AuditEntry, Host


def virsh(*args: str) -> str:
    out = subprocess.run(
        ["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=True
    )
    return out.stdout


def macs(name: str, *flags: str) -> list[str]:
    """The MACs `virsh domiflist` lists (--inactive: the definition)."""
    lines = virsh("domiflist", name, *flags).splitlines()[2:]
    return [line.split()[-1] for line in lines if line.strip()]


@pytest.fixture
def network(system_conn: libvirt.virConnect) -> Iterator[str]:
    tag = uuid.uuid4().hex[:6]
    name = f"{PREFIX}nic-{tag}"
    root = etree.Element("network")
    etree.SubElement(root, "name").text = name
    etree.SubElement(root, "bridge", name=f"vbr-{tag}")
    third = int(tag[:2], 16) % 200 + 20
    etree.SubElement(root, "ip", address=f"10.253.{third}.1", prefix="24")
    net = system_conn.networkDefineXML(etree.tostring(root, encoding="unicode"))
    net.create()
    yield name
    for step in (net.destroy, net.undefine):
        with contextlib.suppress(libvirt.libvirtError):
            step()


def post(client: Client, vm: str, what: str, **data: str) -> str:
    response = client.post(f"/hosts/local/domains/{vm}/nics/{what}/", data, follow=True)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_nics_are_added_plugged_in_linked_down_and_taken_out(
    local: Host, make_guest: Callable[..., Guest], client: Client, network: str
) -> None:
    guest = make_guest()
    said = post(client, guest.name, "add", network=network, model="virtio", mac="52:54:00:aa:00:01")
    assert "A virtio NIC (52:54:00:aa:00:01) on network" in said
    assert macs(guest.name, "--inactive") == ["52:54:00:aa:00:01"]

    start_domain(guest.dom())
    guest.wait_for_banner()
    said = post(client, guest.name, "add", network=network, model="e1000", mac="")
    assert "The running guest sees it now" in said
    live = macs(guest.name)
    assert len(live) == 2 and "52:54:00:aa:00:01" in live
    second = next(m for m in live if m != "52:54:00:aa:00:01")
    assert macs(guest.name, "--inactive") == live

    post(client, guest.name, "link", mac=second, state="down")
    assert "down" in virsh("domif-getlink", guest.name, second)
    post(client, guest.name, "link", mac=second, state="up")
    assert "up" in virsh("domif-getlink", guest.name, second)

    said = post(client, guest.name, "remove", mac="52:54:00:aa:00:01")
    assert "52:54:00:aa:00:01" not in macs(guest.name, "--inactive")
    # Out of the running guest too, or said to leave at its next stop.
    assert "52:54:00:aa:00:01 is removed." in said or "leaves at the next stop" in said
    if "is removed." in said:
        assert "52:54:00:aa:00:01" not in macs(guest.name)
    assert AuditEntry.objects.filter(action__startswith="nic-", outcome="ok").count() == 5


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ({"network": "no-such-net", "model": "virtio"}, "There is no network 'no-such-net'"),
        ({"model": "ne2k_pci"}, "Choose a model: virtio"),
        ({"model": "virtio", "mac": "52:54:00:zz:00:01"}, "six pairs of hex digits"),
        ({"model": "virtio", "mac": "01:00:5e:00:00:01"}, "That is a multicast address"),
    ],
)
def test_a_nic_that_cannot_be_is_refused(
    local: Host, make_guest: Callable[..., Guest], client: Client, network: str,
    data: dict[str, str], said: str,
) -> None:  # fmt: skip
    guest = make_guest()
    answer = post(client, guest.name, "add", **{"network": network, **data})
    assert said in answer
    assert macs(guest.name, "--inactive") == []


def test_the_api_plugs_links_and_takes_out_a_nic_of_the_running_guest(
    local: Host, make_guest: Callable[..., Guest], alice: object, network: str
) -> None:
    from people import tokens
    from people.models import ApiToken

    api = Client(HTTP_AUTHORIZATION=f"Bearer {tokens.issue(ApiToken(user=alice, name='nics'))}")
    guest = make_guest()
    start_domain(guest.dom())
    guest.wait_for_banner()
    base = f"/api/v1/hosts/local/vms/{guest.name}/nics/"
    added = api.post(base, {"network": network, "mac": "52:54:00:aa:00:07"},
                     content_type="application/json")  # fmt: skip
    assert added.status_code == 200, added.content
    assert added.json() == {"device": "52:54:00:aa:00:07", "live": True, "waiting": False}
    assert "52:54:00:aa:00:07" in macs(guest.name) and "52:54:00:aa:00:07" in macs(
        guest.name, "--inactive"
    )  # virsh: running and defined
    down = api.put(f"{base}52:54:00:aa:00:07/link/", {"up": False},
                   content_type="application/json")  # fmt: skip
    assert down.status_code == 200 and "down" in virsh(
        "domif-getlink", guest.name, "52:54:00:aa:00:07"
    )
    gone = api.delete(f"{base}52:54:00:aa:00:07/")
    assert gone.status_code == 200, gone.content
    assert "52:54:00:aa:00:07" not in macs(guest.name, "--inactive")
    assert (
        AuditEntry.objects.filter(action__startswith="nic-", via="api", outcome="ok").count() == 3
    )
