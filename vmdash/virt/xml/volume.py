"""The libvirt storage volume XML as a field table (https://libvirt.org/formatstorage.html).

Sizes are written in bytes with unit='bytes', as libvirt itself writes them.
"""

from __future__ import annotations

from enum import StrEnum

from vmdash.virt.xml import INT, Document, Field


class VolumeFormat(StrEnum):
    RAW = "raw"
    QCOW2 = "qcow2"
    ISO = "iso"


class VolumeXML(Document):
    ROOT = "volume"
    ORDERS = {
        "volume": (
            "name", "key", "source", "capacity", "allocation", "physical", "target",
            "backingStore",
        ),
        "target": ("path", "format", "permissions", "timestamps", "compat", "features"),
        "backingStore": ("path", "format", "permissions"),
    }  # fmt: skip
    type = Field("./@type")  # file, block, dir, network, netdir, ploop
    name = Field("./name")
    key = Field("./key")
    capacity = Field("./capacity", INT)
    capacity_unit = Field("./capacity/@unit")
    allocation = Field("./allocation", INT)
    allocation_unit = Field("./allocation/@unit")
    path = Field("./target/path")
    format = Field("./target/format/@type")
    backing_path = Field("./backingStore/path")
    backing_format = Field("./backingStore/format/@type")

    def set_sizes(self, capacity: int, allocation: int | None = None) -> None:
        """Capacity (and allocation) in bytes, with the unit libvirt would write."""
        self.capacity, self.capacity_unit = capacity, "bytes"
        if allocation is not None:
            self.allocation, self.allocation_unit = allocation, "bytes"
