"""A VM's boot order, boot menu, title and description: its definition only.

libvirt knows two ways to say what boots first: <os><boot dev='hd'/> (by
kind) and <boot order='N'/> on a disk or interface (by device), and refuses
the two together. vmdash writes per-device orders: a person picks the
devices and their order, the kind-wise entries are removed. Title and
description are the ones virsh desc and the VM list show. All through the
XML layer (VIR_DOMAIN_DEFINE_VALIDATE); they apply at the next start.
"""

from __future__ import annotations

from dataclasses import dataclass

import libvirt
from django.utils.translation import gettext as _
from lxml import etree

from vmdash.virt.connection import pool
from vmdash.virt.domains import edit, lookup
from vmdash.virt.errors import InvalidInput
from vmdash.virt.refs import HostRef
from vmdash.virt.xml import insert
from vmdash.virt.xml.domain import DomainXML

_SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


@dataclass(frozen=True)
class Bootable:
    key: str  # "disk:vda", "nic:52:54:00:..."
    label: str  # "vda (disk, virtio)", "52:54:00:… (network default)"
    order: int | None


@dataclass(frozen=True)
class BootOptions:
    devices: tuple[Bootable, ...]
    by_kind: tuple[str, ...]  # <os><boot dev=...> entries, when the VM uses them
    menu: bool
    title: str
    description: str


def _devices(doc: DomainXML) -> list[tuple[str, str, object]]:
    out: list[tuple[str, str, object]] = []
    for d in doc.disks:
        label = f"{d.target_dev or '?'} ({d.device or 'disk'}, {d.target_bus or '?'})"
        out.append((f"disk:{d.target_dev}", label, d))
    for n in doc.interfaces:
        where = n.source_network or n.source_bridge or n.source_dev or n.type or ""
        out.append((f"nic:{(n.mac or '').lower()}", f"{n.mac} ({where})", n))
    return out


def _menu(doc: DomainXML) -> bool:
    node = doc.node.find("./os/bootmenu")
    return node is not None and node.get("enable") == "yes"


def read(host: HostRef, name: str) -> BootOptions:
    def act(conn: libvirt.virConnect) -> BootOptions:
        dom = lookup(conn, host, name)
        doc = DomainXML.parse(str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
        return BootOptions(
            devices=tuple(
                Bootable(key, label, getattr(dev, "boot_order", None))
                for key, label, dev in _devices(doc)
            ),
            by_kind=tuple(b.dev or "" for b in doc.boot),
            menu=_menu(doc),
            title=doc.title or "",
            description=doc.description or "",
        )

    return pool().call(host.uri, act, f"Cannot read VM '{name}'")


def problems(orders: dict[str, int]) -> list[str]:
    seen: dict[int, str] = {}
    out = []
    for key, order in orders.items():
        if order < 1:
            out.append(_("A boot position starts at 1."))
        elif order in seen:
            out.append(_("Two devices are in boot position %(n)d.") % {"n": order})
        seen[order] = key
    return out


def _edit(doc: DomainXML, orders: dict[str, int], menu: bool, title: str, description: str) -> None:
    devices = {key: dev for key, _label, dev in _devices(doc)}
    unknown = sorted(set(orders) - set(devices))
    if unknown:
        raise InvalidInput(_("There is no device %(key)s in the VM.") % {"key": unknown[0]})
    if orders:  # per-device orders: the kind-wise entries must go (libvirt refuses both)
        for entry in list(doc.boot):
            doc.boot.remove(entry)
    for key, dev in devices.items():
        wanted = orders.get(key)
        if getattr(dev, "boot_order", None) != wanted:
            dev.boot_order = wanted  # type: ignore[attr-defined]
    if _menu(doc) != menu:
        node = doc.node.find("./os/bootmenu")
        if menu and node is None:
            os_node = doc.node.find("./os")
            if os_node is not None:
                insert(os_node, etree.Element("bootmenu", enable="yes"), doc.ORDERS["os"])
        elif node is not None:
            node.set("enable", "yes" if menu else "no")
    if (doc.title or "") != title:
        doc.title = title or None
    if (doc.description or "") != description:
        doc.description = description or None


def apply(
    host: HostRef, name: str, orders: dict[str, int], menu: bool, title: str, description: str
) -> str:
    """Save the boot order (device key -> position), menu, title and
    description; the diff ("" if nothing changed)."""
    doing = f"Cannot change VM '{name}'"
    wrong = problems(orders)
    if wrong:
        raise InvalidInput(" ".join(wrong))

    def change(doc: DomainXML) -> None:
        _edit(doc, orders, menu, title, description)

    return edit(host, name, change, doing=doing, persistent_only=True)
