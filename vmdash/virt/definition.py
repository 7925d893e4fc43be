"""A VM's whole definition as text: read it for the editor, replace it safely.

The editor works on libvirt's inactive XML without secrets (virDomainGetXMLDesc
INACTIVE; the graphics passwords stay out of the page) and its digest. A
replacement is refused when the definition changed since that digest was read
(by anyone: vmdash, virsh, another tool), when it names another VM (a new name
or UUID is a new VM), or when libvirt's schema refuses it
(VIR_DOMAIN_DEFINE_VALIDATE). Passwords the person could not see are carried
over from the current definition. After it, what libvirt did not keep of the
given text is reported (vmdash/virt/xml/compare.py), as for an import.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass

import libvirt

from vmdash.virt.connection import pool
from vmdash.virt.domains import lookup
from vmdash.virt.errors import InvalidInput, InvalidState, translate
from vmdash.virt.importxml import parse_given
from vmdash.virt.refs import HostRef
from vmdash.virt.xml import hide_secrets
from vmdash.virt.xml.compare import lost
from vmdash.virt.xml.domain import DomainXML

_SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


def digest(text: str) -> str:
    """What the editor's guard compares: sha256 of the definition's text."""
    return hashlib.sha256(text.encode()).hexdigest()


class Stale(InvalidState):
    """The definition changed since the editor read it; `current` is it now."""

    def __init__(self, message: str, current: str) -> None:
        super().__init__(message)
        self.current = current


@dataclass(frozen=True)
class Definition:
    text: str  # the inactive XML, no secrets
    digest: str
    persistent: bool


@dataclass(frozen=True)
class Replaced:
    diff: str  # of the definition, before -> as libvirt stored it
    lost: tuple[str, ...]  # what libvirt did not keep of the given text
    stored: str  # the new definition, no secrets


def _text(dom: libvirt.virDomain) -> str:
    return str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def read(host: HostRef, name: str) -> Definition:
    """The VM's definition as the editor shows it; NotFound."""

    def act(conn: libvirt.virConnect) -> Definition:
        dom = lookup(conn, host, name)
        text = _text(dom)
        return Definition(text, digest(text), bool(dom.isPersistent()))

    return pool().call(host.uri, act, f"Cannot read VM '{name}'")


def text_diff(before: str, after: str, a: str = "definition (now)", b: str = "yours") -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), a, b
    )
    return hide_secrets("".join(lines))


def _given(dom: libvirt.virDomain, text: str, doing: str) -> DomainXML:
    """The person's XML, checked to describe this same VM; InvalidInput."""
    doc = parse_given(text)
    if doc.name != dom.name():
        raise InvalidInput(
            f"{doing}: the XML names VM '{doc.name}'. A new name is a new VM: "
            "rename it, or clone it."
        )
    if doc.uuid and doc.uuid.lower() != dom.UUIDString().lower():
        raise InvalidInput(f"{doing}: the XML has another UUID ({doc.uuid}): that is a new VM.")
    return doc


def _guard(dom: libvirt.virDomain, started_from: str, doing: str) -> str:
    if not dom.isPersistent():
        raise InvalidState(f"{doing}: it is transient; only its live state exists.")
    current = _text(dom)
    if digest(current) != started_from:
        raise Stale(f"{doing}: it was changed since you opened it.", current)
    return current


def _keep_passwords(doc: DomainXML, secure: DomainXML) -> None:
    """Graphics passwords the editor never showed: kept, by graphics type."""
    had = {g.type: g.passwd for g in secure.graphics if g.passwd is not None}
    for g in doc.graphics:
        if g.passwd is None and g.type in had:
            g.passwd = had[g.type]


def preview(host: HostRef, name: str, text: str, started_from: str) -> str:
    """The diff the replacement would make; Stale, InvalidInput; nothing is defined."""
    doing = f"Cannot change VM '{name}'"

    def act(conn: libvirt.virConnect) -> str:
        dom = lookup(conn, host, name)
        current = _guard(dom, started_from, doing)
        _given(dom, text, doing)
        return text_diff(current, text)

    return pool().call(host.uri, act, doing)


def replace(host: HostRef, name: str, text: str, started_from: str) -> Replaced:
    """Define `text` as the VM's new definition (VALIDATE) if nobody changed it
    since `started_from` was read; Stale, InvalidInput (libvirt's sentence)."""
    doing = f"Cannot change VM '{name}'"

    def act(conn: libvirt.virConnect) -> Replaced:
        dom = lookup(conn, host, name)
        current = _guard(dom, started_from, doing)
        doc = _given(dom, text, doing)
        given = DomainXML.parse(doc.tostring())
        _keep_passwords(doc, DomainXML.parse(str(dom.XMLDesc(_SECURE))))
        try:
            conn.defineXMLFlags(doc.tostring(), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        except libvirt.libvirtError as err:
            raise translate(err, doing) from None
        stored = _text(dom)
        dropped = lost(given.node, DomainXML.parse(stored).node)
        return Replaced(text_diff(current, stored, "before", "after"), tuple(dropped), stored)

    return pool().call(host.uri, act, doing)


def restore(host: HostRef, name: str, text: str) -> Replaced:
    """Define an earlier definition of this VM again (a revert); InvalidInput
    with libvirt's reason when it no longer validates on this host."""
    doing = f"Cannot revert VM '{name}'"

    def act(conn: libvirt.virConnect) -> Replaced:
        dom = lookup(conn, host, name)
        if not dom.isPersistent():
            raise InvalidState(f"{doing}: it is transient; only its live state exists.")
        current = _text(dom)
        doc = DomainXML.parse(text)
        if doc.uuid and doc.uuid.lower() != dom.UUIDString().lower():
            raise InvalidInput(f"{doing}: that definition belongs to another VM.")
        _keep_passwords(doc, DomainXML.parse(str(dom.XMLDesc(_SECURE))))
        try:
            conn.defineXMLFlags(doc.tostring(), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        except libvirt.libvirtError as err:
            raise translate(err, doing) from None
        stored = _text(dom)
        return Replaced(text_diff(current, stored, "before", "after"), (), stored)

    return pool().call(host.uri, act, doing)
