"""Taking a device out of a VM, in its definition and, while it runs, out of
the running guest: what disks.py and nics.py share.

The definition's element goes with AFFECT_CONFIG, the running VM's own
element (alias, address with it) with AFFECT_LIVE. Unplugging from a running
guest needs its cooperation; whether it let go is read back, not assumed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libvirt

from vmdash.virt.errors import NotFound, translate
from vmdash.virt.xml import XMLObject, tostring
from vmdash.virt.xml.domain import DomainXML

_SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


@dataclass(frozen=True)
class Detached:
    live: bool  # gone from the running guest too
    waiting: bool  # still in the running guest: it leaves at the next stop


def detach(
    dom: libvirt.virDomain, find: Callable[[DomainXML], XMLObject | None], missing: str, doing: str
) -> Detached:
    """Detach the device `find` picks, from the definition and the running VM;
    NotFound(`missing`) when neither has it, libvirt's sentence when it refuses."""
    config = find(DomainXML.parse(str(dom.XMLDesc(_SECURE))))
    live = find(DomainXML.parse(str(dom.XMLDesc(0)))) if dom.isActive() else None
    if config is None and live is None:
        raise NotFound(missing)
    try:
        if config is not None:
            dom.detachDeviceFlags(tostring(config.node), libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        if live is not None:
            dom.detachDeviceFlags(tostring(live.node), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    except libvirt.libvirtError as err:
        raise translate(err, doing) from None
    still = bool(dom.isActive()) and find(DomainXML.parse(str(dom.XMLDesc(0)))) is not None
    return Detached(live is not None and not still, still)
