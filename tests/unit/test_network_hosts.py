"""Which hosts are this machine: only there may vmdash read /sys/class/net and `ip addr`."""

from __future__ import annotations

import pytest

from vmdash.virt.networks import is_local


@pytest.mark.parametrize("uri", ["qemu:///system", "qemu+unix:///system", "qemu:///session"])
def test_it_takes_the_local_hypervisor_for_this_machine(uri: str) -> None:
    assert is_local(uri)


@pytest.mark.parametrize(
    "uri",
    ["qemu+ssh://root@lab1/system", "qemu+tls://lab1/system", "qemu://lab1/system",
     "qemu+tcp://10.0.0.2/system", "test:///default"],
)  # fmt: skip
def test_it_takes_remote_hosts_and_the_test_driver_for_other_machines(uri: str) -> None:
    assert not is_local(uri)
