#!/usr/bin/env python3
"""Graphs pushed or polled: the web process's CPU with --clients open VM pages, in one run.

vmdash runs as `make run` does (one Daphne process, in-memory layer, the
sampler every --interval seconds) on libvirt's test driver with 1000 VMs
(bench/domain_list.py's world). It measures, over --seconds each:

  idle     no page open: what sampling itself costs the process
  push     --clients WebSockets, each subscribed as an open VM page is (its
           VM's charts and the host's), getting each tick's point pushed
           (vmdash/live/ticks.py); the delay from the sampler's timestamp to
           the client's receipt, median and p95
  poll     the same number of pages asking GET .../stats/?range=10m once per
           interval instead, as charts.js did before pushes
  bare     the raw libvirt layer in this process: the bulk
           virConnectGetAllDomainStats call one tick needs

and prints the CPU per page update (a pushed frame, a polled series) in milliseconds, their
ratio, and one tick's push to every client against one bare call.
Usage: bench/ticks.py [--clients 200] [--seconds 20] [--interval 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vmdash.settings")  # the test helpers import vmdash

import libvirt  # noqa: E402

from bench.domain_list import test_node, timed  # noqa: E402
from tests.browser.conftest import ADMIN  # noqa: E402
from tests.events.conftest import VmdashProcess, new_deployment  # noqa: E402
from tests.events.wsclient import WsClient, login_cookies  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system time of the process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def pid_of(web: VmdashProcess) -> int:
    assert web.proc is not None
    return web.proc.pid


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def push(
    web: VmdashProcess, vms: list[tuple[str, str]], clients: int, seconds: float
) -> tuple[float, int, list[float]]:
    """(CPU seconds, points delivered, delay of each frame in ms) with `clients` chart pages."""
    cookies = login_cookies(web.url, *ADMIN)
    conns = []
    for i in range(clients):
        uuid = vms[i % len(vms)][1]
        conn = await WsClient.connect(web.url, cookies)
        regions = [
            {"region": "domain-chart", "host": "lab", "uuid": uuid},
            {"region": "host-chart", "host": "lab"},
        ]
        await conn.subscribe(regions)
        conns.append(conn)
    await asyncio.sleep(3.0)  # every subscription processed
    for conn in conns:
        conn.frames.clear()
    stop = time.monotonic() + seconds

    async def listen(conn: WsClient) -> None:
        while time.monotonic() < stop:
            try:
                await conn.receive(max(0.05, stop - time.monotonic()))
            except TimeoutError:
                return

    started = time.time()
    before = cpu_seconds(pid_of(web))
    await asyncio.gather(*(listen(c) for c in conns))
    used = cpu_seconds(pid_of(web)) - before
    points, delays = 0, []
    for conn in conns:
        for frame in conn.frames:
            if frame.text.startswith('{"vmdash-tick"'):
                tick = json.loads(frame.text)
                if tick["at"] < started:
                    continue  # sent before the measurement, read from the socket's buffer
                points += len(tick["points"])
                delays.append((frame.at - tick["at"]) * 1000)  # one per frame
        await conn.close()
    return used, points, delays


def poll(
    web: VmdashProcess, vms: list[tuple[str, str]], clients: int, seconds: float, every: float
) -> tuple[float, int]:
    """(CPU seconds, series served) with `clients` pages polling each interval."""
    cookie = "; ".join(f"{k}={v}" for k, v in login_cookies(web.url, *ADMIN).items())

    def page(i: int) -> int:
        name = vms[i % len(vms)][0]
        url = f"{web.url}/hosts/lab/domains/{name}/stats/?range=10m"
        request = urllib.request.Request(url, headers={"Cookie": cookie})
        served, start = 0, time.monotonic()
        next_at = start + (i / clients) * every  # spread as real pages are
        while time.monotonic() < start + seconds:
            time.sleep(max(0.0, next_at - time.monotonic()))
            with urllib.request.urlopen(request, timeout=30) as r:
                r.read()
            served += 1
            next_at += every
        return served

    before = cpu_seconds(pid_of(web))
    with ThreadPoolExecutor(max_workers=clients) as pool:
        served = sum(pool.map(page, range(clients)))
    return cpu_seconds(pid_of(web)) - before, served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=int, default=1)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="vmdash-bench-ticks-"))
    uri = test_node(data / "node.xml")
    conn = libvirt.open(uri)
    doms = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
    vms = [(d.name(), d.UUIDString()) for d in doms]
    flags = (
        libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
        | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU
        | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK
    )  # fmt: skip
    bare_ms, _ = timed(lambda: conn.getAllDomainStats(flags), 20)
    deployment = new_deployment(
        data,
        VMDASH_HOSTS=f"lab={uri}",
        VMDASH_TEST_DRIVER_DIR=str(data),
        VMDASH_STATS_INTERVAL=str(args.interval),
        VMDASH_LOG_LEVEL="WARNING",
    )
    web = deployment.web()
    try:
        # The first WebSocket starts the embedded service and its sampler.
        asyncio.run(push(web, vms, 1, 3 * args.interval))
        time.sleep(2.0)
        t0 = cpu_seconds(pid_of(web))
        time.sleep(args.seconds)
        idle = cpu_seconds(pid_of(web)) - t0
        pushed_cpu, points, delays = asyncio.run(push(web, vms, args.clients, args.seconds))
        polled_cpu, served = poll(web, vms, args.clients, args.seconds, args.interval)
    finally:
        web.stop()
    ticks = args.seconds / args.interval
    frames = len(delays)  # one frame per page and tick: its VM's point and the host's
    push_ms = (pushed_cpu - idle) * 1000 / max(frames, 1)
    poll_ms = (polled_cpu - idle) * 1000 / max(served, 1)
    print(
        f"graphs pushed or polled: {os.cpu_count()} CPUs, {len(doms)} running of 1000 VMs "
        f"(test driver), {args.clients} open VM pages, a tick every {args.interval:g} s, "
        f"{args.seconds:g} s each"
    )
    print(f"  bare getAllDomainStats        {bare_ms:7.2f} ms per call (raw libvirt layer)")
    print(f"  idle (sampling only)          {idle / args.seconds * 100:6.1f} % of a core")
    print(
        f"  push  {frames:6d} frames           {pushed_cpu / args.seconds * 100:6.1f} % of a core, "
        f"{push_ms:6.3f} ms CPU per frame over idle; delay median "
        f"{pct(delays, 0.5):.1f} ms, p95 {pct(delays, 0.95):.1f} ms"
    )
    print(
        f"  poll  {served:6d} series served    {polled_cpu / args.seconds * 100:6.1f} % of a core, "
        f"{poll_ms:6.3f} ms CPU per series over idle"
    )
    expected = int(ticks * args.clients)
    print(
        f"  points per page and tick      {points / max(expected, 1):.2f} (2 expected: VM and host)"
    )
    ratio = poll_ms / push_ms if push_ms > 0 else float("nan")
    print(f"  poll / push CPU per update    {ratio:.1f}x")
    per_tick = (pushed_cpu - idle) * 1000 / ticks
    print(f"  one tick to all pages / bare  {per_tick / bare_ms:.1f}x ({per_tick:.1f} ms CPU)")


if __name__ == "__main__":
    main()
