"""Memory and vCPUs of the real test guest, changed from its Hardware tab and
checked with virsh: defined while shut off, a vCPU plugged in while it runs
(TCG takes it), a maximum that waits for the shutdown and is reverted, and a
balloon the guest cannot answer (it has no balloon driver) said as such."""

from __future__ import annotations

import html
import re
import subprocess
from collections.abc import Callable

import lxml.html
from django.test import Client

from tests.realhost import Guest, start_domain
from vmdash.models import Host


def virsh(*args: str) -> str:
    out = subprocess.run(
        ["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=True
    )
    return out.stdout


def vcpus(name: str, *flags: str) -> int:
    return int(virsh("vcpucount", name, *flags).strip())


def defined_memory(name: str) -> tuple[int, int]:
    """(<currentMemory>, <memory>) in KiB, as `virsh dumpxml --inactive` has them."""
    text = virsh("dumpxml", "--inactive", name)
    current = re.search(r"<currentMemory unit='KiB'>(\d+)<", text)
    maximum = re.search(r"<memory unit='KiB'>(\d+)<", text)
    assert current and maximum, text
    return int(current.group(1)), int(maximum.group(1))


def post(client: Client, name: str, memory: int, max_memory: int, cpus: int, max_cpus: int) -> str:
    values = {"memory": memory, "max_memory": max_memory, "vcpus": cpus, "max_vcpus": max_cpus}
    response = client.post(
        f"/hosts/local/domains/{name}/hardware/",
        {k: str(v) for k, v in values.items()},
        follow=True,
    )
    assert response.status_code == 200
    page = lxml.html.fromstring(response.content)
    return " ".join(page.xpath("string(//*[contains(@class, 'alert')])").split())


def pending(client: Client, name: str) -> list[str]:
    page = lxml.html.fromstring(client.get(f"/hosts/local/domains/{name}/hardware/").content)
    return [str(t) for t in page.xpath("//table[@class='sizing']//tr[@class='pending']/th/text()")]


def test_a_guests_vcpus_and_memory_change_as_virsh_reports_them(
    local: Host, make_guest: Callable[..., Guest], client: Client
) -> None:
    guest = make_guest()  # 1 vCPU, 128 MiB
    said = post(client, guest.name, 128, 192, 1, 2)
    assert "Saved. It applies when the VM starts." in said
    assert vcpus(guest.name, "--config", "--maximum") == 2
    assert vcpus(guest.name, "--config", "--current") == 1
    assert defined_memory(guest.name) == (128 * 1024, 192 * 1024)
    # A guest without a balloon driver keeps all of <memory> (libvirt reports
    # what it has): the Hardware tab shows that, not the wish.
    post(client, guest.name, 192, 192, 1, 2)

    start_domain(guest.dom())
    guest.wait_for_banner()
    assert pending(client, guest.name) == []
    said = post(client, guest.name, 192, 192, 2, 2)  # plug the second vCPU in
    assert "Changed in the running VM and saved in its definition." in said
    assert vcpus(guest.name, "--live", "--current") == 2
    assert vcpus(guest.name, "--config", "--current") == 2

    said = post(client, guest.name, 192, 192, 2, 3)  # a maximum: only at the next start
    assert "Some values apply only after shutdown" in said
    assert vcpus(guest.name, "--live", "--maximum") == 2
    assert vcpus(guest.name, "--config", "--maximum") == 3
    assert pending(client, guest.name) == ["Maximum vCPUs"]
    response = client.post(f"/hosts/local/domains/{guest.name}/hardware/revert/")
    assert response.status_code == 302
    assert vcpus(guest.name, "--config", "--maximum") == 2
    assert pending(client, guest.name) == []

    said = post(client, guest.name, 96, 192, 2, 2)  # the balloon: this guest has no driver
    assert "did not take it now" in said and "balloon driver" in said
    assert int(virsh("dommemstat", guest.name).split("actual")[1].split()[0]) == 192 * 1024
    assert defined_memory(guest.name)[0] == 96 * 1024
    assert pending(client, guest.name) == ["Memory"]


def vcpupin(name: str, *flags: str) -> dict[int, str]:
    """`virsh vcpupin` as a table: vCPU -> host CPU list."""
    out: dict[int, str] = {}
    for line in virsh("vcpupin", name, *flags).splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) == 2 and parts[0].isdigit():
            out[int(parts[0])] = parts[1]
    return out


def test_the_guests_vcpu_is_pinned_to_host_cpu_1_live_and_in_its_definition(
    local: Host, make_guest: Callable[..., Guest], client: Client
) -> None:
    guest = make_guest()
    start_domain(guest.dom())
    cpus = int(virsh("nodeinfo").split("CPU(s):")[1].split()[0])
    everything = f"0-{cpus - 1}" if cpus > 1 else "0"
    assert vcpupin(guest.name, "--live") == {0: everything}
    url = f"/hosts/local/domains/{guest.name}/hardware/pins/"
    said = client.post(url, {"pin-0": "1"}, follow=True).content.decode()
    assert "Pinned in the running VM and saved in its definition." in said
    assert vcpupin(guest.name, "--live") == {0: "1"}
    assert vcpupin(guest.name, "--config") == {0: "1"}
    assert "<vcpupin vcpu='0' cpuset='1'/>" in virsh("dumpxml", "--inactive", guest.name)
    said = client.post(url, {"pin-0": "7-2"}, follow=True).content.decode()
    assert "a range goes up: 2-7" in said
    assert vcpupin(guest.name, "--live") == {0: "1"}


def test_a_guest_numa_node_is_defined_and_the_guest_starts_with_it(
    local: Host, make_guest: Callable[..., Guest], client: Client
) -> None:
    guest = make_guest()  # 1 vCPU, 128 MiB
    said = client.post(
        f"/hosts/local/domains/{guest.name}/hardware/numa/",
        {"cell-0-cpus": "0", "cell-0-memory": "128"},
        follow=True,
    ).content.decode()
    assert "Saved. It applies when the VM next starts." in said
    cell = "<cell id='0' cpus='0' memory='131072' unit='KiB'/>"
    assert cell in virsh("dumpxml", "--inactive", guest.name)
    start_domain(guest.dom())
    guest.wait_for_banner()
    assert cell in virsh("dumpxml", guest.name)  # the running guest has the node


def test_the_guests_cpu_mode_follows_what_this_qemu_offers(
    local: Host, make_guest: Callable[..., Guest], client: Client
) -> None:
    guest = make_guest()  # 1 vCPU; under TCG here unless hardware KVM is loaded
    url = f"/hosts/local/domains/{guest.name}/hardware/cpu/"
    virt_type = "qemu" if "type='qemu'" in virsh("dumpxml", guest.name) else "kvm"
    caps = virsh("domcapabilities", "--virttype", virt_type, "--arch", "x86_64", "--machine", "pc")
    passthrough = "<mode name='host-passthrough' supported='yes'" in caps
    one = {"sockets": "1", "dies": "1", "cores": "1", "threads": "1"}
    said = client.post(url, {"mode": "host-passthrough", **one}, follow=True).content.decode()
    if not passthrough:
        assert "not host-passthrough" in html.unescape(said)
        assert "host-passthrough" not in virsh("dumpxml", "--inactive", guest.name)
    said = client.post(url, {"mode": "custom", "model": "qemu64", **one}, follow=True)
    assert "Saved. It applies when the VM next starts." in said.content.decode()
    defined = virsh("dumpxml", "--inactive", guest.name)
    assert "<cpu mode='custom'" in defined and ">qemu64</model>" in defined
    assert "<topology sockets='1' dies='1' cores='1' threads='1'/>" in defined
    start_domain(guest.dom())
    guest.wait_for_banner()
    assert ">qemu64</model>" in virsh("dumpxml", guest.name)
