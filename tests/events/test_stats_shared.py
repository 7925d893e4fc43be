"""The sampler's history in a real redis-server: what one process writes,
another reads, as web workers read what the events process sampled."""

from __future__ import annotations

import time

from stats.history import FINE_SECONDS, History, Put
from stats.shared import SharedHistory
from vmdash.virt.stats import Counters, VmCounters

VM = "6a7b0d1c-0000-4000-8000-000000000001"


def counters(at: float, cpu_ns: int, *, running: bool = True) -> Counters:
    vm = VmCounters(
        uuid=VM, name="web1", running=running, vcpus=1, cpu_ns=cpu_ns,
        memory_kib=1024 * 1024, unused_kib=512 * 1024, rss_kib=None,
        read_bytes=0, write_bytes=0, read_reqs=0, write_reqs=0, rx_bytes=0, tx_bytes=0,
    )  # fmt: skip
    return Counters(host="lab", at=at, clock=at, vms=(vm,), node=None)


def test_what_the_sampler_writes_every_worker_reads(redis_url: str) -> None:
    sampler_side, worker_side = SharedHistory(redis_url, 2), SharedHistory(redis_url, 2)
    local = History()
    now = time.time()
    for i in range(4):  # 50 % of one vCPU between two reads 2 s apart
        puts = local.add(counters(now - 6 + 2 * i, i * 1_000_000_000))
        sampler_side.write("lab", puts)
    points = worker_side.window("lab", VM, 600)
    cpu = [None if p[1][0] is None else round(p[1][0]) for p in points]
    assert cpu == [None, 50, 50, 50]  # no rate before the second read
    assert [p[1] for p in points] == [p[1] for p in local.window("lab", VM, 600)]
    ((host, key, name, _at, values),) = worker_side.latest()
    assert (host, key, name, round(values[0] or 0)) == ("lab", VM, "web1", 50)
    assert values[1] == 512 * 1024 * 1024  # memory in use: total - unused

    sampler_side.failed("lab", "the host does not answer")
    assert worker_side.down == {"lab": "the host does not answer"}
    sampler_side.write("lab", [])  # the next good read
    assert worker_side.down == {}


def test_longer_ranges_add_the_one_minute_means(redis_url: str) -> None:
    store = SharedHistory(redis_url, 2)
    now = time.time()
    old = now - 2 * FINE_SECONDS
    values = (10.0, None, 1.0, None, None, None, None, None)
    store.write("lab", [Put(VM, "web1", now - 1, values, rolled=(old, values))])
    assert [p[0] for p in store.window("lab", VM, 600)] == [round(now - 1, 3)]
    assert [p[0] for p in store.window("lab", VM, 3600)] == [round(old, 3), round(now - 1, 3)]
    store.forget("lab", [VM])
    assert store.latest() == []


def test_a_redis_that_went_away_shows_no_history_instead_of_failing() -> None:
    store = SharedHistory("redis://127.0.0.1:1/0", 2)  # nothing listens on port 1
    assert store.window("lab", VM, 600) == []
    assert store.latest() == []
    assert store.down == {}
