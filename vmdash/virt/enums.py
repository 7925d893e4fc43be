"""libvirt's state integers as enums, built from the VIR_* constants in one table."""

from __future__ import annotations

from enum import StrEnum

import libvirt


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
        return _STATE_LABELS[self]

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
    DomainState.NOSTATE: "no state",
    DomainState.RUNNING: "running",
    DomainState.BLOCKED: "running (blocked)",
    DomainState.PAUSED: "paused",
    DomainState.SHUTDOWN: "shutting down",
    DomainState.SHUTOFF: "shut off",
    DomainState.CRASHED: "crashed",
    DomainState.PMSUSPENDED: "suspended by guest",
}

# Why a VM is in its state, as libvirt tells it (virDomain*Reason), per state.
_REASONS: dict[DomainState, dict[int, str]] = {
    DomainState.RUNNING: {
        libvirt.VIR_DOMAIN_RUNNING_BOOTED: "booted",
        libvirt.VIR_DOMAIN_RUNNING_MIGRATED: "migrated in",
        libvirt.VIR_DOMAIN_RUNNING_RESTORED: "restored from a saved state",
        libvirt.VIR_DOMAIN_RUNNING_FROM_SNAPSHOT: "reverted to a snapshot",
        libvirt.VIR_DOMAIN_RUNNING_UNPAUSED: "resumed",
        libvirt.VIR_DOMAIN_RUNNING_MIGRATION_CANCELED: "migration canceled",
        libvirt.VIR_DOMAIN_RUNNING_SAVE_CANCELED: "save canceled",
        libvirt.VIR_DOMAIN_RUNNING_WAKEUP: "woken up",
        libvirt.VIR_DOMAIN_RUNNING_CRASHED: "running after a crash",
    },
    DomainState.PAUSED: {
        libvirt.VIR_DOMAIN_PAUSED_USER: "paused by a user",
        libvirt.VIR_DOMAIN_PAUSED_MIGRATION: "paused for migration",
        libvirt.VIR_DOMAIN_PAUSED_SAVE: "paused while saving",
        libvirt.VIR_DOMAIN_PAUSED_DUMP: "paused for a core dump",
        libvirt.VIR_DOMAIN_PAUSED_IOERROR: "paused on a disk I/O error",
        libvirt.VIR_DOMAIN_PAUSED_WATCHDOG: "paused by the watchdog",
        libvirt.VIR_DOMAIN_PAUSED_FROM_SNAPSHOT: "paused after reverting to a snapshot",
        libvirt.VIR_DOMAIN_PAUSED_SHUTTING_DOWN: "paused while shutting down",
        libvirt.VIR_DOMAIN_PAUSED_SNAPSHOT: "paused for a snapshot",
        libvirt.VIR_DOMAIN_PAUSED_CRASHED: "paused after a guest crash",
        libvirt.VIR_DOMAIN_PAUSED_STARTING_UP: "starting up",
    },
    DomainState.SHUTOFF: {
        libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: "shut down",
        libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: "forced off",
        libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: "crashed",
        libvirt.VIR_DOMAIN_SHUTOFF_MIGRATED: "migrated away",
        libvirt.VIR_DOMAIN_SHUTOFF_SAVED: "saved",
        libvirt.VIR_DOMAIN_SHUTOFF_FAILED: "failed to start",
        libvirt.VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT: "reverted to a snapshot",
        libvirt.VIR_DOMAIN_SHUTOFF_DAEMON: "stopped by libvirtd",
    },
    DomainState.CRASHED: {libvirt.VIR_DOMAIN_CRASHED_PANICKED: "guest panicked"},
    DomainState.SHUTDOWN: {libvirt.VIR_DOMAIN_SHUTDOWN_USER: "shutdown requested"},
}


def state_reason(state: DomainState, reason: int) -> str:
    return _REASONS.get(state, {}).get(reason, "")
