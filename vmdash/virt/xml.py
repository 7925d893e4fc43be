"""lxml helpers: parse libvirt XML safely and read fields from it."""

from __future__ import annotations

from lxml import etree

from vmdash.virt.errors import InvalidInput

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, remove_blank_text=False, huge_tree=False
)


def parse(text: str) -> etree._Element:
    """Parse XML from libvirt or a user; raises InvalidInput when malformed."""
    try:
        return etree.fromstring(text.encode(), parser=_PARSER)
    except etree.XMLSyntaxError as err:
        raise InvalidInput(f"The XML is not well-formed: {err}") from None


def text(node: etree._Element, path: str, default: str = "") -> str:
    found = node.find(path)
    if found is None or found.text is None:
        return default
    return found.text.strip()


def attr(node: etree._Element, path: str, name: str, default: str = "") -> str:
    found = node if path in ("", ".") else node.find(path)
    if found is None:
        return default
    value = found.get(name)
    return default if value is None else value


def to_kib(value: str, unit: str) -> int:
    """libvirt memory value + unit attribute to KiB (libvirt's default unit)."""
    scale = {
        "b": 1 / 1024,
        "bytes": 1 / 1024,
        "kb": 1000 / 1024,
        "k": 1,
        "kib": 1,
        "mb": 1000**2 / 1024,
        "m": 1024,
        "mib": 1024,
        "gb": 1000**3 / 1024,
        "g": 1024**2,
        "gib": 1024**2,
        "tb": 1000**4 / 1024,
        "t": 1024**3,
        "tib": 1024**3,
    }.get(unit.lower() or "kib", 1)
    try:
        return int(int(value) * scale)
    except ValueError:
        return 0


def tostring(node: etree._Element) -> str:
    return etree.tostring(node, encoding="unicode", pretty_print=True)
