"""libvirt's <domainsnapshot> XML: built for a new snapshot, read for the list.

https://libvirt.org/formatsnapshot.html
"""

from __future__ import annotations

from lxml import etree

from vmdash.virt.xml import INT, Document, Field, tostring


class SnapshotXML(Document):
    ROOT = "domainsnapshot"

    name = Field("./name")
    description = Field("./description")
    state = Field("./state")  # running, paused, shutoff, disk-snapshot, ...
    created = Field("./creationTime", INT)  # seconds since the epoch
    parent = Field("./parent/name")
    memory = Field("./memory/@snapshot")  # internal, external, no


def new_snapshot(name: str, description: str) -> str:
    """The XML of a new internal snapshot: libvirt fills in the rest (state, disks)."""
    root = etree.Element("domainsnapshot")
    etree.SubElement(root, "name").text = name
    if description:
        etree.SubElement(root, "description").text = description
    return tostring(root)
