"""A VM's CPU: mode, model and topology, as the host's libvirt offers them.

The modes and models come from virConnectGetDomainCapabilities for the VM's
type, arch and machine (what this QEMU can give: host-passthrough needs
hardware virtualization, TCG offers "maximum" and named models). The
topology (sockets, dies, cores, threads) must multiply to the VM's maximum
vCPUs, as libvirt wants. Saved through the XML layer in place (the cell list
of a NUMA layout, features and the rest of <cpu> stay), VALIDATE, next start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import libvirt
from django.utils.translation import gettext as _

from vmdash.virt import xml
from vmdash.virt.connection import pool
from vmdash.virt.domains import edit, lookup
from vmdash.virt.errors import InvalidInput, InvalidState, translate
from vmdash.virt.refs import HostRef
from vmdash.virt.xml.domain import CpuMode, DomainXML

_SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


@dataclass(frozen=True)
class Topology:
    sockets: int
    dies: int
    cores: int
    threads: int

    @property
    def vcpus(self) -> int:
        return self.sockets * self.dies * self.cores * self.threads


@dataclass(frozen=True)
class CpuFacts:
    mode: str  # "" when the definition names none (the hypervisor's default)
    model: str
    topology: Topology | None
    vcpus: int
    modes: tuple[str, ...]  # the modes this host's libvirt offers for the VM
    models: tuple[str, ...]  # usable named models (custom mode)
    features: tuple[tuple[str, str], ...] = ()  # (name, policy) in the definition
    known: tuple[str, ...] = ()  # feature names the host's host-model CPU lists


def _known_features(conn: libvirt.virConnect, doc: DomainXML) -> tuple[str, ...]:
    """The features host-model expands to on this host (a list to pick from)."""
    try:
        caps = xml.parse(
            str(conn.getDomainCapabilities(doc.emulator, doc.arch, doc.machine, doc.type, 0))
        )
    except libvirt.libvirtError:
        return ()
    found = caps.findall("./cpu/mode[@name='host-model']/feature")
    return tuple(sorted({f.get("name", "") for f in found} - {""}))


def _offer(conn: libvirt.virConnect, doc: DomainXML) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        caps = xml.parse(
            str(conn.getDomainCapabilities(doc.emulator, doc.arch, doc.machine, doc.type, 0))
        )
    except libvirt.libvirtError:
        return tuple(m.value for m in CpuMode), ()  # a driver without them: libvirt decides
    modes = tuple(
        m.get("name", "") for m in caps.findall("./cpu/mode") if m.get("supported") == "yes"
    )
    models = tuple(
        sorted({(m.text or "").strip() for m in caps.findall("./cpu/mode[@name='custom']/model")
                if m.get("usable") != "no"} - {""})
    )  # fmt: skip
    return modes, models


def read(host: HostRef, name: str) -> CpuFacts:
    def act(conn: libvirt.virConnect) -> CpuFacts:
        dom = lookup(conn, host, name)
        doc = DomainXML.parse(str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
        modes, models = _offer(conn, doc)
        topo = None
        if doc.cpu_sockets:
            topo = Topology(doc.cpu_sockets, doc.cpu_dies or 1, doc.cpu_cores or 1,
                            doc.cpu_threads or 1)  # fmt: skip
        return CpuFacts(
            mode=str(doc.cpu_mode or ""),
            model=doc.cpu_model or "",
            topology=topo,
            vcpus=doc.vcpus or 1,
            modes=modes,
            models=models,
            features=tuple((f.name or "", f.policy or "require") for f in doc.cpu_features),
            known=_known_features(conn, doc),
        )

    return pool().call(host.uri, act, f"Cannot read VM '{name}'")


def problems(facts: CpuFacts, mode: str, model: str, topo: Topology | None) -> list[str]:
    out = []
    if mode and facts.modes and mode not in facts.modes:
        out.append(
            _("This host offers the CPU modes %(modes)s for this VM, not %(mode)s.")
            % {"modes": ", ".join(facts.modes), "mode": mode}
        )
    if mode == "custom" and not model:
        out.append(_("A custom CPU needs a model."))
    if mode == "custom" and model and facts.models and model not in facts.models:
        out.append(_("This host cannot give the CPU model %(model)s.") % {"model": model})
    if topo is not None:
        if min(topo.sockets, topo.dies, topo.cores, topo.threads) < 1:
            out.append(_("Sockets, dies, cores and threads are 1 or more."))
        elif topo.vcpus != facts.vcpus:
            out.append(
                _("%(s)d sockets x %(d)d dies x %(c)d cores x %(t)d threads make %(n)d vCPUs; "
                  "the VM has %(max)d at most.")
                % {"s": topo.sockets, "d": topo.dies, "c": topo.cores, "t": topo.threads,
                   "n": topo.vcpus, "max": facts.vcpus}
            )  # fmt: skip
    return out


def _edit(doc: DomainXML, mode: str, model: str, topo: Topology | None) -> None:
    if str(doc.cpu_mode or "") != mode:
        doc.cpu_mode = CpuMode(mode) if mode else None
    wanted_model = model if mode == "custom" else None
    if (doc.cpu_model or None) != wanted_model:
        doc.cpu_model = wanted_model
    values = (
        (topo.sockets, topo.dies, topo.cores, topo.threads) if topo else (None, None, None, None)
    )
    for field, value in zip(
        ("cpu_sockets", "cpu_dies", "cpu_cores", "cpu_threads"), values, strict=True
    ):
        if getattr(doc, field) != value:
            setattr(doc, field, value)
    topology = doc.node.find("./cpu/topology")
    if topology is not None and not topology.attrib:
        xml.remove(topology)
    cpu = doc.node.find("./cpu")
    if cpu is not None and len(cpu) == 0 and not cpu.attrib:
        xml.remove(cpu)


def apply(host: HostRef, name: str, mode: str, model: str, topo: Topology | None) -> str:
    """Save the CPU's mode, model and topology; the diff ("" if nothing changed)."""
    doing = f"Cannot change the CPU of VM '{name}'"

    def act(conn: libvirt.virConnect) -> str:
        dom = lookup(conn, host, name)
        if not dom.isPersistent():
            raise InvalidState(f"{doing}: it is transient; only its live state exists.")
        doc = DomainXML.parse(str(dom.XMLDesc(_SECURE)))
        modes, models = _offer(conn, doc)
        facts = CpuFacts(str(doc.cpu_mode or ""), doc.cpu_model or "", None, doc.vcpus or 1,
                         modes, models)  # fmt: skip
        wrong = problems(facts, mode, model, topo)
        if wrong:
            raise InvalidInput(" ".join(wrong))
        _edit(doc, mode, model, topo)
        if not doc.changed:
            return ""
        try:
            conn.defineXMLFlags(doc.tostring(), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        except libvirt.libvirtError as err:
            raise translate(err, doing) from None
        return doc.diff()

    return pool().call(host.uri, act, doing)


# --- features ----------------------------------------------------------------------

POLICIES = ("require", "disable", "force", "optional", "forbid")
_FEATURE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


def feature_problems(features: list[tuple[str, str]]) -> list[str]:
    """What is wrong with (name, policy) pairs, as sentences."""
    out: list[str] = []
    seen: set[str] = set()
    for name, policy in features:
        if not _FEATURE.match(name):
            out.append(
                _("“%(name)s” is not a CPU feature name (lower-case letters, digits, - _ .).")
                % {"name": name[:40]}
            )
        elif name in seen:
            out.append(_("Feature %(name)s is listed twice.") % {"name": name})
        if policy not in POLICIES:
            out.append(_("Choose a policy: %(p)s.") % {"p": ", ".join(POLICIES)})
        seen.add(name)
    return out


def _edit_features(doc: DomainXML, features: list[tuple[str, str]]) -> None:
    """The definition's features become `features`: a kept one is changed in
    place, a new one added after the others, a dropped one removed."""
    wanted = dict(features)
    missing = set(wanted)
    for have in list(doc.cpu_features):
        name = have.name or ""
        if name not in wanted:
            doc.cpu_features.remove(have)
            continue
        missing.discard(name)
        if (have.policy or "require") != wanted[name]:
            have.policy = wanted[name]
    for name, policy in features:
        if name in missing:
            doc.cpu_features.add(policy=policy, name=name)
    cpu = doc.node.find("./cpu")
    if cpu is not None and len(cpu) == 0 and not cpu.attrib:
        xml.remove(cpu)


def apply_features(host: HostRef, name: str, features: list[tuple[str, str]]) -> str:
    """Save the CPU features (checked first, then libvirt's VALIDATE); the diff."""
    wrong = feature_problems(features)
    if wrong:
        raise InvalidInput(" ".join(wrong))

    def change(doc: DomainXML) -> None:
        named = doc.cpu_model or str(doc.cpu_mode or "") not in ("", "custom")
        if features and not named:
            raise InvalidInput(
                _(
                    "CPU features need a CPU mode other than custom, or a model: "
                    "save one above first."
                )
            )
        _edit_features(doc, features)

    return edit(host, name, change, persistent_only=True,
                doing=f"Cannot change the CPU features of VM '{name}'")  # fmt: skip
