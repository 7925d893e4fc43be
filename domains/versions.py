"""The history of a VM's definitions: every one vmdash made or saw.

vmdash's own edits (the Hardware tab, the XML editor, a revert) call
`remember` with the person and the reason right after they define. The
events service's sink below sees libvirt's DEFINED and metadata events of
every VM, from any tool, and remembers the definition it then reads; one
made by vmdash a moment before is the same text (same digest) and is not
kept twice. Whichever of the two comes first, the version ends up with the
person's name when vmdash made it, "outside vmdash" otherwise. Opening the
History tab remembers the definition as it is now if it is new.

VMDASH_DEFINITION_VERSIONS versions are kept per VM (the oldest go first);
they stay after the VM is deleted, for the audit trail.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from domains.models import DomainVersion
from vmdash.live.sinks import register_sink
from vmdash.models import Host
from vmdash.virt import definition
from vmdash.virt.errors import VirtError
from vmdash.virt.events import Change, Event, ObjectEvent, ObjectKind
from vmdash.virt.refs import HostRef
from vmdash.virt.xml.domain import DomainXML

log = logging.getLogger(__name__)

# A version seen by the sink and then claimed by a vmdash edit within this
# long was that edit (the event can arrive before the view records it).
CLAIM_WITHIN = timedelta(seconds=60)
WATCHED = frozenset({Change.DEFINED, Change.METADATA_CHANGED})

# Reasons are stored in English (the audit trail's language) and told in the
# reader's: these, and "reverted to the version of <when>".
FIRST_SEEN = gettext_noop("as vmdash first saw it")
RESIZED = gettext_noop("memory and vCPUs")
PENDING_REVERTED = gettext_noop("pending memory and vCPUs reverted")
XML_EDITED = gettext_noop("XML edited")
MEDIA = gettext_noop("CD-ROM media changed")
PINNED = gettext_noop("vCPU pinning")
NUMA = gettext_noop("guest NUMA cells")
PLACEMENT = gettext_noop("memory placement and emulator pinning")
BOOT = gettext_noop("boot order, title or description")
NICS = gettext_noop("network interfaces")
DISKS = gettext_noop("disks")
CPU = gettext_noop("CPU mode, model or topology")
REVERTED = "reverted to the version of "


def _keep() -> int:
    return int(getattr(settings, "VMDASH_DEFINITION_VERSIONS", 200))


def remember(
    host: str, uuid: str, name: str, xml: str, username: str = "", reason: str = ""
) -> DomainVersion | None:
    """Keep `xml` as the VM's newest version unless it is that already; the version
    kept (or claimed for `username`), or None when nothing was new."""
    found = definition.digest(xml)
    with transaction.atomic():
        latest = DomainVersion.objects.select_for_update().filter(host=host, uuid=uuid).first()
        if latest is not None and latest.digest == found:
            recent = timezone.now() - latest.at < CLAIM_WITHIN
            if username and not latest.username and recent:
                latest.username, latest.reason = username, reason
                latest.save(update_fields=["username", "reason"])
                return latest
            return None
        version = DomainVersion.objects.create(
            at=timezone.now(),
            host=host,
            uuid=uuid,
            name=name[:255],
            xml=xml,
            digest=found,
            username=username[:150],
            reason=reason[:255],
        )
    _prune(host, uuid)
    return version


def _prune(host: str, uuid: str) -> None:
    keep = _keep()
    if keep <= 0:
        return
    old = DomainVersion.objects.filter(host=host, uuid=uuid).values_list("pk", flat=True)[keep:]
    if old:
        DomainVersion.objects.filter(pk__in=list(old)).delete()


def remember_now(host: HostRef, name: str, uuid: str) -> None:
    """The definition as it is now, if vmdash has not seen it (the History tab)."""
    try:
        current = definition.read(host, name)
    except VirtError as err:
        log.info("history: cannot read %s/%s now (%s)", host.slug, name, err)
        return
    if current.persistent:
        looked_at(host.slug, uuid, name, current.text)


def looked_at(host: str, uuid: str, name: str, xml: str) -> DomainVersion | None:
    """A definition read for a page: the first one of a VM is "as vmdash first
    saw it"; a new one after that was made outside vmdash."""
    first = not DomainVersion.objects.filter(host=host, uuid=uuid).exists()
    return remember(host, uuid, name, xml, reason=FIRST_SEEN if first else "")


def told(reason: str) -> str:
    """A stored reason in the reader's language."""
    if reason.startswith(REVERTED):
        return _("reverted to the version of %(when)s") % {"when": reason[len(REVERTED) :]}
    return _(reason) if reason else ""


@register_sink
def seen(event: Event) -> None:
    """A VM was (re)defined or its metadata changed: keep the new definition
    (worker thread of the events service)."""
    if not isinstance(event, ObjectEvent) or event.kind != ObjectKind.DOMAIN:
        return
    if event.change not in WATCHED or not event.uuid:
        return
    host = Host.objects.filter(slug=event.host).first()
    if host is None:
        return
    try:
        current = definition.read(host.ref, event.name)
    except VirtError:
        return  # gone again, or the host went: the next event tells
    if current.persistent:
        remember(event.host, event.uuid, event.name, current.text)


def summary(version: DomainVersion, before: DomainVersion | None) -> str:
    """One line of what changed since the version before ("memory 2 → 4 GiB, NIC added")."""
    if before is None:
        return _("first version vmdash saw")
    try:
        new, old = DomainXML.parse(version.xml), DomainXML.parse(before.xml)
    except VirtError:
        return _("changed")
    parts: list[str] = []

    def mib(kib: int | None) -> str:
        return f"{(kib or 0) // 1024} MiB"

    if new.name != old.name:
        parts.append(_("renamed %(a)s → %(b)s") % {"a": old.name, "b": new.name})
    if new.memory_kib != old.memory_kib:
        parts.append(
            _("max memory %(a)s → %(b)s") % {"a": mib(old.memory_kib), "b": mib(new.memory_kib)}
        )
    if new.current_memory_kib != old.current_memory_kib:
        a, b = mib(old.current_memory_kib), mib(new.current_memory_kib)
        parts.append(_("memory %(a)s → %(b)s") % {"a": a, "b": b})
    if (new.vcpus, new.vcpus_current) != (old.vcpus, old.vcpus_current):
        a = f"{old.vcpus_current or old.vcpus}/{old.vcpus}"
        b = f"{new.vcpus_current or new.vcpus}/{new.vcpus}"
        parts.append(_("vCPUs %(a)s → %(b)s") % {"a": a, "b": b})
    for label, n, o in (
        (_("disks"), len(new.disks), len(old.disks)),
        (_("NICs"), len(new.interfaces), len(old.interfaces)),
        (_("graphics"), len(new.graphics), len(old.graphics)),
    ):
        if n != o:
            parts.append(f"{label} {o} → {n}")
    if new.title != old.title or new.description != old.description:
        parts.append(_("title or description"))
    if new.tags != old.tags:
        parts.append(_("tags"))
    if not parts:
        changed = sum(
            1
            for line in definition.text_diff(before.xml, version.xml).splitlines()[2:]
            if line[:1] in "+-"
        )
        parts.append(_("%(n)d lines changed") % {"n": changed})
    return ", ".join(parts)
