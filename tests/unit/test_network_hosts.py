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


def test_a_network_deleted_between_list_and_read_is_left_out_and_the_rest_read() -> None:
    """Two people: one lists the networks while the other deletes one of them."""
    import libvirt

    from vmdash.virt.errors import still_there

    conn = libvirt.open("test:///default")
    try:
        for name in ("vmdash-t-goes", "vmdash-t-stays"):
            conn.networkDefineXML(f"<network><name>{name}</name></network>")
        listed = [n for n in conn.listAllNetworks(0) if n.name().startswith("vmdash-t-")]
        conn.networkLookupByName("vmdash-t-goes").undefine()
        gone = libvirt.VIR_ERR_NO_NETWORK
        read = still_there(listed, lambda n: n.XMLDesc(0) and n.name(), gone)
        assert read == ["vmdash-t-stays"]
        with pytest.raises(libvirt.libvirtError):  # other errors are not swallowed
            still_there(listed, lambda n: conn.networkDefineXML("<network/>"), gone)
    finally:
        conn.close()
