#!/usr/bin/env python3
"""The stats sampler's cost per tick at 1000 VMs, against the bare bulk call, in one run.

For each backend (bench/domain_list.py makes the same 1000 VMs), it times:
  bare     virConnectGetAllDomainStats(state, cpu-total, balloon, vcpu,
           interface, block): the one call a tick needs, raw API, nothing else
  tick     what the sampler does per host per tick: that call plus the node's
           CPU and memory stats, turned into rates and put in the history
  metrics  GET /metrics (Prometheus text for all 1000 VMs) from the history
  redis    (test driver) copying one tick to Redis, and /metrics' text read
           back from Redis, as a deployment's web workers do
and prints tick/bare (target <= 1.5x) and the scrape time.
Usage: bench/stats.py [--backend test|qemu|both] [--runs N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.domain_list import (  # noqa: E402
    N,
    define_on_libvirtd,
    remove_from_libvirtd,
    setup_django,
    test_node,
    timed,
)

TOKEN = "bench-metrics-token"


def measure(label: str, uri: str, runs: int) -> None:
    import libvirt
    from django.conf import settings
    from django.test import Client

    from stats.history import history
    from vmdash.virt.connection import pool, reset_pool
    from vmdash.virt.refs import HostRef
    from vmdash.virt.stats import bare_read, read_counters

    reset_pool()
    host = HostRef("bench", uri)
    # The test driver keeps a private world per connection: time the one vmdash reads.
    conn = pool().get(uri) if uri.startswith("test:") else libvirt.open(uri)
    count = bare_read(conn)
    history().clear()

    def bare() -> object:
        return bare_read(conn)

    def tick() -> object:
        counters = read_counters(host)
        history().add(counters)
        return counters

    settings.VMDASH_METRICS_TOKEN = TOKEN
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    def scrape() -> object:
        response = client.get("/metrics")
        assert response.status_code == 200 and b"vmdash_vm_memory_bytes" in response.content
        return response

    bare_med, bare_p95 = timed(bare, runs)
    tick_med, tick_p95 = timed(tick, runs)
    scrape_med, scrape_p95 = timed(scrape, max(3, runs // 2))
    lines = scrape().content.count(b"\n")
    print(f"\n{label}: {uri}  ({count} VMs, {runs} runs)")
    print(f"  bare GetAllDomainStats       median {bare_med:7.1f} ms  p95 {bare_p95:7.1f} ms")
    print(f"  sampler tick (read + rates)  median {tick_med:7.1f} ms  p95 {tick_p95:7.1f} ms")
    print(f"  GET /metrics ({lines} lines)   median {scrape_med:7.1f} ms  p95 {scrape_p95:7.1f} ms")
    print(f"  ratio: tick/bare {tick_med / bare_med:.2f}x (target <= 1.5x)")


def measure_redis(label: str, uri: str, runs: int) -> None:
    """With REDIS_URL the sampler also copies each tick to Redis, and web
    workers build /metrics from there: both timed against a real redis-server."""
    from stats.history import History
    from stats.shared import SharedHistory
    from stats.views import _lines
    from tests.events.conftest import redis_server
    from vmdash.virt.refs import HostRef
    from vmdash.virt.stats import read_counters

    host, local = HostRef("bench", uri), History()
    with (
        tempfile.TemporaryDirectory(prefix="vmdash-bench-redis-") as tmp,
        redis_server(Path(tmp)) as url,
    ):
        store = SharedHistory(url, 2)
        puts = local.add(read_counters(host))

        def copy() -> object:
            store.write("bench", puts)
            return puts

        copy_med, copy_p95 = timed(copy, runs)
        lines_med, lines_p95 = timed(lambda: _lines(store.latest()), max(3, runs // 2))
    print(f"\n{label}, Redis: {len(puts)} points a tick")
    print(f"  copy of a tick to Redis      median {copy_med:7.1f} ms  p95 {copy_p95:7.1f} ms")
    print(f"  /metrics text from Redis     median {lines_med:7.1f} ms  p95 {lines_p95:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["test", "qemu", "both"], default="both")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmdash-bench-stats-") as tmp:
        data = Path(tmp)
        setup_django(data)
        if args.backend in ("test", "both"):
            measure("test driver", test_node(data / "node.xml"), args.runs)
            measure_redis("test driver", test_node(data / "node.xml"), args.runs)
        if args.backend in ("qemu", "both"):
            try:
                measure(f"real libvirtd, {N} inactive VMs", define_on_libvirtd(), args.runs)
            finally:
                remove_from_libvirtd()


if __name__ == "__main__":
    main()
