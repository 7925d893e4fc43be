"""What libvirt dropped or changed: the XML a person gave against the XML libvirt kept.

libvirt silently leaves out what it does not know or does not keep (a NIC
alias without the ua- prefix, a vnet* target, elements outside its schema
when defined unchecked). `lost(given, stored)` walks the given tree and
names every element, attribute or text that is not in the stored one with
the same meaning. What libvirt adds (addresses, controllers, defaults) is
not a loss and is not reported. Sizes with a unit are compared in KiB.
"""

from __future__ import annotations

from lxml import etree

from vmdash.virt.xml import to_kib

# Attributes libvirt rewrites without changing the meaning (sizes: see _value).
_SAME = {"unit"}


def _value(node: etree._Element, name: str | None) -> str:
    raw = (node.get(name) if name else node.text) or ""
    raw = raw.strip()
    unit = node.get("unit")
    if unit is not None and raw.isdigit() and name in (None, "size", "memory"):
        return str(to_kib(raw, unit))
    if name in _CPU_LISTS:
        return ",".join(map(str, sorted(_cpus(raw))))
    return raw


_CPU_LISTS = {"cpuset", "nodeset", "cpus", "vcpus"}


def _cpus(text: str) -> set[int]:
    """'0-3,^2,8' as libvirt reads it: {0, 1, 3, 8} (unparsable: empty)."""
    out: set[int] = set()
    try:
        for part in filter(None, text.replace(" ", "").split(",")):
            neg, part = part.startswith("^"), part.lstrip("^")
            lo, _, hi = part.partition("-")
            span = set(range(int(lo), int(hi or lo) + 1))
            out = out - span if neg else out | span
    except ValueError:
        return set()
    return out


def _same_machine(given: str, stored: str) -> bool:
    """libvirt stores the versioned machine an alias stands for (q35 -> pc-q35-7.2)."""
    return stored == given or stored.startswith(
        {"q35": "pc-q35-", "pc": "pc-i440fx-"}.get(given, f"{given}-")
    )


def _score(given: etree._Element, stored: etree._Element) -> int:
    return sum(1 for k, v in given.attrib.items() if stored.get(k) == v)


def _match(given: etree._Element, pool: list[etree._Element]) -> etree._Element | None:
    same = [s for s in pool if s.tag == given.tag]
    if not same:
        return None
    best = max(same, key=lambda s: _score(given, s))
    pool.remove(best)
    return best


def _label(path: str, node: etree._Element) -> str:
    keys = [
        f"{k!s}='{v!s}'" for k, v in node.attrib.items() if k in ("type", "dev", "name", "index")
    ]
    return f"{path}/{node.tag}" + (f"[{', '.join(keys)}]" if keys else "")


def lost(given: etree._Element, stored: etree._Element, path: str = "") -> list[str]:
    """Every element, attribute and text of `given` that `stored` lost or changed."""
    here = _label(path, given) if path else str(given.tag)
    out: list[str] = []
    for name in map(str, given.attrib):
        if name in _SAME:
            continue
        if name not in stored.attrib:
            out.append(f"{here}/@{name}: dropped ({given.get(name)!r})")
        elif name == "machine" and _same_machine(given.get(name, ""), stored.get(name, "")):
            continue
        elif _value(given, name) != _value(stored, name):
            out.append(f"{here}/@{name}: {given.get(name)!r} became {stored.get(name)!r}")
    if (given.text or "").strip() and _value(given, None) != _value(stored, None):
        out.append(f"{here}: {(given.text or '').strip()!r} became {(stored.text or '').strip()!r}")
    pool = [c for c in stored if isinstance(c.tag, str)]
    for child in given:
        if not isinstance(child.tag, str):
            continue  # comments: libvirt keeps none
        twin = _match(child, pool)
        if twin is None:
            out.append(f"{_label(here, child)}: dropped")
        else:
            out.extend(lost(child, twin, here))
    return out
