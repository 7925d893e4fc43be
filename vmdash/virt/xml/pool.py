"""The libvirt storage pool XML as a field table (https://libvirt.org/formatstorage.html).

ORDERS follow storage_conf.c (virStoragePoolDefFormat, virStoragePoolSourceFormat),
so that an element we create sits where libvirt writes it.
"""

from __future__ import annotations

from enum import StrEnum

from vmdash.virt.xml import INT, Document, Field


class PoolType(StrEnum):
    DIR = "dir"
    FS = "fs"
    NETFS = "netfs"
    LOGICAL = "logical"
    DISK = "disk"
    ISCSI = "iscsi"


class PoolXML(Document):
    ROOT = "pool"
    ORDERS = {
        "pool": ("name", "uuid", "capacity", "allocation", "available", "source", "target"),
        "source": (
            "host", "device", "dir", "adapter", "name", "initiator", "format", "auth",
            "vendor", "product", "protocol",
        ),
        "target": ("path", "permissions"),
    }  # fmt: skip
    type = Field("./@type")
    name = Field("./name")
    uuid = Field("./uuid")
    capacity = Field("./capacity", INT)  # bytes, as libvirt writes them (unit='bytes')
    allocation = Field("./allocation", INT)
    available = Field("./available", INT)
    source_host = Field("./source/host/@name")
    source_port = Field("./source/host/@port", INT)
    source_dir = Field("./source/dir/@path")  # NFS export, e.g. /export/images
    source_device = Field("./source/device/@path")  # fs, disk, iscsi (IQN), logical PV
    source_name = Field("./source/name")  # LVM volume group
    source_format = Field("./source/format/@type")  # fs: ext4..., netfs: nfs, disk: gpt...
    initiator_iqn = Field("./source/initiator/iqn/@name")
    target_path = Field("./target/path")

    @property
    def source_text(self) -> str:
        """Where the pool's storage comes from, in one line for a table."""
        host, where = self.source_host, self.source_dir or self.source_device
        if host:
            return f"{host}:{where or ''}"
        if self.source_name and self.type == PoolType.LOGICAL:
            return f"VG {self.source_name}"
        return where or ""
