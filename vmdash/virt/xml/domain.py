"""The libvirt domain XML as field tables: one class per element, one line per field.

Paths and values follow https://libvirt.org/formatdomain.html. The ORDERS
tables list child tags in the order libvirt writes them (domain_conf.c), so
an element we create sits where libvirt would put it.
"""

from __future__ import annotations

from enum import StrEnum

from vmdash.virt.xml import (
    INT,
    YESNO,
    Children,
    Document,
    Field,
    Flag,
    Memory,
    XMLObject,
    enum,
    to_kib,
)
from vmdash.virt.xml.tags import TagsField


class Placement(StrEnum):
    STATIC = "static"
    AUTO = "auto"


class CpuMode(StrEnum):
    CUSTOM = "custom"
    HOST_MODEL = "host-model"
    HOST_PASSTHROUGH = "host-passthrough"
    MAXIMUM = "maximum"


class DiskXML(XMLObject):
    ORDERS = {
        "disk": (
            "driver", "source", "backingStore", "backenddomain", "geometry", "blockio",
            "target", "iotune", "readonly", "shareable", "transient", "serial", "wwn",
            "vendor", "product", "encryption", "boot", "alias", "address",
        ),
    }  # fmt: skip
    type = Field("./@type")  # file, block, dir, network, volume, nvme, vhostuser
    device = Field("./@device")  # disk, cdrom, floppy, lun
    driver_name = Field("./driver/@name")
    driver_type = Field("./driver/@type")  # raw, qcow2, ...
    driver_cache = Field("./driver/@cache")
    driver_io = Field("./driver/@io")
    driver_discard = Field("./driver/@discard")
    driver_iothread = Field("./driver/@iothread", INT)
    source_file = Field("./source/@file")
    source_dev = Field("./source/@dev")
    source_dir = Field("./source/@dir")
    source_pool = Field("./source/@pool")
    source_volume = Field("./source/@volume")
    source_protocol = Field("./source/@protocol")
    source_name = Field("./source/@name")
    source_host = Field("./source/host/@name")
    source_port = Field("./source/host/@port", INT)
    target_dev = Field("./target/@dev")
    target_bus = Field("./target/@bus")
    readonly = Flag("./readonly")
    boot_order = Field("./boot/@order", INT)
    address = Flag("./address")  # where it plugs in; libvirt picks one when there is none


class InterfaceXML(XMLObject):
    ORDERS = {
        "interface": (
            "mac", "source", "vlan", "virtualport", "ip", "route", "script", "target",
            "guest", "model", "driver", "filterref", "bandwidth", "link", "mtu", "boot",
            "alias", "address",
        ),
    }  # fmt: skip
    type = Field("./@type")  # network, bridge, direct, user, ...
    mac = Field("./mac/@address")
    source_network = Field("./source/@network")
    source_bridge = Field("./source/@bridge")
    source_dev = Field("./source/@dev")
    source_mode = Field("./source/@mode")  # macvtap: vepa, bridge, private, passthrough
    model = Field("./model/@type")
    target = Field("./target/@dev")
    link_state = Field("./link/@state")  # up, down
    virtualport = Field("./virtualport/@type")
    boot_order = Field("./boot/@order", INT)
    has_source = Flag("./source")  # False: the element goes, with what it had
    has_virtualport = Flag("./virtualport")


class GraphicsXML(XMLObject):
    ORDERS = {"graphics": ("listen", "channel", "image", "streaming", "clipboard", "gl")}
    type = Field("./@type")  # vnc, spice, rdp, ...
    port = Field("./@port", INT)  # -1: not yet allocated
    autoport = Field("./@autoport", YESNO)
    listen = Field("./@listen")  # the old attribute, mirrored by libvirt in <listen>
    listen_type = Field("./listen/@type")  # address, network, socket, none
    listen_address = Field("./listen/@address")
    listen_network = Field("./listen/@network")
    # Only in XML read with VIR_DOMAIN_XML_SECURE. Never carry it past virt/.
    passwd = Field("./@passwd")

    @property
    def has_password(self) -> bool:
        return self.node.get("passwd") is not None

    @property
    def address(self) -> str:
        return self.listen or self.listen_address or ""

    def listen_at(self, address: str) -> None:
        """<listen type='address' address=...>: the schema wants the type with it."""
        self.listen_type = "address"
        self.listen_address = address


class CharXML(XMLObject):
    """A <serial> or a <console> (same layout: source, log, target)."""

    ORDERS = {
        "serial": ("source", "log", "protocol", "target", "alias", "address"),
        "console": ("source", "log", "protocol", "target", "alias", "address"),
    }
    type = Field("./@type")  # pty, file, tcp, unix, ...
    tty = Field("./@tty")  # the pty of a running VM
    source_path = Field("./source/@path")
    target_type = Field("./target/@type")  # isa-serial, serial, virtio, ...
    target_port = Field("./target/@port", INT)
    log_file = Field("./log/@file")
    log_append = Field("./log/@append")


class BootXML(XMLObject):
    dev = Field("./@dev")  # hd, cdrom, fd, network


class NumaCellXML(XMLObject):
    """<cpu><numa><cell id='0' cpus='0-1' memory='1048576' unit='KiB'/>: a guest NUMA node."""

    id = Field("./@id", INT)
    cpus = Field("./@cpus")  # the guest's vCPUs in this node
    memory = Field("./@memory", INT)
    unit = Field("./@unit")  # KiB when absent

    @property
    def memory_kib(self) -> int:
        return to_kib(str(self.memory or 0), self.unit or "KiB")


class CpuFeatureXML(XMLObject):
    """<cpu><feature policy='require' name='avx2'/>: one CPU feature and what to do with it."""

    name = Field("./@name")
    policy = Field("./@policy")  # force, require, optional, disable, forbid


class IothreadPinXML(XMLObject):
    """<cputune><iothreadpin iothread='1' cpuset='2-3'/>: where one I/O thread may run."""

    iothread = Field("./@iothread", INT)
    cpuset = Field("./@cpuset")


class VcpuPinXML(XMLObject):
    """<cputune><vcpupin vcpu='0' cpuset='1-2'/>: where one vCPU may run."""

    vcpu = Field("./@vcpu", INT)
    cpuset = Field("./@cpuset")


class DomainXML(Document):
    ROOT = "domain"
    ORDERS = {
        "domain": (
            "name", "uuid", "genid", "title", "description", "metadata", "maxMemory",
            "memory", "currentMemory", "blkiotune", "memtune", "memoryBacking", "vcpu",
            "vcpus", "iothreads", "iothreadids", "cputune", "numatune", "resource",
            "sysinfo", "bootloader", "bootloader_args", "os", "idmap", "features", "cpu",
            "clock", "on_poweroff", "on_reboot", "on_crash", "pm", "perf", "devices",
            "seclabel", "keywrap", "launchSecurity",
        ),
        "os": (
            "type", "firmware", "loader", "nvram", "kernel", "initrd", "cmdline", "dtb",
            "acpi", "boot", "bootmenu", "bios", "smbios",
        ),
        "features": ("acpi", "apic", "pae", "hap", "viridian", "privnet", "hyperv", "kvm"),
        "cpu": ("model", "vendor", "topology", "cache", "feature", "numa"),
        "cputune": (
            "shares", "period", "quota", "global_period", "global_quota", "emulator_period",
            "emulator_quota", "iothread_period", "iothread_quota", "vcpupin", "emulatorpin",
            "iothreadpin", "emulatorsched", "vcpusched", "iothreadsched", "cachetune",
            "memorytune",
        ),
        "devices": (
            "emulator", "disk", "controller", "lease", "filesystem", "interface",
            "smartcard", "serial", "parallel", "console", "channel", "input", "tpm",
            "graphics", "sound", "audio", "video", "hostdev", "redirdev", "redirfilter",
            "hub", "watchdog", "memballoon", "rng", "panic", "shmem", "memory", "iommu",
            "vsock",
        ),
    }  # fmt: skip

    type = Field("./@type")  # kvm, qemu, test, ...
    name = Field("./name")
    uuid = Field("./uuid")
    title = Field("./title")
    description = Field("./description")
    memory_kib = Memory("./memory")
    current_memory_kib = Memory("./currentMemory")
    vcpus = Field("./vcpu", INT)
    vcpus_current = Field("./vcpu/@current", INT)
    vcpu_placement = Field("./vcpu/@placement", enum(Placement))
    vcpu_cpuset = Field("./vcpu/@cpuset")  # where unpinned vCPUs may run ("": anywhere)
    os_type = Field("./os/type")  # hvm, linux, exe
    arch = Field("./os/type/@arch")
    machine = Field("./os/type/@machine")
    firmware = Field("./os/@firmware")  # efi, bios: automatic firmware selection
    loader = Field("./os/loader")
    loader_type = Field("./os/loader/@type")  # rom, pflash
    loader_readonly = Field("./os/loader/@readonly", YESNO)
    nvram = Field("./os/nvram")
    kernel = Field("./os/kernel")
    initrd = Field("./os/initrd")
    cmdline = Field("./os/cmdline")
    boot = Children(BootXML, "./os/boot")
    cpu_mode = Field("./cpu/@mode", enum(CpuMode))
    cpu_model = Field("./cpu/model")
    cpu_sockets = Field("./cpu/topology/@sockets", INT)
    cpu_dies = Field("./cpu/topology/@dies", INT)
    cpu_cores = Field("./cpu/topology/@cores", INT)
    cpu_threads = Field("./cpu/topology/@threads", INT)
    acpi = Flag("./features/acpi")
    apic = Flag("./features/apic")
    pae = Flag("./features/pae")
    emulator = Field("./devices/emulator")
    vcpu_pins = Children(VcpuPinXML, "./cputune/vcpupin")
    iothreads = Field("./iothreads", INT)
    iothread_pins = Children(IothreadPinXML, "./cputune/iothreadpin")
    emulator_pin = Flag("./cputune/emulatorpin")
    emulator_cpuset = Field("./cputune/emulatorpin/@cpuset")
    numatune_memory = Flag("./numatune/memory")
    numatune_mode = Field("./numatune/memory/@mode")  # strict, preferred, interleave, restrictive
    numatune_nodeset = Field("./numatune/memory/@nodeset")
    hugepages = Flag("./memoryBacking/hugepages")
    hugepage_size = Field("./memoryBacking/hugepages/page/@size", INT)
    hugepage_unit = Field("./memoryBacking/hugepages/page/@unit")
    numa_cells = Children(NumaCellXML, "./cpu/numa/cell")
    cpu_features = Children(CpuFeatureXML, "./cpu/feature")
    disks = Children(DiskXML, "./devices/disk")
    interfaces = Children(InterfaceXML, "./devices/interface")
    graphics = Children(GraphicsXML, "./devices/graphics")
    chars = Children(CharXML, "./devices/serial|console")
    tags = TagsField()  # vmdash's own, in <metadata> (vmdash/virt/xml/tags.py)
