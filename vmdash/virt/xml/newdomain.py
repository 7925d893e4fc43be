"""A new VM's domain XML from a typed spec: what virt-install does with its flags.

`build(spec)` starts from a skeleton and sets every value through the field
tables of vmdash/virt/xml/domain.py (elements they do not declare are made
with lxml and put in libvirt's order): no user input is ever formatted into
XML text. Disks name pool volumes (<disk type='volume'>), so the same XML
works on a remote host. Golden files in tests/data/newvm/ hold the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lxml import etree

from vmdash.virt.cloudinit import CloudInit
from vmdash.virt.cloudinit import check as cloudinit_check
from vmdash.virt.errors import InvalidInput
from vmdash.virt.names import name_problem
from vmdash.virt.xml import insert
from vmdash.virt.xml.domain import DomainXML


class Firmware(StrEnum):
    BIOS = "bios"
    UEFI = "uefi"
    UEFI_SECURE = "uefi-secure"


class Boot(StrEnum):
    CDROM = "cdrom"  # install from an ISO
    HD = "hd"  # import an existing disk, or a cloud image
    NETWORK = "network"  # PXE
    KERNEL = "kernel"  # direct kernel boot


class DiskKind(StrEnum):
    NEW = "new"  # a new volume in a pool
    VOLUME = "volume"  # an existing volume
    CDROM = "cdrom"  # an ISO volume, read-only
    SEED = "seed"  # a cloud-init NoCloud seed ISO that the create makes (a cdrom)


@dataclass(frozen=True)
class DiskSpec:
    kind: DiskKind
    pool: str
    volume: str
    bus: str = "virtio"
    format: str = "qcow2"  # the driver type; for NEW also the volume's format
    capacity: int = 0  # bytes, NEW only
    backing: str = ""  # NEW qcow2 over this volume of the same pool (a cloud image)


@dataclass(frozen=True)
class NicSpec:
    type: str = "network"  # network or bridge
    source: str = "default"
    model: str = "virtio"


@dataclass(frozen=True)
class VmSpec:
    name: str
    os_id: str = "generic"
    memory_mib: int = 1024
    vcpus: int = 1
    virt_type: str = "kvm"  # kvm, or qemu (TCG)
    arch: str = "x86_64"
    machine: str = "q35"
    firmware: Firmware = Firmware.BIOS
    tpm: bool = False
    cpu_mode: str = ""  # "", host-passthrough, host-model
    boot: Boot = Boot.HD
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    vnc: bool = True
    vnc_listen: str = "127.0.0.1"
    serial: bool = True
    localtime: bool = False  # Windows keeps the clock in local time
    title: str = ""
    extras: dict[str, str] = field(default_factory=dict)
    cloudinit: CloudInit | None = None  # the SEED disk's content


SKELETON = """<domain type='kvm'>
  <name>x</name>
  <memory unit='KiB'>1</memory>
  <currentMemory unit='KiB'>1</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
  </devices>
</domain>
"""
# Targets by bus: the first free name for each disk.
_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd"}


def check(spec: VmSpec) -> None:
    """InvalidInput for what no host could take (the host's own limits: vmdash.virt.create)."""
    problem = name_problem(spec.name)
    if problem:
        raise InvalidInput(f"The VM name {spec.name!r} cannot be used: {problem}.")
    if "/" in spec.name:
        raise InvalidInput("A VM name cannot contain '/'.")
    if spec.memory_mib < 16:
        raise InvalidInput("A VM needs at least 16 MiB of memory.")
    if not 1 <= spec.vcpus <= 4096:
        raise InvalidInput("A VM has between 1 and 4096 vCPUs.")
    if spec.boot == Boot.KERNEL and not spec.kernel:
        raise InvalidInput("Direct kernel boot needs a kernel path.")
    if spec.firmware == Firmware.UEFI_SECURE and spec.machine != "q35":
        raise InvalidInput("Secure Boot needs the q35 machine type.")
    if spec.cloudinit is not None:
        cloudinit_check(spec.cloudinit)


def build(spec: VmSpec) -> DomainXML:
    """The domain XML for `spec`; InvalidInput for a spec no host could take."""
    check(spec)
    doc = DomainXML.parse(SKELETON)
    doc.type, doc.name = spec.virt_type, spec.name
    if spec.title:
        doc.title = spec.title
    doc.memory_kib = doc.current_memory_kib = spec.memory_mib * 1024
    doc.vcpus = spec.vcpus
    doc.arch, doc.machine = spec.arch, spec.machine
    _os(doc, spec)
    if spec.cpu_mode:
        _element(doc, doc.node, "cpu", mode=spec.cpu_mode)
    if spec.localtime:
        clock = doc.node.find("clock")
        assert clock is not None
        clock.set("offset", "localtime")
    _disks(doc, spec)
    _nics(doc, spec)
    _devices(doc, spec)
    return doc


def _element(doc: DomainXML, parent: etree._Element, tag: str, **attrib: str) -> etree._Element:
    """A new child in libvirt's order (DomainXML.ORDERS), indented like its siblings."""
    child = etree.Element(tag, attrib)
    insert(parent, child, doc.ORDERS.get(str(parent.tag), ()))
    return child


def _os(doc: DomainXML, spec: VmSpec) -> None:
    os_node = doc.node.find("os")
    assert os_node is not None
    if spec.firmware != Firmware.BIOS:
        doc.firmware = "efi"
        if spec.firmware == Firmware.UEFI_SECURE:
            fw = _element(doc, os_node, "firmware")
            etree.SubElement(fw, "feature", enabled="yes", name="enrolled-keys")
            etree.SubElement(fw, "feature", enabled="yes", name="secure-boot")
            features = doc.node.find("features")
            assert features is not None
            etree.SubElement(features, "smm", state="on")  # OVMF's secure build needs SMM
            _reindent(features)
            _reindent(fw)
    if spec.boot == Boot.KERNEL:
        doc.kernel = spec.kernel
        if spec.initrd:
            doc.initrd = spec.initrd
        if spec.cmdline:
            doc.cmdline = spec.cmdline
        return
    order = {
        Boot.CDROM: ("cdrom", "hd"),
        Boot.HD: ("hd",),
        Boot.NETWORK: ("network", "hd"),
    }[spec.boot]
    for dev in order:
        doc.boot.add(dev=dev)


def _reindent(node: etree._Element) -> None:
    """Children made with SubElement, indented two spaces under `node`."""
    parent = node.getparent()
    depth = 0
    while parent is not None:
        depth, parent = depth + 1, parent.getparent()
    inner, outer = "\n" + "  " * (depth + 1), "\n" + "  " * depth
    node.text = inner
    for child in node:
        child.tail = inner
    node[-1].tail = outer


def _disks(doc: DomainXML, spec: VmSpec) -> None:
    used: dict[str, int] = {}
    for d in spec.disks:
        prefix = _PREFIX.get(d.bus, "sd")
        index = used.get(prefix, 0)
        used[prefix] = index + 1
        cdrom = d.kind in (DiskKind.CDROM, DiskKind.SEED)
        disk = doc.disks.add(type="volume", device="cdrom" if cdrom else "disk")
        disk.driver_name, disk.driver_type = "qemu", "raw" if cdrom else d.format
        disk.source_pool, disk.source_volume = d.pool, d.volume
        disk.target_dev, disk.target_bus = prefix + chr(ord("a") + index), d.bus
        disk.readonly = cdrom
    if any(d.kind == DiskKind.SEED and d.bus == "scsi" for d in spec.disks):
        # The seed's CD-ROM on virtio-scsi: every cloud kernel has virtio_scsi, while
        # Debian's cloud kernel has no AHCI (a SATA CD-ROM would be invisible to it).
        devices = doc.node.find("devices")
        assert devices is not None
        _element(doc, devices, "controller", type="scsi", index="0", model="virtio-scsi")


def _nics(doc: DomainXML, spec: VmSpec) -> None:
    for n in spec.nics:
        if n.type not in ("network", "bridge"):
            raise InvalidInput(f"A NIC of type {n.type!r} cannot be made here.")
        nic = doc.interfaces.add(type=n.type)
        if n.type == "network":
            nic.source_network = n.source
        else:
            nic.source_bridge = n.source
        nic.model = n.model


def _devices(doc: DomainXML, spec: VmSpec) -> None:
    devices = doc.node.find("devices")
    assert devices is not None
    if spec.serial:
        serial = doc.chars.add("serial", type="pty")
        serial.target_port = 0
        console = doc.chars.add("console", type="pty")
        console.target_type, console.target_port = "serial", 0
    if spec.vnc:
        _element(doc, devices, "input", type="tablet", bus="usb")
        graphics = doc.graphics.add(type="vnc", port="-1", autoport="yes")
        graphics.listen_at(spec.vnc_listen)
    if spec.tpm:
        tpm = _element(doc, devices, "tpm", model="tpm-crb")
        etree.SubElement(tpm, "backend", type="emulator", version="2.0")
        _reindent(tpm)
    video = _element(doc, devices, "video")
    etree.SubElement(video, "model", type="virtio" if spec.vnc and not _windows(spec) else "vga")
    if not spec.vnc:
        video[0].set("type", "none")
    _reindent(video)


def _windows(spec: VmSpec) -> bool:
    return spec.os_id.startswith("win")
