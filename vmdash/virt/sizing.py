"""A VM's memory and vCPUs: what it runs with, what its next start gets, and changing both.

A running VM has two sets of values: the live ones (its live XML) and the
definition's (the inactive XML, what the next start gets). A change is saved
in the definition first (defineXML with VIR_DOMAIN_DEFINE_VALIDATE, through
the XML layer, so nothing else in the definition moves), then what the
hypervisor can change in the running VM is changed there too
(virDomainSetVcpusFlags / virDomainSetMemoryFlags with AFFECT_LIVE): the
current vCPUs up to the live maximum (hot-plug), the current memory up to the
live maximum (the balloon). The maximums only change at the next start. What
the definition has and the running VM has not is "pending": it applies after
shutdown, as Proxmox's pending section says.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import libvirt
from django.utils.translation import gettext as _

from vmdash.virt.connection import pool
from vmdash.virt.domains import lookup
from vmdash.virt.errors import InvalidInput, InvalidState, translate
from vmdash.virt.refs import HostRef
from vmdash.virt.xml.domain import DomainXML

# The four values, in the order the page shows them.
FIELDS = ("memory", "max_memory", "vcpus", "max_vcpus")
LIVE_CAPABLE = frozenset({"memory", "vcpus"})  # the others change at the next start


@dataclass(frozen=True)
class Sizing:
    """Memory in KiB (current: the balloon's target; max: <memory>) and vCPUs."""

    memory: int
    max_memory: int
    vcpus: int
    max_vcpus: int

    def get(self, what: str) -> int:
        return int(getattr(self, what))


@dataclass(frozen=True)
class Resources:
    """What the page shows: the running VM's values beside its definition's."""

    running: bool
    persistent: bool
    live: Sizing | None  # None when the VM is not running
    config: Sizing  # what the next start gets
    numa: bool  # memory comes from <cpu><numa> cells: set there, not here
    host_vcpus: int  # the most vCPUs this hypervisor gives one VM
    host_memory_kib: int

    @property
    def pending(self) -> tuple[str, ...]:
        """The values the definition has and the running VM has not (yet)."""
        if self.live is None or not self.persistent:
            return ()
        return tuple(f for f in FIELDS if self.live.get(f) != self.config.get(f))


@dataclass(frozen=True)
class Change:
    what: str  # one of FIELDS
    before: int
    after: int


@dataclass(frozen=True)
class Result:
    """A change as it was (or would be) made.

    live: applied to the running VM now (and saved); pending: saved, applies
    after shutdown; refused: live changes the hypervisor said no to (why),
    saved all the same and so pending too.
    """

    diff: str
    running: bool
    live: tuple[Change, ...] = ()
    pending: tuple[Change, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)


def _sizing(doc: DomainXML) -> Sizing:
    max_vcpus = doc.vcpus or 1
    max_memory = doc.memory_kib or 0
    return Sizing(
        memory=doc.current_memory_kib or max_memory,
        max_memory=max_memory,
        vcpus=doc.vcpus_current or max_vcpus,
        max_vcpus=max_vcpus,
    )


def _host_vcpus(conn: libvirt.virConnect, domain_type: str) -> int:
    try:
        return int(conn.getMaxVcpus(domain_type or None))
    except libvirt.libvirtError:
        return int(conn.getInfo()[2])  # the host's CPUs: a bound every hypervisor keeps


def _resources(conn: libvirt.virConnect, dom: libvirt.virDomain) -> Resources:
    running = bool(dom.isActive())
    persistent = bool(dom.isPersistent())
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE if persistent else 0
    config = DomainXML.parse(str(dom.XMLDesc(flags)))
    live = _sizing(DomainXML.parse(str(dom.XMLDesc(0)))) if running else None
    return Resources(
        running=running,
        persistent=persistent,
        live=live,
        config=_sizing(config),
        numa=config.node.find("./cpu/numa/cell") is not None,
        host_vcpus=_host_vcpus(conn, config.type or ""),
        host_memory_kib=int(conn.getInfo()[1]) * 1024,
    )


def read(host: HostRef, name: str) -> Resources:
    """The VM's memory and vCPUs, live and defined, and the host's bounds; NotFound."""
    return pool().call(
        host.uri,
        lambda conn: _resources(conn, lookup(conn, host, name)),
        f"Cannot read VM '{name}'",
    )


def problems(wanted: Sizing, facts: Resources) -> dict[str, str]:
    """What is wrong with `wanted` on this host, by field (empty: nothing).

    The sentences are English here; the form translates its own (domains/sizing.py)."""
    out: dict[str, str] = {}
    config = facts.config  # a definition above the host's bounds may stay so (overcommit)
    if wanted.vcpus > wanted.max_vcpus:
        out["vcpus"] = "more than the maximum"
    if wanted.max_vcpus != config.max_vcpus and wanted.max_vcpus > facts.host_vcpus:
        out["max_vcpus"] = f"this host gives a VM at most {facts.host_vcpus}"
    if wanted.memory > wanted.max_memory:
        out["memory"] = "more than the maximum"
    if wanted.max_memory != config.max_memory and wanted.max_memory > facts.host_memory_kib:
        out["max_memory"] = "more than this host has"
    if facts.numa and (wanted.max_memory != config.max_memory):
        out["max_memory"] = "set by the VM's NUMA cells"
    return out


def _edit(doc: DomainXML, wanted: Sizing) -> None:
    """The four values into the definition, nothing else touched."""
    had_current = doc.current_memory_kib  # absent: the same as <memory>
    if doc.memory_kib != wanted.max_memory:
        doc.memory_kib = wanted.max_memory
    implied = had_current is None and wanted.memory == wanted.max_memory
    if not implied and had_current != wanted.memory:
        doc.current_memory_kib = wanted.memory
    if doc.vcpus != wanted.max_vcpus:
        doc.vcpus = wanted.max_vcpus
    current = wanted.vcpus if wanted.vcpus < wanted.max_vcpus else None
    if doc.vcpus_current != current:
        doc.vcpus_current = current


def _plan(
    before: Sizing, wanted: Sizing, live: Sizing | None
) -> tuple[tuple[Change, ...], tuple[Change, ...]]:
    """(changes the running VM can take now, changes that wait for shutdown)."""
    now: list[Change] = []
    later: list[Change] = []
    for what in FIELDS:
        was = live.get(what) if live is not None else before.get(what)
        if wanted.get(what) == was and wanted.get(what) == before.get(what):
            continue
        change = Change(what, was, wanted.get(what))
        if live is None:
            later.append(change)
        elif wanted.get(what) == was:
            continue  # the running VM has it already; only the definition catches up
        elif what in LIVE_CAPABLE and wanted.get(what) <= live.get(f"max_{what}"):
            now.append(change)
        else:
            later.append(change)
    return tuple(now), tuple(later)


def _prepare(
    dom: libvirt.virDomain, wanted: Sizing, doing: str
) -> tuple[DomainXML, Sizing, Sizing | None]:
    if not dom.isPersistent():
        raise InvalidState(f"{doing}: it is transient; only its live state exists.")
    # Secure: without it libvirt leaves the graphics password out, and defining
    # the XML back would drop it (the diff hides it again).
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    config = DomainXML.parse(str(dom.XMLDesc(flags)))
    before = _sizing(config)
    live = _sizing(DomainXML.parse(str(dom.XMLDesc(0)))) if dom.isActive() else None
    _edit(config, wanted)
    return config, before, live


def _check(conn: libvirt.virConnect, dom: libvirt.virDomain, wanted: Sizing, doing: str) -> None:
    wrong = problems(wanted, _resources(conn, dom))
    if wrong:
        said = "; ".join(f"{what}: {why}" for what, why in wrong.items())
        raise InvalidInput(f"{doing}: {said}.")


def preview(host: HostRef, name: str, wanted: Sizing) -> Result:
    """What `wanted` would change: the definition's diff, and what applies now; nothing done."""
    doing = f"Cannot change VM '{name}'"

    def act(conn: libvirt.virConnect) -> Result:
        dom = lookup(conn, host, name)
        _check(conn, dom, wanted, doing)
        config, before, live = _prepare(dom, wanted, doing)
        now, later = _plan(before, wanted, live)
        return Result(config.diff(), live is not None, now, later)

    return pool().call(host.uri, act, doing)


_LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE


def _set_live(dom: libvirt.virDomain, change: Change) -> None:
    if change.what == "vcpus":
        dom.setVcpusFlags(change.after, _LIVE)
    else:
        dom.setMemoryFlags(change.after, _LIVE)


def _balloon_answered(dom: libvirt.virDomain, done: list[Change], refused: dict[str, str]) -> None:
    """The balloon's target is set at once; the guest's balloon driver then gives
    the memory back (or takes it), and only then does libvirt report it. A guest
    without the driver never does: say so rather than call it done."""
    change = next(c for c in done if c.what == "memory")
    for _attempt in range(10):
        if _sizing(DomainXML.parse(str(dom.XMLDesc(0)))).memory == change.after:
            return
        time.sleep(0.1)
    done.remove(change)
    refused["memory"] = _("the guest has not taken the new size (it needs a balloon driver)")


def apply(host: HostRef, name: str, wanted: Sizing, *, live: bool = True) -> Result:
    """Save `wanted` in the definition, then change the running VM where it can.

    A definition libvirt refuses changes nothing (InvalidInput with libvirt's
    sentence). A live change the hypervisor refuses stays saved and pending,
    with the reason in Result.refused. `live=False` only saves (revert pending).
    """
    doing = f"Cannot change VM '{name}'"

    def act(conn: libvirt.virConnect) -> Result:
        dom = lookup(conn, host, name)
        _check(conn, dom, wanted, doing)
        config, before, running = _prepare(dom, wanted, doing)
        now, later = _plan(before, wanted, running if live else None)
        if not config.changed and not now:
            return Result("", running is not None)
        try:
            if config.changed:
                conn.defineXMLFlags(config.tostring(), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        except libvirt.libvirtError as err:
            raise translate(err, doing) from None
        done: list[Change] = []
        refused: dict[str, str] = {}
        for change in now:
            try:
                _set_live(dom, change)
                done.append(change)
            except libvirt.libvirtError as err:
                refused[change.what] = str(err.get_error_message() or err).splitlines()[0]
        if any(c.what == "memory" for c in done):
            _balloon_answered(dom, done, refused)
        waiting = later + tuple(c for c in now if c.what in refused)
        if not live and running is not None:
            waiting = ()  # the definition went back to what runs: nothing waits
        return Result(config.diff(), running is not None, tuple(done), waiting, refused)

    return pool().call(host.uri, act, doing)


def revert_pending(host: HostRef, name: str) -> Result:
    """The definition's four values back to what the running VM has."""
    facts = read(host, name)
    if facts.live is None:
        raise InvalidState(f"Cannot revert VM '{name}': it is not running, nothing is pending.")
    return apply(host, name, facts.live, live=False)
