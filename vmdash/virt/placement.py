"""Where a VM's memory and its emulator run: numatune, hugepages, emulator pinning.

The seed's NFV case: a VNF's memory on the NUMA node of its NIC, backed by
hugepages, and QEMU's own threads kept off the cores its vCPUs are pinned
to. Each is checked against what the host reports before anything is
defined: the node set against the host's NUMA cells, the page size against
the sizes the host offers, the free pages of that size (virNodeGetFreePages
over every cell) against the VM's memory, the emulator's CPUs against the
host's. Saved in the definition (VIR_DOMAIN_DEFINE_VALIDATE); they apply at
the next start (QEMU's memory cannot move to hugepages while it runs).
Other children of <numatune> (memnode), <memoryBacking> (locked, memfd, as
vhost-user needs) and <cputune> stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libvirt
from django.utils.translation import gettext as _

from vmdash.virt import xml
from vmdash.virt.connection import pool
from vmdash.virt.domains import edit, lookup
from vmdash.virt.errors import InvalidInput
from vmdash.virt.pinning import cpuset, parse_cpuset
from vmdash.virt.refs import HostRef
from vmdash.virt.xml.domain import DomainXML

MODES = ("strict", "preferred", "interleave", "restrictive")
MAX_IOTHREADS = 64
NORMAL_PAGE_KIB = 4  # the host's ordinary page: no hugepages


def page_label(kib: int) -> str:
    """8 KiB, 2 MiB, 1 GiB: a page size as people say it."""
    for unit, size in (("GiB", 1 << 20), ("MiB", 1 << 10)):
        if kib >= size and kib % size == 0:
            return f"{kib // size} {unit}"
    return f"{kib} KiB"


@dataclass(frozen=True)
class Wanted:
    mode: str = ""  # "" = no memory placement
    nodeset: str = ""
    page_kib: int = 0  # 0 = ordinary pages
    emulator_cpus: str = ""  # "" = wherever the host schedules it
    iothreads: int = 0  # QEMU I/O threads for the disks (<iothreads>)
    iothread_cpus: str = ""  # where every one of them runs ("" = anywhere)


@dataclass(frozen=True)
class Facts:
    wanted: Wanted  # what the definition says now
    memory_kib: int
    running: bool
    host_cells: tuple[int, ...]
    host_cpus: int
    page_sizes: tuple[int, ...]  # KiB, hugepage sizes only
    free_pages: dict[int, int] = field(default_factory=dict)  # size KiB -> free, all cells
    iothread_users: tuple[tuple[str, int], ...] = ()  # (disk target, I/O thread) in use


def _page_kib(doc: DomainXML) -> int:
    if not doc.hugepages:
        return 0
    size = doc.hugepage_size
    if size is None:
        return 2048  # libvirt's default: the host's default hugepage size (x86: 2 MiB)
    return xml.to_kib(str(size), doc.hugepage_unit or "KiB")


def wanted_of(doc: DomainXML) -> Wanted:
    return Wanted(
        mode=(doc.numatune_mode or "strict") if doc.numatune_memory else "",
        nodeset=doc.numatune_nodeset or "",
        page_kib=_page_kib(doc),
        emulator_cpus=doc.emulator_cpuset or "",
        iothreads=doc.iothreads or 0,
        iothread_cpus=next((p.cpuset or "" for p in doc.iothread_pins), ""),
    )


def _host(conn: libvirt.virConnect) -> tuple[tuple[int, ...], tuple[int, ...], dict[int, int]]:
    caps = xml.parse(str(conn.getCapabilities()))
    cells = tuple(int(c.get("id", "0")) for c in caps.findall("./host/topology/cells/cell"))
    cells = cells or (0,)  # a host that reports no NUMA topology is one node
    offered = caps.findall("./host/cpu/pages")
    kib = {xml.to_kib(p.get("size", "0"), p.get("unit", "KiB")) for p in offered}
    sizes = sorted(kib - {NORMAL_PAGE_KIB, 0})
    free: dict[int, int] = dict.fromkeys(sizes, 0)
    if sizes:
        try:
            found = conn.getFreePages(sizes, 0, max(len(cells), 1), 0) or {}
        except libvirt.libvirtError:
            found = {}  # not told: a hugepage choice is then refused as not known free
        for per_cell in found.values():
            for size, count in per_cell.items():
                free[int(size)] = free.get(int(size), 0) + int(count)
    return cells, tuple(sizes), free


def _iothread_users(doc: DomainXML) -> tuple[tuple[str, int], ...]:
    return tuple((d.target_dev or "", d.driver_iothread) for d in doc.disks if d.driver_iothread)


def read(host: HostRef, name: str) -> Facts:
    def act(conn: libvirt.virConnect) -> Facts:
        dom = lookup(conn, host, name)
        doc = DomainXML.parse(str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
        cells, sizes, free = _host(conn)
        return Facts(
            wanted=wanted_of(doc),
            memory_kib=doc.memory_kib or 0,
            running=bool(dom.isActive()),
            host_cells=cells,
            host_cpus=int(conn.getInfo()[2]),
            iothread_users=_iothread_users(doc),
            page_sizes=sizes,
            free_pages=free,
        )

    return pool().call(host.uri, act, f"Cannot read VM '{name}'")


def problems(w: Wanted, facts: Facts) -> list[str]:
    """What the host cannot give (sentences); none: it may be saved."""
    out: list[str] = []
    if w.mode and w.mode not in MODES:
        out.append(_("Choose a memory mode: %(modes)s.") % {"modes": ", ".join(MODES)})
    if w.mode and not w.nodeset.strip():
        out.append(_("Name the host NUMA nodes the memory goes to, such as 0 or 0-1."))
    if w.nodeset.strip():
        try:
            nodes = parse_cpuset(w.nodeset, 1 << 16)
        except ValueError as err:
            out.append(_("Host nodes: %(why)s.") % {"why": err})
        else:
            missing = sorted(nodes - set(facts.host_cells))
            if missing:
                out.append(
                    _("This host has no NUMA node %(nodes)s; it has %(have)s.")
                    % {"nodes": cpuset(frozenset(missing)),
                       "have": cpuset(frozenset(facts.host_cells)) or "0"}
                )  # fmt: skip
    if w.page_kib:
        if w.page_kib not in facts.page_sizes:
            have = ", ".join(page_label(s) for s in facts.page_sizes) or _("none")
            out.append(
                _("This host has no %(size)s hugepages (it has: %(have)s).")
                % {"size": page_label(w.page_kib), "have": have}
            )
        else:
            need = -(-facts.memory_kib // w.page_kib)
            free = facts.free_pages.get(w.page_kib, 0)
            # A running VM already on these pages holds them: they are not free.
            holds = facts.running and facts.wanted.page_kib == w.page_kib
            if free < need and not holds:
                out.append(
                    _("The VM needs %(need)d free %(size)s hugepages; the host has %(free)d "
                      "free (vm.nr_hugepages, or hugepages= at boot).")
                    % {"need": need, "size": page_label(w.page_kib), "free": free}
                )  # fmt: skip
    if w.emulator_cpus.strip():
        try:
            parse_cpuset(w.emulator_cpus, facts.host_cpus)
        except ValueError as err:
            out.append(_("Emulator CPUs: %(why)s.") % {"why": err})
    if not 0 <= w.iothreads <= MAX_IOTHREADS:
        out.append(_("I/O threads: 0 to %(n)d.") % {"n": MAX_IOTHREADS})
    for target, thread in facts.iothread_users:
        if thread > w.iothreads:
            out.append(
                _("Disk %(disk)s uses I/O thread %(n)d: keep at least %(n)d.")
                % {"disk": target, "n": thread}
            )
    if w.iothread_cpus.strip():
        if not w.iothreads:
            out.append(_("Pinning I/O threads needs at least one I/O thread."))
        try:
            parse_cpuset(w.iothread_cpus, facts.host_cpus)
        except ValueError as err:
            out.append(_("I/O thread CPUs: %(why)s.") % {"why": err})
    return out


def _drop_if_empty(doc: DomainXML, path: str) -> None:
    node = doc.node.find(path)
    if node is not None and len(node) == 0 and not node.attrib:
        xml.remove(node)


def _edit(doc: DomainXML, w: Wanted) -> None:
    """The definition's placement becomes `w`; what else is there stays."""
    if w.mode:
        if doc.numatune_mode != w.mode:
            doc.numatune_mode = w.mode
        nodeset = cpuset(parse_cpuset(w.nodeset, 1 << 16))
        if doc.numatune_nodeset != nodeset:
            doc.numatune_nodeset = nodeset
    elif doc.numatune_memory:
        doc.numatune_memory = False
    _drop_if_empty(doc, "./numatune")
    if w.page_kib:
        if _page_kib(doc) != w.page_kib or doc.hugepage_size is None:
            doc.hugepage_size, doc.hugepage_unit = w.page_kib, "KiB"
    elif doc.hugepages:
        doc.hugepages = False
    _drop_if_empty(doc, "./memoryBacking")
    if w.emulator_cpus.strip():
        cpus = cpuset(parse_cpuset(w.emulator_cpus, 1 << 16))
        if doc.emulator_cpuset != cpus:
            doc.emulator_cpuset = cpus
    elif doc.emulator_pin:
        doc.emulator_pin = False
    if (doc.iothreads or 0) != w.iothreads:
        doc.iothreads = w.iothreads or None
    _pin_iothreads(doc, w)
    _drop_if_empty(doc, "./cputune")


def _pin_iothreads(doc: DomainXML, w: Wanted) -> None:
    """One <iothreadpin> per I/O thread on `w.iothread_cpus`; none when it is empty."""
    cpus = cpuset(parse_cpuset(w.iothread_cpus, 1 << 16)) if w.iothread_cpus.strip() else ""
    wanted = {n: cpus for n in range(1, w.iothreads + 1)} if cpus else {}
    for pin in list(doc.iothread_pins):
        if pin.iothread not in wanted:
            doc.iothread_pins.remove(pin)
        elif pin.cpuset != wanted.pop(pin.iothread):
            pin.cpuset = cpus
    for n in sorted(wanted):
        doc.iothread_pins.add(iothread=str(n), cpuset=cpus)


def apply(host: HostRef, name: str, w: Wanted) -> str:
    """Check `w` against the host, then define it; the diff ("" = nothing changed)."""
    facts = read(host, name)
    found = problems(w, facts)
    if found:
        raise InvalidInput(" ".join(found))
    return edit(host, name, lambda doc: _edit(doc, w), persistent_only=True,
                doing=f"Cannot change the memory placement of VM '{name}'")  # fmt: skip
