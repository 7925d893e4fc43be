"""What an edit of a network changes, sorted into what libvirt can apply to the
running network (virNetworkUpdate) and what waits for a restart.

Pure: two network documents in, a list of changes out. libvirt's
virNetworkUpdate knows a few sections of a running network (DHCP hosts and
ranges, DNS hosts, TXT and SRV records, forward interfaces, port groups);
everything else of a running network (mode, bridge, addresses, domain, MTU,
...) changes only when it is started again. An edit is compared section by
section: each added, removed or changed element of a live section is one
`Change` with the XML libvirt's update call takes; what differs in the rest
is one `Change` per top-level element kind, to be applied by a restart.

DHCP changes of an <ip> whose address changes too wait for the restart: the
running dnsmasq cannot take a range of a subnet it does not serve yet.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from lxml import etree

from vmdash.virt.xml import tostring


class Section(StrEnum):
    """virNetworkUpdate's sections we use, named like `virsh net-update`'s."""

    IP_DHCP_HOST = "ip-dhcp-host"
    IP_DHCP_RANGE = "ip-dhcp-range"
    DNS_HOST = "dns-host"
    DNS_TXT = "dns-txt"
    DNS_SRV = "dns-srv"
    FORWARD_INTERFACE = "forward-interface"
    PORTGROUP = "portgroup"


class Command(StrEnum):
    ADD = "add-last"
    DELETE = "delete"
    MODIFY = "modify"


# Where each section's elements are, (under an <ip> for the DHCP ones), and
# what names one element so that a change is a MODIFY (None: only add/delete).
_PATHS: dict[Section, tuple[str, str | None]] = {
    Section.IP_DHCP_HOST: ("dhcp/host", "mac"),
    Section.IP_DHCP_RANGE: ("dhcp/range", None),
    Section.DNS_HOST: ("dns/host", "ip"),
    Section.DNS_TXT: ("dns/txt", None),
    Section.DNS_SRV: ("dns/srv", None),
    Section.FORWARD_INTERFACE: ("forward/interface", None),
    Section.PORTGROUP: ("portgroup", "name"),
}
_IP_SECTIONS = (Section.IP_DHCP_HOST, Section.IP_DHCP_RANGE)
# Attributes libvirt adds to a running network's XML: not part of a definition.
_RUNTIME_ATTRS = ("connections",)


@dataclass(frozen=True)
class Change:
    """One difference between two definitions of a network.

    live: virNetworkUpdate can apply it to the running network (`command`,
    `section`, `index` = the <ip>'s place, `xml` = the element). Otherwise it
    waits for a restart; `what` is then the element's tag.
    """

    live: bool
    what: str  # a Section value, or the tag of what changes at restart
    before: str = ""  # the element's XML before ("" when added)
    after: str = ""  # ... and after ("" when removed)
    command: Command | None = None
    index: int = -1

    @property
    def section(self) -> Section | None:
        return Section(self.what) if self.live else None

    @property
    def xml(self) -> str:
        """What virNetworkUpdate is given: the new element, or the old one to delete."""
        return self.before if self.command == Command.DELETE else self.after


def _clean(node: etree._Element) -> etree._Element:
    """A copy without indentation, comments or runtime attributes, for comparing."""
    out = copy.deepcopy(node)
    for el in out.iter():
        if not isinstance(el.tag, str):
            continue
        for name in _RUNTIME_ATTRS:
            if name in el.attrib:
                del el.attrib[name]
        if el.text is not None and not el.text.strip():
            el.text = None
        if el.tail is not None and not el.tail.strip():
            el.tail = None
    for comment in list(out.iter(etree.Comment)):
        comment.getparent().remove(comment)  # type: ignore[union-attr]
    return out


def _canon(node: etree._Element) -> str:
    return tostring(_clean(node))


def _elements(root: etree._Element, section: Section) -> Iterator[tuple[int, etree._Element]]:
    path, _key = _PATHS[section]
    if section in _IP_SECTIONS:
        for index, ip in enumerate(root.iterfind("ip")):
            for el in ip.iterfind(path):
                yield index, el
    else:
        for el in root.iterfind(path):
            yield -1, el


def _strip(root: etree._Element) -> etree._Element:
    """The definition without its live sections (and containers left empty)."""
    out = _clean(root)
    for section in Section:
        for _index, el in list(_elements(out, section)):
            el.getparent().remove(el)  # type: ignore[union-attr]
    for path in ("ip/dhcp", "dns"):
        for el in list(out.iterfind(path)):
            if len(el) == 0 and not el.attrib:
                el.getparent().remove(el)  # type: ignore[union-attr]
    return out


def _default_nat(root: etree._Element) -> None:
    """A running NAT network shows libvirt's default port range: not a change."""
    for nat in root.iterfind("forward/nat"):
        ports = list(nat)
        if (
            len(ports) == 1
            and ports[0].tag == "port"
            and (ports[0].get("start"), ports[0].get("end"), len(ports[0].attrib))
            == ("1024", "65535", 2)
            and not nat.attrib
        ):
            nat.getparent().remove(nat)  # type: ignore[union-attr]


def _by_tag(root: etree._Element) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for el in root:
        if isinstance(el.tag, str):
            out.setdefault(el.tag, []).append(tostring(el))
    return out


def _restart_changes(before: etree._Element, after: etree._Element) -> list[Change]:
    """One change per kind of top-level element that differs outside the live sections."""
    old_root, new_root = _strip(before), _strip(after)
    _default_nat(old_root)
    _default_nat(new_root)
    old, new = _by_tag(old_root), _by_tag(new_root)
    changes = []
    for tag in [*old, *(t for t in new if t not in old)]:
        if tag == "uuid" or old.get(tag) == new.get(tag):
            continue
        changes.append(Change(False, tag, "\n".join(old.get(tag, [])), "\n".join(new.get(tag, []))))
    return changes


def _ips_kept(before: etree._Element, after: etree._Element) -> set[int]:
    """Indexes of the <ip> elements that are the same, DHCP aside, in both."""
    old = [_canon_ip(ip) for ip in before.iterfind("ip")]
    new = [_canon_ip(ip) for ip in after.iterfind("ip")]
    return {i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a == b}


def _canon_ip(ip: etree._Element) -> str:
    out = _clean(ip)
    for dhcp in out.findall("dhcp"):
        out.remove(dhcp)
    return tostring(out)


def _section_changes(
    before: etree._Element, after: etree._Element, section: Section, live: bool
) -> list[Change]:
    _path, key = _PATHS[section]
    old = [(i, _canon(el), el.get(key) if key else None) for i, el in _elements(before, section)]
    new = [(i, _canon(el), el.get(key) if key else None) for i, el in _elements(after, section)]
    new_texts = {(i, t) for i, t, _k in new}
    old_texts = {(i, t) for i, t, _k in old}
    gone = [(i, t, k) for i, t, k in old if (i, t) not in new_texts]
    came = [(i, t, k) for i, t, k in new if (i, t) not in old_texts]
    changes = []
    for i, text, k in gone:
        twin = next((c for c in came if k is not None and c[0] == i and c[2] == k), None)
        if twin is not None:
            came.remove(twin)
            changes.append(Change(live, section.value, text, twin[1], Command.MODIFY, i))
        else:
            changes.append(Change(live, section.value, text, "", Command.DELETE, i))
    changes += [Change(live, section.value, "", t, Command.ADD, i) for i, t, _k in came]
    return changes


def plan(before: etree._Element, after: etree._Element) -> list[Change]:
    """Every difference between two definitions of one network, live ones first.

    Live changes come deletes first, so that an entry that moves (a MAC that
    gets another address, a range that shifts) never meets itself. A live
    section whose parent changes at restart (the <ip> of a DHCP entry, the
    mode of a forward interface) is applied at restart with it.
    """
    restart = _restart_changes(before, after)
    kept_ips = _ips_kept(before, after)
    mode_kept = not any(c.what == "forward" for c in restart)
    changes: list[Change] = []
    for section in Section:
        for change in _section_changes(before, after, section, True):
            live = (change.index in kept_ips) if section in _IP_SECTIONS else True
            if section == Section.FORWARD_INTERFACE:
                live = mode_kept
            changes.append(change if live else _deferred(change))
    changes.sort(key=lambda c: (not c.live, c.command != Command.DELETE))
    return changes + restart


def _deferred(change: Change) -> Change:
    return Change(False, change.what, change.before, change.after, change.command, change.index)
