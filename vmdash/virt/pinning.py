"""Where a VM's vCPUs may run: <cputune><vcpupin>, live and in the definition.

A pin is a host CPU list in libvirt's syntax ("1", "0-3", "0,2-3"); no pin
means any CPU. A change is checked against the host's CPUs first (a pin to
a CPU the host lacks is refused with the reason), saved in the definition
through the XML layer (VIR_DOMAIN_DEFINE_VALIDATE), then applied to the
running VM with virDomainPinVcpuFlags (AFFECT_LIVE) for the vCPUs it has
now. `virsh vcpupin` shows both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libvirt
from django.utils.translation import gettext as _

from vmdash.virt.connection import pool
from vmdash.virt.domains import lookup
from vmdash.virt.errors import InvalidInput, InvalidState, translate
from vmdash.virt.refs import HostRef
from vmdash.virt.xml.domain import DomainXML

_SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


def parse_cpuset(text: str, host_cpus: int) -> frozenset[int]:
    """ "0-2,5" -> {0, 1, 2, 5}; ValueError saying what is wrong. Empty: no pin."""
    out: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise ValueError(_("an empty part between commas"))
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(
                _("“%(part)s” is not a CPU number or a range like 0-3") % {"part": part}
            )
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ValueError(
                _("a range goes up: %(up)s, not %(part)s") % {"up": f"{last}-{first}", "part": part}
            )
        if last >= host_cpus:
            raise ValueError(_("this host has CPUs 0-%(last)d") % {"last": host_cpus - 1})
        out.update(range(first, last + 1))
    return frozenset(out)


def cpuset(cpus: frozenset[int]) -> str:
    """{0, 1, 2, 5} -> "0-2,5", as libvirt writes it."""
    parts: list[str] = []
    ordered = sorted(cpus)
    start = prev = ordered[0] if ordered else -1
    for cpu in [*ordered[1:], None]:
        if cpu is not None and cpu == prev + 1:
            prev = cpu
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if cpu is not None:
            start = prev = cpu
    return ",".join(parts) if ordered else ""


@dataclass(frozen=True)
class Pins:
    host_cpus: int
    vcpus: int  # the definition's maximum
    running: bool
    config: dict[int, str]  # vCPU -> its pin in the definition ("" none)
    live: dict[int, str] | None  # vCPU -> where it may run now ("" as unpinned; None: off)
    default: str  # where an unpinned vCPU runs: <vcpu cpuset> ("": any host CPU)


@dataclass(frozen=True)
class PinResult:
    diff: str
    live: tuple[int, ...] = ()  # vCPUs re-pinned in the running VM
    refused: dict[int, str] = field(default_factory=dict)


def _host_cpus(conn: libvirt.virConnect) -> int:
    return int(conn.getCPUMap()[0])


def _unpinned(doc: DomainXML, host_cpus: int) -> frozenset[int]:
    """Where a vCPU without a pin runs: the VM's <vcpu cpuset>, else anywhere."""
    try:
        return parse_cpuset(doc.vcpu_cpuset, host_cpus) if doc.vcpu_cpuset else frozenset()
    except ValueError:
        return frozenset()


def _anywhere(conn: libvirt.virConnect) -> set[frozenset[int]]:
    """What libvirt may report for a vCPU without a pin: every CPU of the map,
    the online ones, or the first N active ones (drivers differ)."""
    size, online, _count = conn.getCPUMap()
    active = int(conn.getInfo()[2])
    return {
        frozenset(range(size)),
        frozenset(i for i, on in enumerate(online) if on),
        frozenset(range(active)),
    }


def _live(
    dom: libvirt.virDomain, unpinned: frozenset[int], anywhere: set[frozenset[int]]
) -> dict[int, str]:
    out = {}
    for vcpu, cpumap in enumerate(dom.vcpuPinInfo(libvirt.VIR_DOMAIN_AFFECT_LIVE)):
        cpus = frozenset(i for i, on in enumerate(cpumap) if on)
        out[vcpu] = "" if cpus == unpinned or cpus in anywhere else cpuset(cpus)
    return out


def read(host: HostRef, name: str) -> Pins:
    def act(conn: libvirt.virConnect) -> Pins:
        dom = lookup(conn, host, name)
        doc = DomainXML.parse(str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
        host_cpus = _host_cpus(conn)
        pins = {p.vcpu: p.cpuset or "" for p in doc.vcpu_pins if p.vcpu is not None}
        running = bool(dom.isActive())
        unpinned = _unpinned(doc, host_cpus)
        return Pins(
            host_cpus=host_cpus,
            vcpus=doc.vcpus or 1,
            running=running,
            config={v: pins.get(v, "") for v in range(doc.vcpus or 1)},
            live=_live(dom, unpinned, _anywhere(conn)) if running else None,
            default=cpuset(unpinned),
        )

    return pool().call(host.uri, act, f"Cannot read VM '{name}'")


def _edit(doc: DomainXML, wanted: dict[int, str]) -> None:
    have = {p.vcpu: p for p in doc.vcpu_pins}
    for vcpu, pin in sorted(wanted.items()):
        node = have.get(vcpu)
        if not pin and node is not None:
            doc.vcpu_pins.remove(node)
        elif pin and node is None:
            added = doc.vcpu_pins.add(vcpu=str(vcpu), cpuset=pin)
            added.cpuset = pin
        elif pin and node is not None and node.cpuset != pin:
            node.cpuset = pin


def apply(host: HostRef, name: str, wanted: dict[int, str]) -> PinResult:
    """Pin each vCPU of `wanted` (vCPU -> cpuset, "" for any CPU); InvalidInput
    for a pin the host cannot take, libvirt's sentence for what it refuses."""
    doing = f"Cannot pin the vCPUs of VM '{name}'"

    def act(conn: libvirt.virConnect) -> PinResult:
        dom = lookup(conn, host, name)
        if not dom.isPersistent():
            raise InvalidState(f"{doing}: it is transient; only its live state exists.")
        host_cpus = _host_cpus(conn)
        doc = DomainXML.parse(str(dom.XMLDesc(_SECURE)))
        wrong = []
        normal: dict[int, str] = {}
        for vcpu, pin in wanted.items():
            if not 0 <= vcpu < (doc.vcpus or 1):
                wrong.append(f"vCPU {vcpu}: the VM has vCPUs 0-{(doc.vcpus or 1) - 1}")
                continue
            try:
                cpus = parse_cpuset(pin, host_cpus) if pin.strip() else frozenset()
            except ValueError as err:
                wrong.append(f"vCPU {vcpu}: {err}")
                continue
            normal[vcpu] = cpuset(cpus)
        if wrong:
            raise InvalidInput(f"{doing}: " + "; ".join(wrong) + ".")
        _edit(doc, normal)
        try:
            if doc.changed:
                conn.defineXMLFlags(doc.tostring(), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        except libvirt.libvirtError as err:
            raise translate(err, doing) from None
        done: list[int] = []
        refused: dict[int, str] = {}
        if dom.isActive():
            anywhere = _anywhere(conn)
            # No pin: the VM's <vcpu cpuset>, else the host's active CPUs
            # (nodeinfo's count; a host with CPUs offline in the middle gets
            # libvirt's refusal, shown as such).
            unpinned = _unpinned(doc, host_cpus) or frozenset(range(int(conn.getInfo()[2])))
            now = _live(dom, unpinned, anywhere)
            for vcpu, pin in sorted(normal.items()):
                if vcpu not in now or now[vcpu] == pin:
                    continue  # not plugged in now, or pinned so already
                cpus = parse_cpuset(pin, host_cpus) if pin else unpinned
                cpumap = tuple(i in cpus for i in range(host_cpus))
                try:
                    # CURRENT on a running VM is its live state (all some drivers take)
                    dom.pinVcpuFlags(vcpu, cpumap, libvirt.VIR_DOMAIN_AFFECT_CURRENT)
                    done.append(vcpu)
                except libvirt.libvirtError as err:
                    refused[vcpu] = str(err.get_error_message() or err).splitlines()[0]
        return PinResult(doc.diff(), tuple(done), refused)

    return pool().call(host.uri, act, doing)
