"""Importing a vendor's domain XML on the real libvirtd: every line kept or reported."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from tests.realhost import PREFIX, fresh_conn, remove_domain
from vmdash.virt import importxml
from vmdash.virt.errors import InvalidInput
from vmdash.virt.refs import HostRef

pytestmark = pytest.mark.libvirtd
HOST = HostRef("local", "qemu:///system")
TEMPLATE = Path(__file__).resolve().parent.parent / "data" / "newvm" / "vendor-nfv.xml"
POOL_ROOT = Path("/var/lib/libvirt/images")


@pytest.fixture
def pool_name(system_conn: libvirt.virConnect) -> Iterator[str]:
    name = f"{PREFIX}import-{uuid.uuid4().hex[:6]}"
    root = etree.Element("pool", type="dir")
    etree.SubElement(root, "name").text = name
    etree.SubElement(etree.SubElement(root, "target"), "path").text = str(POOL_ROOT / name)
    p = system_conn.storagePoolDefineXML(etree.tostring(root, encoding="unicode"), 0)
    p.build(0)
    p.create(0)
    vol = etree.Element("volume")
    etree.SubElement(vol, "name").text = "vnf.qcow2"
    etree.SubElement(vol, "capacity").text = str(2**20)
    etree.SubElement(etree.SubElement(vol, "target"), "format", type="qcow2")
    p.createXML(etree.tostring(vol, encoding="unicode"), 0)
    yield name
    for step in (
        lambda: [v.delete(0) for v in p.listAllVolumes(0)],
        p.destroy,
        lambda: p.delete(0),
    ):
        try:
            step()
        except libvirt.libvirtError:
            pass
    p.undefine()


@pytest.fixture
def template(pool_name: str) -> Iterator[tuple[str, str]]:
    """The vendor template, its disk pointed at this test's pool, under a fresh name."""
    tree = etree.parse(str(TEMPLATE))
    root = tree.getroot()
    name = f"{PREFIX}vnf-{uuid.uuid4().hex[:6]}"
    root.find("name").text = name  # type: ignore[union-attr]
    root.find("devices/disk/source").set("pool", pool_name)  # type: ignore[union-attr]
    yield name, etree.tostring(tree, encoding="unicode")
    try:
        remove_domain(fresh_conn().lookupByName(name))
    except libvirt.libvirtError:
        pass


def test_the_vendor_template_is_kept_whole(template: tuple[str, str]) -> None:
    name, text = template
    assert importxml.check(HOST, text) == []
    done = importxml.define(HOST, text)
    assert done.lost == (), "\n".join(done.lost)
    stored = fresh_conn().lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    for kept in (
        "<vcpupin vcpu='3' cpuset='1'/>",
        "<memnode cellid='0' mode='strict' nodeset='0'/>",
        "<page size='2048' unit='KiB' nodeset='0'/>",
        "<virtualport type='openvswitch'>",
        "<interface type='vhostuser'>",
        "<tag id='42'/>",
    ):
        assert kept in stored


def test_an_unknown_element_is_refused_by_the_schema_and_reported_when_defined_anyway(
    template: tuple[str, str],
) -> None:
    _name, text = template
    root = etree.fromstring(text.encode())
    etree.SubElement(root.find("devices"), "vendor-offload", mode="dpdk")  # type: ignore[arg-type]
    unknown = etree.tostring(root, encoding="unicode")
    with pytest.raises(InvalidInput):
        importxml.define(HOST, unknown)
    done = importxml.define(HOST, unknown, validate=False)
    assert any("vendor-offload" in line and "dropped" in line for line in done.lost), done.lost


def test_a_user_alias_libvirt_does_not_keep_is_reported(template: tuple[str, str]) -> None:
    _name, text = template
    root = etree.fromstring(text.encode())
    nic = root.find("devices/interface")
    etree.SubElement(nic, "alias", name="dataport0")  # type: ignore[arg-type]
    done = importxml.define(HOST, etree.tostring(root, encoding="unicode"))
    assert any("alias" in line for line in done.lost), done.lost


@pytest.mark.parametrize(
    "text",
    [
        "not xml at all",
        "<network><name>n</name></network>",
        "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
        "<name>x</name><qemu:commandline><qemu:arg value='-s'/></qemu:commandline></domain>",
    ],
)
def test_xml_vmdash_will_not_define_is_refused_before_libvirt(text: str) -> None:
    with pytest.raises(InvalidInput):
        importxml.check(HOST, text)


def test_a_missing_network_and_volume_are_named(template: tuple[str, str]) -> None:
    _name, text = template
    root = etree.fromstring(text.encode())
    root.find("devices/disk/source").set("volume", "absent.qcow2")  # type: ignore[union-attr]
    nic = etree.SubElement(root.find("devices"), "interface", type="network")  # type: ignore[arg-type]
    etree.SubElement(nic, "source", network="vmdash-t-no-such-net")
    problems = importxml.check(HOST, etree.tostring(root, encoding="unicode"))
    assert any("absent.qcow2" in p for p in problems)
    assert any("vmdash-t-no-such-net" in p for p in problems)
