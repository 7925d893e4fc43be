"""A VM's guest NUMA nodes (<cpu><numa><cell>), beside the host's own.

Each guest cell names its vCPUs (libvirt's list syntax, "0-1") and its
memory. They are checked first: every vCPU the VM can have in at most one
cell, no cell without vCPUs or memory, and the cells' memory adding up to no
more than the VM's (libvirt makes the VM's memory the sum). They are saved in
the definition (VIR_DOMAIN_DEFINE_VALIDATE) and apply at the next start: a
running guest's NUMA layout cannot change. The host's cells come from
virConnectGetCapabilities (<topology><cells>), so a person lays the guest
out on real nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import libvirt
from django.utils.translation import gettext as _

from vmdash.virt import xml
from vmdash.virt.connection import pool
from vmdash.virt.domains import edit, lookup
from vmdash.virt.errors import InvalidInput
from vmdash.virt.pinning import cpuset, parse_cpuset
from vmdash.virt.refs import HostRef
from vmdash.virt.xml.domain import DomainXML

_SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
ANY = 1 << 16  # parse a vCPU list without the host's bound; the VM's is checked after


@dataclass(frozen=True)
class Cell:
    id: int
    cpus: str
    memory_kib: int


@dataclass(frozen=True)
class Numa:
    cells: tuple[Cell, ...]  # the definition's
    vcpus: int  # the VM's maximum
    memory_kib: int  # <memory>
    running: bool
    host_cells: tuple[Cell, ...]


def _host_cells(conn: libvirt.virConnect) -> tuple[Cell, ...]:
    caps = xml.parse(str(conn.getCapabilities()))
    out = []
    for cell in caps.findall("./host/topology/cells/cell"):
        cpus = frozenset(int(c.get("id", "0")) for c in cell.findall("./cpus/cpu"))
        mem = cell.find("./memory")
        kib = (
            xml.to_kib((mem.text or "0").strip(), mem.get("unit", "KiB")) if mem is not None else 0
        )
        out.append(Cell(int(cell.get("id", "0")), cpuset(cpus), kib))
    return tuple(out)


def _cells(doc: DomainXML) -> tuple[Cell, ...]:
    return tuple(
        Cell(c.id if c.id is not None else i, c.cpus or "", c.memory_kib)
        for i, c in enumerate(doc.numa_cells)
    )


def read(host: HostRef, name: str) -> Numa:
    def act(conn: libvirt.virConnect) -> Numa:
        dom = lookup(conn, host, name)
        doc = DomainXML.parse(str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
        return Numa(
            cells=_cells(doc),
            vcpus=doc.vcpus or 1,
            memory_kib=doc.memory_kib or 0,
            running=bool(dom.isActive()),
            host_cells=_host_cells(conn),
        )

    return pool().call(host.uri, act, f"Cannot read VM '{name}'")


def problems(cells: list[tuple[str, int]], vcpus: int, memory_kib: int) -> list[str]:
    """What is wrong with the cells (vCPU list, memory KiB), as sentences."""
    out: list[str] = []
    seen: dict[int, int] = {}
    for i, (cpus_text, kib) in enumerate(cells):
        try:
            cpus = parse_cpuset(cpus_text, ANY) if cpus_text.strip() else frozenset()
        except ValueError as err:
            out.append(_("Cell %(i)d: %(why)s.") % {"i": i, "why": err})
            continue
        if cpus and max(cpus) >= vcpus:
            out.append(_("Cell %(i)d: the VM has vCPUs 0-%(last)d.") % {"i": i, "last": vcpus - 1})
            continue
        if not cpus:
            out.append(_("Cell %(i)d has no vCPUs.") % {"i": i})
        if kib <= 0:
            out.append(_("Cell %(i)d has no memory.") % {"i": i})
        for cpu in sorted(cpus):
            if cpu in seen:
                out.append(
                    _("vCPU %(cpu)d is in cell %(a)d and cell %(b)d.")
                    % {"cpu": cpu, "a": seen[cpu], "b": i}
                )
            seen[cpu] = i
    left = sorted(set(range(vcpus)) - set(seen))
    if cells and left and not out:
        out.append(
            _("vCPUs %(cpus)s are in no node: QEMU wants every vCPU in one.")
            % {"cpus": cpuset(frozenset(left))}
        )
    total = sum(kib for _cpus, kib in cells)
    if total > memory_kib:
        out.append(
            _("The cells add up to %(sum)d MiB, more than the VM's %(mem)d MiB.")
            % {"sum": total // 1024, "mem": memory_kib // 1024}
        )
    return out


def _edit(doc: DomainXML, cells: list[tuple[str, int]]) -> None:
    """The definition's cells become `cells`, edited in place: a cell's other
    attributes (memAccess, discard) and children (distances) stay; a size left
    as it was keeps its unit. No cells: the <numa> element goes."""
    have = list(doc.numa_cells)
    for old in have[len(cells) :]:
        doc.numa_cells.remove(old)
    for i, (cpus_text, kib) in enumerate(cells):
        cell = have[i] if i < len(have) else doc.numa_cells.add(id=str(i))
        cpus = cpuset(parse_cpuset(cpus_text, ANY))
        if cell.cpus != cpus:
            cell.cpus = cpus
        if cell.memory_kib != kib:
            cell.memory, cell.unit = kib, "KiB"
    numa = doc.node.find("./cpu/numa")
    if numa is not None and len(numa) == 0:
        xml.remove(numa)
    cpu = doc.node.find("./cpu")
    if cpu is not None and len(cpu) == 0 and not cpu.attrib:
        xml.remove(cpu)


def apply(host: HostRef, name: str, cells: list[tuple[str, int]]) -> str:
    """Save the guest's NUMA cells (vCPU list, memory KiB); the diff ("" if none).
    InvalidInput with the reasons; libvirt's sentence for what it refuses."""

    def change(doc: DomainXML) -> None:
        wrong = problems(cells, doc.vcpus or 1, doc.memory_kib or 0)
        if wrong:
            raise InvalidInput(" ".join(wrong))
        _edit(doc, cells)

    doing = f"Cannot set the NUMA cells of VM '{name}'"
    return edit(host, name, change, doing=doing, persistent_only=True)
