"""A VM's snapshots: what this host's libvirt can do with them, the tree, and
create, revert, delete.

What is offered is decided from the VM and the host, and what is not is said
with the reason (`Offer.why_not`):

- Internal snapshots (inside the qcow2 files: disks, and the memory of a
  running VM) need every writable disk to be qcow2; a raw or block disk has
  nowhere to keep one.
- A UEFI VM (pflash firmware) cannot take an internal snapshot while it
  runs before libvirt 10.10.
- External snapshots (new overlay files) are not offered: reverting to one
  needs libvirt 9.9 or newer, and deleting one 9.10; a snapshot that can
  only be made is a trap.
- A transient VM has no definition to keep snapshot metadata in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import libvirt
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from vmdash.virt.connection import pool
from vmdash.virt.domains import lookup
from vmdash.virt.errors import InvalidInput, NotFound, translate
from vmdash.virt.names import name_problem
from vmdash.virt.refs import HostRef
from vmdash.virt.xml.domain import DomainXML
from vmdash.virt.xml.snapshot import SnapshotXML, new_snapshot

UEFI_RUNNING_INTERNAL = 10_010_000  # libvirt 10.10.0: internal snapshots of a running UEFI VM
EXTERNAL_REVERT = 9_009_000  # libvirt 9.9.0: revert to an external snapshot


@dataclass(frozen=True)
class Snapshot:
    name: str
    description: str
    created: datetime | None
    state: str  # the VM's state when it was taken: running, shutoff, ...
    parent: str
    current: bool
    memory: bool  # it holds the memory (the VM resumes where it was)
    internal: bool
    depth: int = 0  # in the tree


@dataclass(frozen=True)
class Offer:
    internal: bool
    why_not: tuple[str, ...] = ()  # sentences: what is not offered and why
    with_memory: bool = False  # a snapshot now holds the memory too (the VM runs)
    libvirt_version: str = ""


@dataclass(frozen=True)
class Snapshots:
    offer: Offer
    tree: list[Snapshot] = field(default_factory=list)


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def _offer(conn: libvirt.virConnect, dom: libvirt.virDomain) -> Offer:
    lib = int(conn.getLibVersion())
    doc = DomainXML.parse(str(dom.XMLDesc(0)))
    running = bool(dom.isActive())
    why: list[str] = []
    internal = True
    if not dom.isPersistent():
        return Offer(False, (_("A transient VM keeps no snapshots: make it persistent first."),))
    writable = [d for d in doc.disks if d.device in ("disk", "lun") and not d.readonly]
    not_qcow2 = [d.target_dev or "?" for d in writable if d.driver_type != "qcow2"]
    if not_qcow2:
        internal = False
        why.append(
            ngettext(
                "Internal snapshots need qcow2 disks; %(disks)s is not qcow2.",
                "Internal snapshots need qcow2 disks; %(disks)s are not qcow2.",
                len(not_qcow2),
            )
            % {"disks": ", ".join(not_qcow2)}
        )
    if not writable:
        internal = False
        why.append(_("The VM has no disk to keep a snapshot in (add a qcow2 disk)."))
    uefi = doc.loader_type == "pflash" or doc.firmware == "efi"
    if running and uefi and lib < UEFI_RUNNING_INTERNAL:
        internal = False
        why.append(
            _(
                "A running UEFI VM cannot take an internal snapshot with libvirt %(v)s "
                "(10.10 can): shut it down to take one."
            )
            % {"v": _version(lib)}
        )
    if lib < EXTERNAL_REVERT:
        why.append(
            _("External snapshots are not offered: libvirt %(v)s cannot revert to them (9.9 can).")
            % {"v": _version(lib)}
        )
    return Offer(internal, tuple(why), running and internal, _version(lib))


def _snapshot(snap: libvirt.virDomainSnapshot, current: str) -> Snapshot:
    doc = SnapshotXML.parse(str(snap.getXMLDesc(0)))
    created = doc.created
    return Snapshot(
        name=str(snap.getName()),
        description=doc.description or "",
        created=datetime.fromtimestamp(created, tz=UTC) if created else None,
        state=doc.state or "",
        parent=doc.parent or "",
        current=snap.getName() == current,
        memory=(doc.state or "") in ("running", "paused", "pmsuspended"),
        internal=doc.memory != "external",
    )


def _tree(snaps: list[Snapshot]) -> list[Snapshot]:
    """Parents before children, each level oldest first, with their depth."""
    children: dict[str, list[Snapshot]] = {}
    for s in snaps:
        children.setdefault(s.parent, []).append(s)
    out: list[Snapshot] = []

    def walk(parent: str, depth: int) -> None:
        kids = sorted(
            children.get(parent, []),
            key=lambda s: (s.created or datetime.min.replace(tzinfo=UTC), s.name),
        )
        for s in kids:
            out.append(Snapshot(**{**s.__dict__, "depth": depth}))
            walk(s.name, depth + 1)

    walk("", 0)
    return out


def read(host: HostRef, name: str) -> Snapshots:
    """The offer and the tree (virDomainListAllSnapshots, GetXMLDesc); NotFound."""

    def act(conn: libvirt.virConnect) -> Snapshots:
        dom = lookup(conn, host, name)
        offer = _offer(conn, dom)
        try:
            current = str(dom.snapshotCurrent(0).getName()) if dom.hasCurrentSnapshot(0) else ""
        except libvirt.libvirtError:
            current = ""
        snaps = [_snapshot(s, current) for s in dom.listAllSnapshots(0)]
        return Snapshots(offer, _tree(snaps))

    return pool().call(host.uri, act, f"Cannot read the snapshots of VM '{name}'")


def check_name(snap_name: str) -> str:
    """The problem with a new snapshot's name ("" when none)."""
    if not snap_name:
        return _("Give the snapshot a name.")
    return name_problem(snap_name) or ("" if "/" not in snap_name else _("no “/” in a name"))


def create(
    host: HostRef, name: str, snap_name: str, description: str,
    report: Callable[[float, str], None] = lambda f, n: None,
) -> str:  # fmt: skip
    """Take an internal snapshot (with the memory when the VM runs); its name.
    InvalidInput when it is not offered or libvirt refuses, with the reason."""
    doing = f"Cannot take a snapshot of VM '{name}'"
    problem = check_name(snap_name)
    if problem:
        raise InvalidInput(f"{doing}: {problem}")

    def act(conn: libvirt.virConnect) -> str:
        dom = lookup(conn, host, name)
        offer = _offer(conn, dom)
        if not offer.internal:
            raise InvalidInput(f"{doing}: " + " ".join(offer.why_not))
        report(0.1, _("the VM's memory and disks are being saved") if offer.with_memory else "")
        try:
            snap = dom.snapshotCreateXML(new_snapshot(snap_name, description), 0)
        except libvirt.libvirtError as err:
            raise translate(err, doing) from None
        report(1.0, "")
        return str(snap.getName())

    return pool().call(host.uri, act, doing)


def _find(dom: libvirt.virDomain, snap_name: str, doing: str) -> libvirt.virDomainSnapshot:
    try:
        return dom.snapshotLookupByName(snap_name, 0)
    except libvirt.libvirtError:
        raise NotFound(f"{doing}: there is no snapshot '{snap_name}'.") from None


def revert(host: HostRef, name: str, snap_name: str) -> None:
    """Go back to a snapshot: the disks, and the memory and state it holds."""
    doing = f"Cannot revert VM '{name}' to snapshot '{snap_name}'"

    def act(conn: libvirt.virConnect) -> None:
        dom = lookup(conn, host, name)
        snap = _find(dom, snap_name, doing)
        try:
            dom.revertToSnapshot(snap, 0)
        except libvirt.libvirtError as err:
            raise translate(err, doing) from None

    pool().call(host.uri, act, doing)


def delete(host: HostRef, name: str, snap_name: str, children: bool) -> None:
    """Delete a snapshot (and its children when asked; else they move up)."""
    doing = f"Cannot delete snapshot '{snap_name}' of VM '{name}'"

    def act(conn: libvirt.virConnect) -> None:
        dom = lookup(conn, host, name)
        snap = _find(dom, snap_name, doing)
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN if children else 0
        try:
            snap.delete(flags)
        except libvirt.libvirtError as err:
            raise translate(err, doing) from None

    pool().call(host.uri, act, doing)
