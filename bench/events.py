#!/usr/bin/env python3
"""Live events: latency to the DOM in Chromium, fan-out to 200 WebSockets, memory per client.

It boots the tiny test guest (vmdash-b-events, TCG), starts vmdash as
`make run` does on free loopback ports (embedded: one Daphne process; Redis:
Debian's redis-server, `manage.py vmdash_events` and one or two web
processes) and measures in one run:

  (a) latency  the VM list open in Chromium; the guest is paused and resumed
               with the libvirt API directly, --events times. Milliseconds
               from the API call returning (in this process) to the row's
               data-state changing in the page (a MutationObserver stamps
               Date.now()). The floor beside it: the same event's libvirt
               callback on a raw event connection in this process.
               Target: median < 50 ms, p95 < 150 ms.
  (b) fan-out  --clients WebSockets subscribed to the guest's row; per event
               (--fanout-events), the time from the API call returning until
               the last client got its push ("all got it"); median and p95,
               plus the p95 over single deliveries. In-memory layer (one
               process), Redis with one web process, Redis with two web
               processes sharing the clients. Target: p95 < 500 ms.
  (c) memory   the web process's resident memory growth from connecting and
               subscribing the clients, per client (KiB).

Loopback only. Usage:
  bench/events.py [--events 60] [--clients 200] [--fanout-events 20] [--skip-browser]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vmdash.settings")  # the test helpers import vmdash

import libvirt  # noqa: E402

from tests.browser.conftest import ADMIN, CHROMIUM, CHROMIUM_ARGS, login  # noqa: E402
from tests.events.conftest import (  # noqa: E402
    Deployment,
    VmdashProcess,
    new_deployment,
    redis_server,
)
from tests.events.wsclient import WsClient, login_cookies  # noqa: E402
from tests.guest import ensure_guest, guest_domain_xml, kvm_usable  # noqa: E402

GUEST = "vmdash-b-events"
URI = "qemu:///system"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def summary(samples: list[float]) -> str:
    return f"median {statistics.median(samples):6.1f} ms  p95 {pct(samples, 0.95):6.1f} ms"


class Guest:
    """The test guest, running, plus a raw event connection that stamps callbacks."""

    def __init__(self) -> None:
        libvirt.registerErrorHandler(lambda _c, _e: None, None)
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=self._loop, daemon=True).start()
        self.callbacks: list[tuple[int, float]] = []  # (event, time.time())
        self.conn = libvirt.open(URI)
        self.remove()
        files = ensure_guest()
        xml = guest_domain_xml(
            GUEST,
            kernel=files / "vmlinuz",
            initrd=files / "initrd.img",
            domain_type="kvm" if kvm_usable() else "qemu",
        )
        self.dom = self.conn.defineXML(xml)
        self.dom.create()
        self.uuid = self.dom.UUIDString()
        self._watch()

    def _watch(self) -> None:
        self.conn.domainEventRegisterAny(
            self.dom, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_event, None
        )

    def reconnect(self) -> None:
        """After libvirtd restarted under us (another test run on this host)."""
        self.conn = libvirt.open(URI)
        self.dom = self.conn.lookupByUUIDString(self.uuid)
        self._watch()

    @staticmethod
    def _loop() -> None:
        while True:
            libvirt.virEventRunDefaultImpl()

    def _on_event(self, _c: object, _d: object, event: int, _detail: int, _o: object) -> None:
        self.callbacks.append((event, time.time()))

    def toggle(self) -> tuple[str, float]:
        """Pause or resume; the state it moves to and when the call returned."""
        try:
            paused = self.dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED
        except libvirt.libvirtError:
            self.reconnect()
            paused = self.dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED
        if paused:
            self.dom.resume()
            return "running", time.time()
        self.dom.suspend()
        return "paused", time.time()

    def callback_after(self, state: str, since: float, timeout: float = 5) -> float:
        wanted = (
            libvirt.VIR_DOMAIN_EVENT_RESUMED
            if state == "running"
            else libvirt.VIR_DOMAIN_EVENT_SUSPENDED
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event, at in reversed(self.callbacks):
                if event == wanted and at >= since - 0.5:
                    return at
            time.sleep(0.001)
        raise TimeoutError("no libvirt callback")

    def remove(self) -> None:
        try:
            if not self.conn.isAlive():
                self.conn = libvirt.open(URI)
            dom = self.conn.lookupByName(GUEST)
        except libvirt.libvirtError:
            return
        if dom.isActive():
            dom.destroy()
        dom.undefine()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# (a) latency in Chromium


OBSERVER = """(uuid) => {
  window.changes = [];
  let last = document.getElementById('dom-' + uuid).dataset.state;
  new MutationObserver(() => {
    const row = document.getElementById('dom-' + uuid);
    if (row && row.dataset.state !== last) {
      last = row.dataset.state;
      window.changes.push({state: last, at: Date.now()});
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true});
}"""


def latency(web: VmdashProcess, guest: Guest, events: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    dom_ms: list[float] = []
    raw_ms: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # Playwright evaluates its polling predicates as strings, which the pages'
        # Content-Security-Policy (script-src 'self') forbids; the pages' own
        # scripts run as in production.
        page = browser.new_page(bypass_csp=True)
        page.set_default_timeout(15_000)
        login(page, web.url)
        page.goto(f"{web.url}/domains/")
        page.wait_for_selector('#live[data-state="connected"]')
        page.wait_for_selector(f"#dom-{guest.uuid}")
        page.evaluate(OBSERVER, guest.uuid)
        for i in range(events + 3):
            state, returned = guest.toggle()
            page.wait_for_function(f"window.changes.length > {i}")
            change = page.evaluate(f"window.changes[{i}]")
            assert change["state"] == state, change
            if i >= 3:  # the first few warm up
                dom_ms.append(change["at"] - returned * 1000)
                raw_ms.append((guest.callback_after(state, returned) - returned) * 1000)
            time.sleep(0.05)
        browser.close()
    return dom_ms, raw_ms


# (b) fan-out and (c) memory


async def fan_out(
    webs: list[VmdashProcess], guest: Guest, clients: int, events: int
) -> tuple[list[float], list[float], list[float]]:
    """(all-got-it per event, every single delivery, KiB per client per web process)."""
    cookies = {web.url: login_cookies(web.url, *ADMIN) for web in webs}
    region = [{"region": "domain-row", "host": "local", "uuid": guest.uuid}]
    # One client per process first: it starts the process's service and recorder.
    for web in webs:
        warm = await WsClient.connect(web.url, cookies[web.url])
        await warm.subscribe(region, resync=True)
        await warm.receive_until(lambda t: "resync" in t)
        await warm.close()
    await asyncio.sleep(1.0)
    before = {web.url: rss_kib(_pid(web)) for web in webs}
    conns: list[WsClient] = []
    for i in range(clients):
        web = webs[i % len(webs)]
        conn = await WsClient.connect(web.url, cookies[web.url])
        await conn.subscribe(region)
        conns.append(conn)
    await asyncio.sleep(2.0)  # every subscription processed
    per_client = [(rss_kib(_pid(web)) - before[web.url]) / (clients / len(webs)) for web in webs]
    all_got: list[float] = []
    single: list[float] = []
    for _ in range(events + 2):
        state, returned = await asyncio.to_thread(guest.toggle)
        frames = await asyncio.gather(
            *(c.receive_until(lambda t, s=state: f'data-state="{s}"' in t) for c in conns)
        )
        arrivals = [(f.at - returned) * 1000 for f in frames]
        if _ > 1:
            all_got.append(max(arrivals))
            single += arrivals
        await asyncio.sleep(0.2)
    for conn in conns:
        await conn.close()
    return all_got, single, per_client


def _pid(web: VmdashProcess) -> int:
    assert web.proc is not None
    return web.proc.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--fanout-events", type=int, default=20)
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    guest = Guest()
    print(
        f"live events benchmark: {os.cpu_count()} CPUs, libvirt "
        f"{guest.conn.getLibVersion() // 1_000_000}.{guest.conn.getLibVersion() // 1000 % 1000}, "
        f"guest under {'KVM' if kvm_usable() else 'TCG'}"
    )
    deployments: list[Deployment] = []

    def setup(**env: str) -> Deployment:
        d = new_deployment(Path(tempfile.mkdtemp(prefix="vmdash-bench-")), **env)
        deployments.append(d)
        return d

    try:
        embedded = setup(VMDASH_LOG_LEVEL="WARNING")
        web = embedded.web()
        if not args.skip_browser:
            dom_ms, raw_ms = latency(web, guest, args.events)
            print(
                "\n(a) latency, API call returned -> DOM changed in Chromium "
                f"({len(dom_ms)} events)"
            )
            print(f"  libvirt callback (raw floor)   {summary(raw_ms)}")
            print(f"  embedded: row in the DOM       {summary(dom_ms)}   (target < 50 / < 150)")
        layouts = [("in-memory (1 process)", [web])]
        with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_url:
            redis = setup(REDIS_URL=redis_url, VMDASH_LOG_LEVEL="WARNING")
            redis.events()
            webs = [redis.web("--no-events")]
            time.sleep(2.0)
            if not args.skip_browser:
                dom_ms, _raw = latency(webs[0], guest, args.events)
                print(f"  Redis: row in the DOM          {summary(dom_ms)}")
            fresh = [redis.web("--no-events"), redis.web("--no-events")]  # their memory untouched
            layouts += [("Redis, 1 web process", webs[:1]), ("Redis, 2 web processes", fresh)]
            print(
                f"\n(b) fan-out: {args.clients} WebSocket clients, one event -> every client got "
                f"its push ({args.fanout_events} events)"
            )
            memory: list[str] = []
            for label, processes in layouts:
                all_got, single, per_client = asyncio.run(
                    fan_out(processes, guest, args.clients, args.fanout_events)
                )
                print(
                    f"  {label:24s} all got it: {summary(all_got)}   "
                    f"single delivery p95 {pct(single, 0.95):6.1f} ms   (target p95 < 500)"
                )
                memory.append(
                    f"  {label:24s} "
                    + ", ".join(f"{kib:5.0f} KiB" for kib in per_client)
                    + " per client (RSS growth / clients, per web process)"
                )
            print("\n(c) memory per connected, subscribed client")
            print("\n".join(memory))
    finally:
        for d in deployments:
            for process in d.processes:
                process.stop()
        guest.remove()


if __name__ == "__main__":
    main()
