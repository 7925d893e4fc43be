"""The events a hook may choose, and which libvirt events each one stands for.

A VM that stops is "vm.stopped" whatever stopped it (destroyed from virsh or
vmdash, shut down, saved, migrated away: the payload's `detail` says which),
except when it crashed: QEMU died ("stopped/crashed") or the guest panicked
("crashed/*") is "vm.crashed". A guest that shuts itself down sends
"vm.shutdown-by-guest" when it begins (libvirt's SHUTDOWN event with detail
"guest"), then "vm.stopped" with detail "shutdown" once QEMU has ended.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from vmdash.virt.events import Change, Event, HostStatus, ObjectEvent, ObjectKind


class Kind(models.TextChoices):
    VM_CRASHED = "vm.crashed", _("VM crashed")
    VM_STOPPED = "vm.stopped", _("VM stopped (destroyed, shut down, saved, ...)")
    VM_SHUTDOWN_BY_GUEST = "vm.shutdown-by-guest", _("VM shut down by its guest")
    HOST_UNREACHABLE = "host.unreachable", _("Host unreachable")
    HOST_BACK = "host.back", _("Host back")
    POOL_FULL = "pool.full", _("Storage pool above its threshold")
    GRANT_EXPIRING = "grant.expiring", _("Grant ending within a day")
    LOGIN_FAILURES = "login.failures", _("Failed logins above the threshold")
    PING = "ping", _("Test (send test)")


# What a hook may subscribe to ("ping" goes to the one hook tested).
CHOOSABLE = [k for k in Kind if k != Kind.PING]
CRASHED_DETAILS = frozenset({"crashed", "failed"})


def vm_kind(event: ObjectEvent) -> Kind | None:
    """The hook event a VM's libvirt event stands for, if any."""
    if event.kind != ObjectKind.DOMAIN:
        return None
    if event.change == Change.CRASHED:
        return Kind.VM_CRASHED
    if event.change == Change.STOPPED:
        return Kind.VM_CRASHED if event.detail in CRASHED_DETAILS else Kind.VM_STOPPED
    if event.change == Change.SHUTDOWN and event.detail == "guest":
        return Kind.VM_SHUTDOWN_BY_GUEST
    return None


def host_kind(event: Event) -> Kind | None:
    if isinstance(event, HostStatus):
        return Kind.HOST_BACK if event.up else Kind.HOST_UNREACHABLE
    return None
