"""libvirt's state integers as enums, built from the VIR_* constants in one table."""

from __future__ import annotations

from enum import StrEnum

import libvirt
from django.utils.translation import gettext
from django.utils.translation import gettext_noop as _t


class DomainState(StrEnum):
    NOSTATE = "nostate"
    RUNNING = "running"
    BLOCKED = "blocked"
    PAUSED = "paused"
    SHUTDOWN = "shutting-down"
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    PMSUSPENDED = "suspended"

    @property
    def label(self) -> str:
        # Translated when shown (a read may be cached and shown in any language).
        return gettext(_STATE_LABELS[self])

    @property
    def is_active(self) -> bool:
        return self not in (DomainState.SHUTOFF, DomainState.CRASHED, DomainState.NOSTATE)

    @classmethod
    def from_virt(cls, value: int) -> DomainState:
        return _STATE_BY_CODE.get(value, cls.NOSTATE)


_STATE_BY_CODE = {
    libvirt.VIR_DOMAIN_NOSTATE: DomainState.NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: DomainState.BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED: DomainState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: DomainState.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: DomainState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: DomainState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: DomainState.PMSUSPENDED,
}
_STATE_LABELS = {
    DomainState.NOSTATE: _t("no state"),
    DomainState.RUNNING: _t("running"),
    DomainState.BLOCKED: _t("running (blocked)"),
    DomainState.PAUSED: _t("paused"),
    DomainState.SHUTDOWN: _t("shutting down"),
    DomainState.SHUTOFF: _t("shut off"),
    DomainState.CRASHED: _t("crashed"),
    DomainState.PMSUSPENDED: _t("suspended by guest"),
}

# Why a VM is in its state, as libvirt tells it (virDomain*Reason), per state.
_REASONS: dict[DomainState, dict[int, str]] = {
    DomainState.RUNNING: {
        libvirt.VIR_DOMAIN_RUNNING_BOOTED: _t("booted"),
        libvirt.VIR_DOMAIN_RUNNING_MIGRATED: _t("migrated in"),
        libvirt.VIR_DOMAIN_RUNNING_RESTORED: _t("restored from a saved state"),
        libvirt.VIR_DOMAIN_RUNNING_FROM_SNAPSHOT: _t("reverted to a snapshot"),
        libvirt.VIR_DOMAIN_RUNNING_UNPAUSED: _t("resumed"),
        libvirt.VIR_DOMAIN_RUNNING_MIGRATION_CANCELED: _t("migration canceled"),
        libvirt.VIR_DOMAIN_RUNNING_SAVE_CANCELED: _t("save canceled"),
        libvirt.VIR_DOMAIN_RUNNING_WAKEUP: _t("woken up"),
        libvirt.VIR_DOMAIN_RUNNING_CRASHED: _t("running after a crash"),
    },
    DomainState.PAUSED: {
        libvirt.VIR_DOMAIN_PAUSED_USER: _t("paused by a user"),
        libvirt.VIR_DOMAIN_PAUSED_MIGRATION: _t("paused for migration"),
        libvirt.VIR_DOMAIN_PAUSED_SAVE: _t("paused while saving"),
        libvirt.VIR_DOMAIN_PAUSED_DUMP: _t("paused for a core dump"),
        libvirt.VIR_DOMAIN_PAUSED_IOERROR: _t("paused on a disk I/O error"),
        libvirt.VIR_DOMAIN_PAUSED_WATCHDOG: _t("paused by the watchdog"),
        libvirt.VIR_DOMAIN_PAUSED_FROM_SNAPSHOT: _t("paused after reverting to a snapshot"),
        libvirt.VIR_DOMAIN_PAUSED_SHUTTING_DOWN: _t("paused while shutting down"),
        libvirt.VIR_DOMAIN_PAUSED_SNAPSHOT: _t("paused for a snapshot"),
        libvirt.VIR_DOMAIN_PAUSED_CRASHED: _t("paused after a guest crash"),
        libvirt.VIR_DOMAIN_PAUSED_STARTING_UP: _t("starting up"),
    },
    DomainState.SHUTOFF: {
        libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: _t("shut down"),
        libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: _t("forced off"),
        libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: _t("crashed"),
        libvirt.VIR_DOMAIN_SHUTOFF_MIGRATED: _t("migrated away"),
        libvirt.VIR_DOMAIN_SHUTOFF_SAVED: _t("saved"),
        libvirt.VIR_DOMAIN_SHUTOFF_FAILED: _t("failed to start"),
        libvirt.VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT: _t("reverted to a snapshot"),
        libvirt.VIR_DOMAIN_SHUTOFF_DAEMON: _t("stopped by libvirtd"),
    },
    DomainState.CRASHED: {libvirt.VIR_DOMAIN_CRASHED_PANICKED: _t("guest panicked")},
    DomainState.SHUTDOWN: {libvirt.VIR_DOMAIN_SHUTDOWN_USER: _t("shutdown requested")},
}


def state_reason(state: DomainState, reason: int) -> str:
    return _REASONS.get(state, {}).get(reason, "")
