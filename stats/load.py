"""What the VM list shows of each VM's load: CPU and memory in use, now.

Read from the sampler's history (stats/shared.py `reader`), never from
libvirt: the list costs the same with or without these columns. A value
older than a few ticks is no value (the VM stopped, or the sampler did).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple

from stats.sampler import interval
from stats.shared import reader


class Load(NamedTuple):
    cpu: float | None  # percent of the VM's vCPUs
    used: int | None  # bytes of memory in use
    total: int | None  # bytes the VM has now

    @property
    def used_percent(self) -> float | None:
        if self.used is None or not self.total:
            return None
        return min(100.0, 100.0 * self.used / self.total)


def loads(rows: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Load]:
    """(host, uuid) -> the VM's load now, for the VMs sampled lately."""
    wanted: dict[str, set[str]] = {}
    for host, uuid in rows:
        wanted.setdefault(host, set()).add(uuid)
    fresh = time.time() - 3 * max(interval(), 1.0)
    out: dict[tuple[str, str], Load] = {}
    for host, uuids in wanted.items():
        for uuid, (at, values) in reader().latest_of(host, uuids).items():
            if at >= fresh:
                cpu, used, total = values[0], values[1], values[2]
                out[(host, uuid)] = Load(cpu, _int(used), _int(total))
    return out


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)
