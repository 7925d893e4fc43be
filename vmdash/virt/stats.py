"""Counters of every VM of a host and of the host itself, in one bulk read.

`read_counters(host)` is one virConnectGetAllDomainStats (state, cpu-total,
balloon, vcpu, interface, block) plus virNodeGetCPUStats and
virNodeGetMemoryStats, whatever the number of VMs. The values are libvirt's
raw counters (nanoseconds, bytes, requests since the VM started); turning
them into rates is the sampler's business (stats/).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import libvirt

from vmdash.virt.connection import pool
from vmdash.virt.refs import HostRef

_STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_INTERFACE
    | libvirt.VIR_DOMAIN_STATS_BLOCK
)


class VmCounters(NamedTuple):
    """One VM's counters (a tuple: a tick makes a thousand of them)."""

    uuid: str
    name: str
    running: bool
    vcpus: int
    cpu_ns: int  # cpu.time: guest + emulator threads since start
    memory_kib: int  # balloon.current: what the guest has now
    unused_kib: int | None  # balloon.unused: free inside the guest (needs its balloon driver)
    rss_kib: int | None  # balloon.rss: what the QEMU process holds on the host
    read_bytes: int
    write_bytes: int
    read_reqs: int
    write_reqs: int
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class HostCounters:
    cpus: int
    busy_ns: int  # kernel + user over all CPUs
    total_ns: int  # busy + idle + iowait
    memory_total_kib: int
    memory_free_kib: int  # free + buffers + cached: what a new VM could have


@dataclass(frozen=True)
class Counters:
    host: str
    at: float  # time.time() of the read
    clock: float  # time.monotonic() of the read, for rates
    node: HostCounters | None  # None: the driver does not say (the test driver)
    vms: tuple[VmCounters, ...]  # the running ones


def _devices(st: dict[str, Any], group: str, fields: tuple[str, ...]) -> list[int]:
    """Each field summed over the group's devices (block.0.rd.bytes + block.1.rd.bytes ...)."""
    sums = [0] * len(fields)
    for i in range(int(st.get(f"{group}.count", 0))):
        prefix = f"{group}.{i}."
        for j, name in enumerate(fields):
            sums[j] += int(st.get(prefix + name, 0))
    return sums


_BLOCK = ("rd.bytes", "wr.bytes", "rd.reqs", "wr.reqs")
_NET = ("rx.bytes", "tx.bytes")
_RUNNING = (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED)


def _vm(dom: libvirt.virDomain, st: dict[str, Any]) -> VmCounters:
    get = st.get
    unused, rss = get("balloon.unused"), get("balloon.rss")
    rd, wr, rr, wq = _devices(st, "block", _BLOCK) if "block.count" in st else (0, 0, 0, 0)
    rx, tx = _devices(st, "net", _NET) if "net.count" in st else (0, 0)
    return VmCounters(
        dom.UUIDString(),
        dom.name(),
        get("state.state", 0) in _RUNNING,
        int(get("vcpu.current", 0)),
        int(get("cpu.time", 0)),
        int(get("balloon.current", 0)),
        None if unused is None else int(unused),
        None if rss is None else int(rss),
        rd, wr, rr, wq, rx, tx,
    )  # fmt: skip


_UNSUPPORTED = (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED)


def _node_memory(conn: libvirt.virConnect, info: list[Any]) -> tuple[int, int]:
    """(total, available) KiB; drivers without memory stats give the total only."""
    try:
        mem = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)
    except libvirt.libvirtError as err:
        if err.get_error_code() not in _UNSUPPORTED:
            raise
        return int(info[1]) * 1024, 0
    free = sum(int(mem.get(k, 0)) for k in ("free", "buffers", "cached"))
    return int(mem.get("total", 0)), free


def _node(conn: libvirt.virConnect) -> HostCounters | None:
    try:
        cpu = conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS, 0)
    except libvirt.libvirtError as err:
        if err.get_error_code() in _UNSUPPORTED:
            return None
        raise
    info = conn.getInfo()
    busy = int(cpu.get("kernel", 0)) + int(cpu.get("user", 0))
    total = busy + int(cpu.get("idle", 0)) + int(cpu.get("iowait", 0))
    mem_total, mem_free = _node_memory(conn, info)
    return HostCounters(int(info[2]), busy, total, mem_total, mem_free)


def read_counters(host: HostRef) -> Counters:
    """One bulk read of a host; raises HostUnavailable (a slow host: after the pool's timeout)."""

    def read(conn: libvirt.virConnect) -> Counters:
        stats = conn.getAllDomainStats(_STATS, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT)
        node = _node(conn)
        # Only running VMs have counters that move; the others cost nothing
        # per tick (the history marks a VM that stopped since the last read).
        vms = tuple(_vm(dom, st) for dom, st in stats if st.get("state.state", 0) in _RUNNING)
        return Counters(host.slug, time.time(), time.monotonic(), node, vms)

    return pool().call(host.uri, read, f"Cannot read the counters of host '{host.label}'")


def bare_read(conn: libvirt.virConnect) -> int:
    """The bulk call alone, for bench/stats.py's ratio: how many VMs answered."""
    return len(conn.getAllDomainStats(_STATS, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT))
