"""Rates from libvirt's counters, and a day of them per VM and per host.

Two reads of `vmdash.virt.stats.read_counters` make one point of rates
(CPU %, memory, disk and network bytes per second, disk IOPS). Each object
keeps its points in two rings: every tick for the last ten minutes, and
one-minute means for a day (virt-manager keeps six minutes; cockpit stops
above twenty VMs). In memory, in the process that samples; with Redis also
copied there for the web workers (stats/shared.py).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

from vmdash.virt.stats import Counters, HostCounters, VmCounters

# The order of a point's values, as the charts and /metrics read them.
FIELDS = (
    "cpu",  # percent of the VM's vCPUs (of the host's CPUs for a host)
    "memory_used",  # bytes
    "memory_total",  # bytes
    "disk_read",  # bytes per second
    "disk_write",
    "disk_iops",  # requests per second, read + write
    "net_rx",  # bytes per second
    "net_tx",
)
FINE_SECONDS = 600
DAY = 24 * 3600
HOST_KEY = ""  # the host's own series; a VM's key is its UUID

Values = tuple[float | None, ...]


class Put(NamedTuple):
    """One point stored by History.add (what stats/shared.py copies to Redis)."""

    key: str
    name: str
    at: float
    values: Values
    rolled: tuple[float, Values] | None  # the one-minute mean this point closed


def _rate(now: int, before: int, seconds: float) -> float | None:
    if now < before:  # the counter restarted with the VM
        return None
    return (now - before) / seconds


def vm_point(now: VmCounters, before: VmCounters | None, seconds: float) -> Values:
    memory = now.memory_kib * 1024.0
    if now.unused_kib is not None:
        used: float | None = max(0.0, memory - now.unused_kib * 1024.0)
    elif now.rss_kib is not None:
        used = min(memory, now.rss_kib * 1024.0)
    else:
        used = None
    if not now.running:
        return (0.0, None, memory, 0.0, 0.0, 0.0, 0.0, 0.0)
    if before is None or seconds <= 0 or not before.running:
        return (None, used, memory, None, None, None, None, None)
    cpu = _rate(now.cpu_ns, before.cpu_ns, seconds * 1e9 * max(now.vcpus, 1))
    reqs = _rate(now.read_reqs + now.write_reqs, before.read_reqs + before.write_reqs, seconds)
    return (
        None if cpu is None else min(100.0, cpu * 100),
        used,
        memory,
        _rate(now.read_bytes, before.read_bytes, seconds),
        _rate(now.write_bytes, before.write_bytes, seconds),
        reqs,
        _rate(now.rx_bytes, before.rx_bytes, seconds),
        _rate(now.tx_bytes, before.tx_bytes, seconds),
    )


def host_point(now: HostCounters, before: HostCounters | None) -> Values:
    total = now.memory_total_kib * 1024.0
    used = total - now.memory_free_kib * 1024.0 if now.memory_free_kib else None
    cpu = None
    if before is not None and now.total_ns > before.total_ns:
        cpu = 100.0 * (now.busy_ns - before.busy_ns) / (now.total_ns - before.total_ns)
    return (cpu, used, total, None, None, None, None, None)


def _mean(points: list[Values]) -> Values:
    out: list[float | None] = []
    for column in zip(*points, strict=True):
        known = [v for v in column if v is not None]
        out.append(sum(known) / len(known) if known else None)
    return tuple(out)


@dataclass
class Series:
    """One object's points: fine for ten minutes, one-minute means for a day."""

    name: str
    fine: deque[tuple[float, Values]] = field(default_factory=deque)
    coarse: deque[tuple[float, Values]] = field(default_factory=lambda: deque(maxlen=DAY // 60))
    _minute: int = -1
    _acc: list[Values] = field(default_factory=list)

    def add(self, at: float, values: Values) -> tuple[float, Values] | None:
        """Keep a point; the one-minute mean it closed, if any."""
        minute = int(at // 60)
        rolled = None
        if minute != self._minute and self._acc:
            rolled = (self._minute * 60 + 30.0, _mean(self._acc))
            self.coarse.append(rolled)
            self._acc = []
        self._minute = minute
        self._acc.append(values)
        self.fine.append((at, values))
        while self.fine and self.fine[0][0] < at - FINE_SECONDS:
            self.fine.popleft()
        return rolled

    def window(self, seconds: float, now: float) -> list[tuple[float, Values]]:
        start = now - seconds
        if seconds <= FINE_SECONDS:
            return [p for p in self.fine if p[0] >= start]
        first_fine = self.fine[0][0] if self.fine else now
        older = [p for p in self.coarse if start <= p[0] < first_fine]
        return older + list(self.fine)

    def last_seen(self) -> float:
        return self.fine[-1][0] if self.fine else 0.0


class History:
    """Every host's and VM's series, and the counters of the last read of each host."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], Series] = {}
        self._last: dict[str, Counters] = {}
        self.down: dict[str, str] = {}  # host slug -> why its last read failed
        self._swept = 0.0
        self.forgotten: list[tuple[str, str]] = []  # (host, key) dropped, for the shared copy

    def add(self, counters: Counters) -> list[Put]:
        """Turn a read into points; the points stored."""
        puts: list[Put] = []
        with self._lock:
            before = self._last.get(counters.host)
            self._last[counters.host] = counters
            self.down.pop(counters.host, None)
            seconds = counters.clock - before.clock if before else 0.0
            old = {vm.uuid: vm for vm in before.vms} if before else {}
            for vm in counters.vms:
                point = vm_point(vm, old.pop(vm.uuid, None), seconds)
                puts.append(self._put(counters.host, vm.uuid, vm.name, counters.at, point))
            for gone in old.values():  # stopped since the last read: one idle point, then a gap
                idle = vm_point(gone._replace(running=False), None, 0)
                puts.append(self._put(counters.host, gone.uuid, gone.name, counters.at, idle))
            if counters.node is not None:
                point = host_point(counters.node, before.node if before else None)
                puts.append(self._put(counters.host, HOST_KEY, "", counters.at, point))
            if counters.at - self._swept > 60:
                self.forgotten += self._forget_old(counters.at)
                self._swept = counters.at
        return puts

    def failed(self, host: str, why: str) -> None:
        with self._lock:
            self.down[host] = why
            self._last.pop(host, None)  # rates restart from the next good read

    def _put(self, host: str, key: str, name: str, at: float, values: Values) -> Put:
        series = self._series.get((host, key))
        if series is None:
            series = self._series[(host, key)] = Series(name)
        series.name = name
        return Put(key, name, at, values, series.add(at, values))

    def _forget_old(self, now: float) -> list[tuple[str, str]]:
        gone = [k for k, s in self._series.items() if s.last_seen() < now - DAY]
        for key in gone:
            del self._series[key]
        return gone

    def window(self, host: str, key: str, seconds: float) -> list[tuple[float, Values]]:
        with self._lock:
            series = self._series.get((host, key))
            return series.window(seconds, time.time()) if series else []

    def latest(self) -> list[tuple[str, str, str, float, Values]]:
        """(host, key, name, at, values) of every object's newest point."""
        with self._lock:
            return [
                (host, key, s.name, *s.fine[-1])
                for (host, key), s in self._series.items()
                if s.fine
            ]

    def latest_of(self, host: str, keys: set[str] | None = None) -> dict[str, tuple[float, Values]]:
        """The newest point of each object of one host (of `keys` only, when given)."""
        with self._lock:
            return {
                key: s.fine[-1]
                for (h, key), s in self._series.items()
                if h == host and s.fine and (keys is None or key in keys)
            }

    def clear(self) -> None:
        with self._lock:
            self._series.clear()
            self._last.clear()
            self.down.clear()


_history = History()


def history() -> History:
    return _history
