"""Define a VM from a person's XML (a vendor's template, another host's dumpxml),
and say what libvirt did not keep.

Before: well-formed, a <domain>, no QEMU pass-through namespace (it bypasses
libvirt and its security labels), name and UUID free, every network and pool
volume it names present here. Define with VIR_DOMAIN_DEFINE_VALIDATE (the
RNG schema), or, when the person asks after a schema refusal, unchecked.
Then compare the XML libvirt stored with the given one (vmdash/virt/xml/compare.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import libvirt

from vmdash.virt.connection import pool
from vmdash.virt.errors import InvalidInput
from vmdash.virt.refs import DomainRef, HostRef
from vmdash.virt.xml.compare import lost
from vmdash.virt.xml.domain import DomainXML

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


@dataclass(frozen=True)
class Imported:
    ref: DomainRef
    lost: tuple[str, ...]
    stored: str


def parse_given(text: str) -> DomainXML:
    """The given XML as a domain document; InvalidInput for what vmdash refuses."""
    doc = DomainXML.parse(text)
    if QEMU_NS in {v for n in doc.node.iter() for v in n.nsmap.values()}:
        raise InvalidInput(
            "The XML uses the QEMU pass-through namespace (qemu:commandline): vmdash does "
            "not define it, since it bypasses libvirt's checks."
        )
    if not doc.name:
        raise InvalidInput("The XML has no <name>.")
    return doc


def _missing(conn: libvirt.virConnect, doc: DomainXML) -> list[str]:
    out = []
    names = {d.name() for d in conn.listAllDomains(0)}
    if doc.name in names:
        out.append(f"There is already a VM '{doc.name}' on this host.")
    if doc.uuid:
        try:
            conn.lookupByUUIDString(doc.uuid)
            out.append(f"UUID {doc.uuid} is taken: remove <uuid> to get a new one.")
        except libvirt.libvirtError:
            pass
    nets = {n.name() for n in conn.listAllNetworks(0)}
    for nic in doc.interfaces:
        if nic.type == "network" and nic.source_network not in nets:
            out.append(f"There is no network '{nic.source_network}' on this host.")
    for disk in doc.disks:
        if disk.type == "volume" and disk.source_pool:
            try:
                conn.storagePoolLookupByName(disk.source_pool).storageVolLookupByName(
                    disk.source_volume or ""
                )
            except libvirt.libvirtError:
                out.append(f"There is no volume '{disk.source_pool}/{disk.source_volume}'.")
    return out


def check(host: HostRef, text: str) -> list[str]:
    """What stops this XML from being defined here ([] when nothing)."""
    doc = parse_given(text)
    return pool().call(host.uri, lambda c: _missing(c, doc), f"Cannot check VM '{doc.name}'")


def define(host: HostRef, text: str, validate: bool = True) -> Imported:
    """virDomainDefineXMLFlags (VALIDATE unless asked not to), then what was lost."""
    doc = parse_given(text)
    flags = libvirt.VIR_DOMAIN_DEFINE_VALIDATE if validate else 0

    def run(conn: libvirt.virConnect) -> Imported:
        dom = conn.defineXMLFlags(text, flags)
        stored = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        ref = DomainRef(host.slug, dom.name(), dom.UUIDString())
        return Imported(ref, tuple(lost(doc.node, DomainXML.parse(stored).node)), stored)

    return pool().call(host.uri, run, f"Cannot define VM '{doc.name}'")
