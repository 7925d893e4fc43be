"""vmdash's tags in an object's libvirt <metadata>, so they live with the object.

A VM (network, pool) carries its tags in its own definition, under vmdash's
namespace, where `virsh dumpxml` shows them and a lost database cannot take
them::

    <metadata>
      <vmdash:tags xmlns:vmdash="https://vmdash.example/ns/1">
        <vmdash:tag>web</vmdash:tag>
      </vmdash:tags>
    </metadata>

The namespace URI is fixed for good (a reserved .example name: it is never
fetched, only compared). virDomainGetMetadata gives the element back without
the prefix (<tags><tag>web</tag></tags>); both forms read the same. Other
tools' metadata elements are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import overload

from lxml import etree

from vmdash.virt.xml import XMLObject, _indent_before, insert, parse, remove

NS = "https://vmdash.example/ns/1"
PREFIX = "vmdash"  # the key libvirt writes the namespace under
ROOT = "tags"
MAX_TAGS = 30
MAX_LENGTH = 40
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def tag_problem(tag: str) -> str | None:
    """Why `tag` cannot be a tag (None: it can): letters, digits, '-', '_', '.'."""
    if not tag:
        return "a tag cannot be empty"
    if len(tag) > MAX_LENGTH:
        return f"a tag has at most {MAX_LENGTH} characters"
    if not _TAG.fullmatch(tag):
        return "a tag is letters, digits, '-', '_' and '.', starting with a letter or digit"
    return None


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def tags_in(element: etree._Element) -> frozenset[str]:
    """The tags held by a <tags> element, with or without vmdash's prefix."""
    found = ((child.text or "").strip() for child in element if _local(child) == "tag")
    return frozenset(t for t in found if tag_problem(t) is None)


def parse_tags(text: str) -> frozenset[str]:
    """What virDomainGetMetadata(ELEMENT, NS) returned, as tags (empty when it is no <tags>)."""
    root = parse(text)
    return tags_in(root) if _local(root) == ROOT else frozenset()


def tags_xml(tags: Iterable[str]) -> str:
    """The element for virDomainSetMetadata(ELEMENT, ..., PREFIX, NS): sorted, one per line."""
    root = etree.Element(ROOT)
    for tag in sorted(set(tags)):
        etree.SubElement(root, "tag").text = tag
    return etree.tostring(root, encoding="unicode")


class TagsField:
    """The object's vmdash tags, read and written in <metadata>: the rest of it stays.

    Reading gives a frozenset (empty when there are none); writing an empty
    set removes vmdash's element (and <metadata> if that left it empty).
    """

    @overload
    def __get__(self, obj: None, owner: type) -> TagsField: ...
    @overload
    def __get__(self, obj: XMLObject, owner: type) -> frozenset[str]: ...
    def __get__(self, obj: XMLObject | None, owner: type) -> TagsField | frozenset[str]:
        if obj is None:
            return self
        element = _ours(obj.node)
        return frozenset() if element is None else tags_in(element)

    def __set__(self, obj: XMLObject, tags: Iterable[str]) -> None:
        wanted = sorted(set(tags))
        metadata = obj.node.find("metadata")
        element = None if metadata is None else _ours(obj.node)
        if element is not None and sorted(tags_in(element)) == wanted:
            return  # the same tags: leave the text alone
        if element is not None:
            remove(element)
        if not wanted:
            if metadata is not None and len(metadata) == 0 and not (metadata.text or "").strip():
                remove(metadata)
            return
        if metadata is None:
            metadata = etree.Element("metadata")
            insert(obj.node, metadata, obj.ORDERS.get(str(obj.node.tag), ()))
        element = _element(wanted)
        insert(metadata, element)
        _indent(element)


def _ours(root: etree._Element) -> etree._Element | None:
    return root.find(f"metadata/{{{NS}}}{ROOT}")


def _indent(element: etree._Element) -> None:
    """Indent the children one step deeper than `element`, as libvirt does."""
    outer = _indent_before(element)
    if outer is None or "\n" not in outer or len(element) == 0:
        return
    element.text = outer + "  "
    for child in element:
        child.tail = outer + "  "
    element[-1].tail = outer


def _element(tags: list[str]) -> etree._Element:
    """<vmdash:tags> with one <vmdash:tag> per tag."""
    element = etree.Element(f"{{{NS}}}{ROOT}", nsmap={PREFIX: NS})
    for tag in tags:
        child = etree.SubElement(element, f"{{{NS}}}tag")
        child.text = tag
    return element
