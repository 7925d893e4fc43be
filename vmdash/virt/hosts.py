"""Hypervisor hosts: what they are and how busy they are."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import libvirt

from vmdash.virt import xml
from vmdash.virt.connection import pool
from vmdash.virt.domains import state_counts
from vmdash.virt.enums import DomainState
from vmdash.virt.errors import HostUnavailable, VirtError
from vmdash.virt.refs import HostRef

T = TypeVar("T")


@dataclass(frozen=True)
class HostInfo:
    hostname: str
    hypervisor: str
    hypervisor_version: str
    libvirt_version: str
    arch: str
    cpu_model: str
    cpus: int
    mhz: int
    sockets: int
    cores: int
    threads: int
    memory_bytes: int
    free_memory_bytes: int
    counts: dict[DomainState, int]
    # What `virsh nodememstats` says (memory_from="nodememstats"), else
    # nodeinfo and NodeGetFreeMemory (memory_from="nodeinfo": no buffers/cache).
    buffers_bytes: int = 0
    cached_bytes: int = 0
    memory_from: str = "nodememstats"

    @property
    def available_bytes(self) -> int:
        """free + buffers + cached: what the kernel can hand out without swapping."""
        return self.free_memory_bytes + self.buffers_bytes + self.cached_bytes

    @property
    def vm_total(self) -> int:
        return sum(self.counts.values())

    @property
    def running(self) -> int:
        return sum(n for s, n in self.counts.items() if s.is_active)

    @property
    def used_memory_percent(self) -> int:
        if not self.memory_bytes:
            return 0
        return round(100 * (self.memory_bytes - self.free_memory_bytes) / self.memory_bytes)


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def host_info(host: HostRef) -> HostInfo:
    """virConnectGetInfo, GetVersion, GetLibVersion, GetCapabilities,
    NodeGetMemoryStats (else NodeGetFreeMemory) and the VM counts; raises HostUnavailable."""

    def read(conn: libvirt.virConnect) -> HostInfo:
        arch, _mem_mib, cpus, mhz, _nodes, sockets, cores, threads = conn.getInfo()
        caps = xml.parse(conn.getCapabilities())
        return HostInfo(
            hostname=str(conn.getHostname()),
            hypervisor=str(conn.getType()),
            hypervisor_version=_version(int(conn.getVersion())),
            libvirt_version=_version(int(conn.getLibVersion())),
            arch=str(arch),
            cpu_model=xml.text(caps, "host/cpu/model"),
            cpus=int(cpus),
            mhz=int(mhz),
            sockets=int(sockets),
            cores=int(cores),
            threads=int(threads),
            counts={},
            **_memory(conn),
        )

    info = pool().call(host.uri, read, f"Cannot read host '{host.label}'")
    return HostInfo(**{**info.__dict__, "counts": state_counts(host)})


def _memory(conn: libvirt.virConnect) -> dict[str, Any]:
    """The host's memory as the kernel counts it (virNodeGetMemoryStats, all cells).

    nodeinfo's figure is not the machine's memory on every host (it showed
    5.6-6.7 GiB on a 24 GiB machine), so it is only the fallback, for drivers
    without memory stats (the test driver).
    """
    try:
        stats = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
    except libvirt.libvirtError:
        stats = {}
    if "total" in stats and "free" in stats:
        return {
            "memory_bytes": int(stats["total"]) * 1024,
            "free_memory_bytes": int(stats["free"]) * 1024,
            "buffers_bytes": int(stats.get("buffers", 0)) * 1024,
            "cached_bytes": int(stats.get("cached", 0)) * 1024,
            "memory_from": "nodememstats",
        }
    try:
        free = int(conn.getFreeMemory())
    except libvirt.libvirtError:
        free = 0
    return {
        "memory_bytes": int(conn.getInfo()[1]) * 1024 * 1024,
        "free_memory_bytes": free,
        "memory_from": "nodeinfo",
    }


@dataclass(frozen=True)
class PerHost(Generic[T]):
    """The outcome of asking one host: a value or the error to show."""

    host: HostRef
    value: T | None
    error: VirtError | None


_executor: ThreadPoolExecutor | None = None


def _pool_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="vmdash-host")
    return _executor


def each_host(
    hosts: Iterable[HostRef], fn: Callable[[HostRef], T], timeout: float
) -> list[PerHost[T]]:
    """Ask every host at once; a host slower than `timeout` seconds or down
    becomes an error entry and never delays the others beyond the timeout."""
    futures = [(h, _pool_executor().submit(_one, h, fn)) for h in hosts]
    out: list[PerHost[T]] = []
    for host, fut in futures:
        try:
            out.append(fut.result(timeout=timeout))
        except FutureTimeout:
            msg = f"Host '{host.label}' did not answer within {timeout:g} s."
            out.append(PerHost(host, None, HostUnavailable(msg)))
    return out


def _one(host: HostRef, fn: Callable[[HostRef], T]) -> PerHost[T]:
    try:
        return PerHost(host, fn(host), None)
    except VirtError as err:
        return PerHost(host, None, err)
