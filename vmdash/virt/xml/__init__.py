"""The XML layer: parse libvirt XML safely, read and edit it through declared fields.

Every field is declared once, as a path to an element's text or attribute
plus a kind that turns the text into a typed value and back::

    class GraphicsXML(XMLObject):
        autoport = Field("./@autoport", YESNO)

Reading a field gives the typed value (None when absent); writing changes
that one node (missing parents are created in libvirt's order, None removes
it). Everything else in the tree is left alone: unknown elements, comments,
namespaces, other tools' <metadata>. A `Document` remembers the text it was
parsed from and returns the unified diff of an edit. Output is written in
libvirt's own style (single-quoted attributes, quotes escaped in text), so a
document libvirt formatted round-trips unchanged. The one thing lxml cannot
keep is the place of namespace declarations: they come before the attributes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from lxml import etree

from vmdash.virt.errors import InvalidInput

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, remove_blank_text=False, huge_tree=False
)

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)
X = TypeVar("X", bound="XMLObject")


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


_UNITS = {
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
}


def to_kib(value: str, unit: str) -> int:
    """libvirt memory value + unit attribute to KiB (libvirt's default unit)."""
    try:
        return int(int(value) * _UNITS.get(unit.lower() or "kib", 1))
    except ValueError:
        return 0


# Kinds: how a field's text becomes a value and back.


@dataclass(frozen=True)
class Kind(Generic[T]):
    read: Callable[[str], T]
    write: Callable[[T], str]


def _strict_bool(true: str, false: str) -> Kind[bool]:
    def read(s: str) -> bool:
        if s not in (true, false):
            raise ValueError(s)
        return s == true

    return Kind(read, lambda v: true if v else false)


STR: Kind[str] = Kind(str, str)
INT: Kind[int] = Kind(lambda s: int(s.strip(), 0), str)
YESNO = _strict_bool("yes", "no")
ONOFF = _strict_bool("on", "off")


def enum(cls: type[E]) -> Kind[E]:
    return Kind(cls, str)


# Paths: "./a/b" is the text of <b>, "./a/b/@c" its attribute c.


def _split(path: str) -> tuple[list[str], str | None]:
    steps = [s for s in path.split("/") if s not in ("", ".")]
    if steps and steps[-1].startswith("@"):
        return steps[:-1], steps[-1][1:]
    return steps, None


def _find(node: etree._Element, steps: list[str]) -> etree._Element | None:
    for step in steps:
        found = node.find(step)
        if found is None:
            return None
        node = found
    return node


class XMLObject:
    """A view of one element. Subclasses declare fields and their child order.

    ORDERS gives, per parent tag, the child tags in the order libvirt writes
    them, so that a created element lands where libvirt (and a reader)
    expects it. Tags not listed go last.
    """

    ORDERS: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, node: etree._Element) -> None:
        self.node = node

    @property
    def tag(self) -> str:
        return str(self.node.tag)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.tag}>"


def _order_of(owner: XMLObject, parent: etree._Element) -> tuple[str, ...]:
    return owner.ORDERS.get(str(parent.tag), ())


def _indent_before(node: etree._Element) -> str | None:
    """The whitespace that precedes `node` in its parent, if it is only whitespace."""
    parent = node.getparent()
    if parent is None:
        return None
    prev = node.getprevious()
    ws = parent.text if prev is None else prev.tail
    return ws if ws is not None and ws.strip() == "" else None


def insert(parent: etree._Element, child: etree._Element, order: tuple[str, ...] = ()) -> None:
    """Put `child` into `parent` at its place in `order`, indented like its siblings."""
    rank = {tag: i for i, tag in enumerate(order)}
    mine = rank.get(str(child.tag), len(order))
    index = len(parent)
    for i, sibling in enumerate(parent):
        if isinstance(sibling.tag, str) and rank.get(sibling.tag, len(order)) > mine:
            index = i
            break
    kids = len(parent)
    if kids == 0:
        outer = _indent_before(parent)
        if outer is not None and "\n" in outer and not (parent.text or "").strip():
            parent.text = outer + "  "
            child.tail = outer
    elif index < kids:
        ws = parent.text if index == 0 else parent[index - 1].tail
        child.tail = ws if ws is not None and not ws.strip() else None
    else:
        last = parent[-1]
        child.tail, last.tail = last.tail, parent.text if not (parent.text or "").strip() else None
    parent.insert(index, child)


def remove(node: etree._Element) -> None:
    """Take `node` out of its parent, keeping the indentation of what follows."""
    parent = node.getparent()
    if parent is None:
        return
    prev = node.getprevious()
    if node.getnext() is None:  # the closing indentation was in node.tail
        if prev is None:
            parent.text = node.tail if not (parent.text or "").strip() else parent.text
        else:
            prev.tail = node.tail
    elif node.tail and node.tail.strip() and prev is not None:
        prev.tail = (prev.tail or "") + node.tail  # keep text that followed it
    parent.remove(node)
    if len(parent) == 0 and not (parent.text or "").strip():
        parent.text = None  # <features/>, as libvirt writes an empty element


def _make(owner: XMLObject, steps: list[str]) -> etree._Element:
    node = owner.node
    for step in steps:
        found = node.find(step)
        if found is None:
            found = etree.Element(step)
            insert(node, found, _order_of(owner, node))
        node = found
    return node


class Field(Generic[T]):
    """One typed value at `path` (element text, or an attribute with /@name)."""

    @overload
    def __init__(self: Field[str], path: str) -> None: ...
    @overload
    def __init__(self, path: str, kind: Kind[T]) -> None: ...
    def __init__(self, path: str, kind: Kind[Any] = STR) -> None:
        self.path = path
        self.kind: Kind[T] = kind
        self.steps, self.attr = _split(path)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Field[T]: ...
    @overload
    def __get__(self, obj: XMLObject, owner: type) -> T | None: ...
    def __get__(self, obj: XMLObject | None, owner: type) -> Field[T] | T | None:
        if obj is None:
            return self
        raw = self.raw(obj)
        if raw is None:
            return None
        try:
            return self.kind.read(raw)
        except ValueError:
            return None  # a value libvirt would not write: absent for us

    def raw(self, obj: XMLObject) -> str | None:
        node = _find(obj.node, self.steps)
        if node is None:
            return None
        return node.get(self.attr) if self.attr else node.text

    def __set__(self, obj: XMLObject, value: T | None) -> None:
        if value is None:
            self._clear(obj)
            return
        node = _make(obj, self.steps)
        if self.attr:
            node.set(self.attr, self.kind.write(value))
        else:
            node.text = self.kind.write(value)

    def _clear(self, obj: XMLObject) -> None:
        node = _find(obj.node, self.steps)
        if node is None:
            return
        if self.attr:
            if self.attr in node.attrib:
                del node.attrib[self.attr]
        elif node is not obj.node:
            remove(node)


class Flag:
    """True when the element at `path` exists (<readonly/>, <features><acpi/>)."""

    def __init__(self, path: str) -> None:
        self.steps, _ = _split(path)

    @overload
    def __get__(self, obj: None, owner: type) -> Flag: ...
    @overload
    def __get__(self, obj: XMLObject, owner: type) -> bool: ...
    def __get__(self, obj: XMLObject | None, owner: type) -> Flag | bool:
        if obj is None:
            return self
        return _find(obj.node, self.steps) is not None

    def __set__(self, obj: XMLObject, value: bool) -> None:
        node = _find(obj.node, self.steps)
        if value and node is None:
            _make(obj, self.steps)
        elif not value and node is not None:
            remove(node)


class Memory:
    """A size in KiB from an element's text and its unit attribute (<memory unit='MiB'>)."""

    def __init__(self, path: str) -> None:
        self.steps, _ = _split(path)

    @overload
    def __get__(self, obj: None, owner: type) -> Memory: ...
    @overload
    def __get__(self, obj: XMLObject, owner: type) -> int | None: ...
    def __get__(self, obj: XMLObject | None, owner: type) -> Memory | int | None:
        if obj is None:
            return self
        node = _find(obj.node, self.steps)
        value = "" if node is None else (node.text or "").strip()
        return to_kib(value, node.get("unit", "")) if node is not None and value else None

    def __set__(self, obj: XMLObject, kib: int | None) -> None:
        if kib is None:
            node = _find(obj.node, self.steps)
            if node is not None:
                remove(node)
            return
        node = _make(obj, self.steps)
        unit = node.get("unit", "KiB")
        scale = _UNITS.get(unit.lower(), 0)
        if scale < 1 or kib % scale:  # keep the unit the XML had when the size fits it
            unit, scale = "KiB", 1
        node.text = str(kib // int(scale))
        node.set("unit", unit)


class Children(Generic[X]):
    """The child elements at `path` ("./devices/disk", or "./devices/serial|console")."""

    def __init__(self, cls: type[X], path: str) -> None:
        self.cls = cls
        steps, _ = _split(path)
        self.parent, self.tags = steps[:-1], tuple(steps[-1].split("|"))

    def __get__(self, obj: XMLObject, owner: type) -> ChildList[X]:
        return ChildList(obj, self)


class ChildList(Generic[X]):
    def __init__(self, owner: XMLObject, spec: Children[X]) -> None:
        self.owner, self.spec = owner, spec

    def __iter__(self) -> Iterator[X]:
        parent = _find(self.owner.node, self.spec.parent)
        if parent is None:
            return
        for node in parent:
            if node.tag in self.spec.tags:
                yield self.spec.cls(node)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __getitem__(self, index: int) -> X:
        return list(self)[index]

    def add(self, tag: str = "", **attrib: str) -> X:
        """A new child element after the last one of its kind (or where ORDER says)."""
        parent = _make(self.owner, self.spec.parent)
        child = etree.Element(tag or self.spec.tags[0], attrib)
        same = [n for n in parent if n.tag == child.tag]
        if same:
            same[-1].addnext(child)
            child.tail, same[-1].tail = same[-1].tail, _indent_before(same[-1])
        else:
            insert(parent, child, _order_of(self.owner, parent))
        return self.spec.cls(child)

    def remove(self, item: X) -> None:
        remove(item.node)


# libvirt's style: attributes in single quotes, quotes escaped in text too.
# Inside <metadata> libvirt copies other tools' XML through libxml2, as lxml
# writes it: that part is left as lxml wrote it.
_MARKUP = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<[^>]*>", re.S)
_ATTR_VALUE = re.compile(r'"([^"]*)"')


def _quote_text(s: str) -> str:
    return s.replace("'", "&apos;").replace('"', "&quot;")


def _quote_tag(tag: str) -> str:
    return _ATTR_VALUE.sub(lambda v: "'" + v[1].replace("'", "&apos;") + "'", tag)


def _libvirt_style(serialized: str) -> str:
    out: list[str] = []
    pos, foreign = 0, False
    for m in _MARKUP.finditer(serialized):
        between, token = serialized[pos : m.start()], m.group()
        pos = m.end()
        if token == "</metadata>":
            foreign = False
        if foreign or token.startswith(("<!--", "<![CDATA[", "<?")):
            out += [between if foreign else _quote_text(between), token]
            continue
        out += [_quote_text(between), _quote_tag(token)]
        foreign = token.startswith(("<metadata>", "<metadata ")) and not token.endswith("/>")
    out.append(_quote_text(serialized[pos:]))
    return "".join(out)


_NS_DECL = re.compile(r"\s+xmlns(?::[\w.-]+)?='[^']*'")


def _ns_last(tag: str) -> str:
    """libvirt writes the root's namespace declarations after its attributes."""
    decls = "".join(_NS_DECL.findall(tag))
    end = -2 if tag.endswith("/>") else -1
    return _NS_DECL.sub("", tag)[:end] + decls + tag[end:] if decls else tag


def tostring(node: etree._Element) -> str:
    """An element (and what it holds) as text, in libvirt's style."""
    body = _libvirt_style(etree.tostring(node, encoding="unicode", with_tail=False))
    start = body.index(">") + 1
    return _ns_last(body[:start]) + body[start:]


def _prolog(text_: str) -> str:
    """What precedes the root element (XML declaration, comments): kept verbatim."""
    for m in _MARKUP.finditer(text_):
        if not m.group().startswith(("<?", "<!")):
            return text_[: m.start()]
    return ""


_SECRET = re.compile(r"\b(passwd)='[^']*'")


def hide_secrets(text: str) -> str:
    """The same XML text with passwords replaced, for diffs, logs and the page."""
    return _SECRET.sub(r"\1='(hidden)'", text)


class Document(XMLObject):
    """A whole XML document being edited: typed fields plus the diff since parsing."""

    ROOT: ClassVar[str] = ""

    def __init__(self, node: etree._Element, before: str) -> None:
        super().__init__(node)
        self._before = before
        self._prolog = ""  # the declaration and comments before the root
        self._trailer = ""  # whitespace after the root: lxml drops it

    @classmethod
    def parse(cls, text_: str) -> Self:
        """Parse libvirt's (or a user's) XML; InvalidInput if malformed or not a <ROOT>."""
        root = parse(text_)
        if cls.ROOT and root.tag != cls.ROOT:
            raise InvalidInput(f"The XML describes a <{root.tag}>, not a <{cls.ROOT}>.")
        doc = cls(root, "")
        doc._prolog = _prolog(text_)
        doc._trailer = text_[len(text_.rstrip()) :]
        doc._before = doc.tostring()
        return doc

    def tostring(self) -> str:
        return self._prolog + tostring(self.node) + self._trailer

    def diff(self, label: str = "") -> str:
        """Unified diff of the text before the edit and now ("" if nothing changed).

        Passwords are hidden, so that the diff can go to the audit trail.
        """
        name = label or self.ROOT or "xml"
        lines = difflib.unified_diff(
            self._before.splitlines(keepends=True),
            self.tostring().splitlines(keepends=True),
            fromfile=f"{name} (before)",
            tofile=f"{name} (after)",
        )
        return hide_secrets("".join(lines))

    @property
    def changed(self) -> bool:
        return self.tostring() != self._before


def fields_of(obj: XMLObject) -> dict[str, Any]:
    """Every declared field and its typed value: handy for tests and debugging."""
    out: dict[str, Any] = {}
    for klass in reversed(type(obj).__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Field | Flag | Memory):
                out[name] = getattr(obj, name)
    return out
