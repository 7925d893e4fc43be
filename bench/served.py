#!/usr/bin/env python3
"""Pages as browsers get them: through a real `manage.py vmdash_run` (Daphne).

bench/silent_host.py calls the views in threads of its own process, which
Daphne never does: under Daphne every sync view of a process runs on one
thread. This starts the server as `make run` does, on libvirt's test driver
(host "lab"), logs in over HTTP, and prints p50/p95 of

  - /domains/ for 1 client (one request at a time) and for 20 parallel clients
    (their ratio: how much a person waits when 19 others load pages too), and
    the raw `listAllDomains` + bulk stats call for the same VMs in this
    process, for scale;
  - the same with a second host that accepts TCP and never answers, on
    /domains/ (which lists every host) and on /hosts/lab/domains/... pages
    that do not show the silent host (/hosts/lab/).

    .venv/bin/python bench/served.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.silent_host import silent_listener  # noqa: E402
from tests.events.wsclient import login_cookies  # noqa: E402
from tests.servers import free_port  # noqa: E402

CLIENTS = 20
ADMIN = ("bench", "bench-served-pw-1")
TESTNODE = REPO / "tests" / "data" / "testnode.xml"


def serve(hosts: str) -> tuple[subprocess.Popen[bytes], str]:
    data = tempfile.mkdtemp(prefix="vmdash-bench-served-")
    env = {
        **os.environ,
        "VMDASH_DATA_DIR": data,
        "VMDASH_HOSTS": hosts,
        "VMDASH_ADMIN_USER": ADMIN[0],
        "VMDASH_ADMIN_PASSWORD": ADMIN[1],
        "VMDASH_CONSOLE_PROXY": "0",
        "VMDASH_EVENTS": "off",
        "VMDASH_STATS_INTERVAL": "0",
        "DJANGO_SETTINGS_MODULE": "vmdash.settings",
    }
    for args in (["migrate", "-v", "0"], ["vmdash_setup"]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True,
                       capture_output=True)  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "vmdash_run", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/accounts/login/", timeout=2)
            return proc, url
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("vmdash_run did not start") from None
            time.sleep(0.2)


def getter(url: str, cookies: dict[str, str]):  # type: ignore[no-untyped-def]
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())

    def get(path: str) -> float:
        started = time.perf_counter()
        request = urllib.request.Request(f"{url}{path}", headers={"Cookie": header})
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
        took = time.perf_counter() - started
        assert response.status == 200 and b"<html" in body, path
        return took

    return get


def pct(times: list[float], q: int) -> float:
    return statistics.quantiles(times, n=100)[q - 1] * 1000


def one_and_twenty(get, path: str, rounds: int) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    get(path)  # warm: the host's first open
    alone = [get(path) for _ in range(rounds * 4)]
    together: list[float] = []
    with ThreadPoolExecutor(CLIENTS) as pool:
        for _ in range(rounds):
            together += list(pool.map(get, [path] * CLIENTS))
    return alone, together


def raw_listing(rounds: int) -> list[float]:
    import libvirt

    conn = libvirt.open(f"test://{TESTNODE}")
    times = []
    for _ in range(rounds * 4):
        started = time.perf_counter()
        conn.listAllDomains()
        conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_BALLOON)
        times.append(time.perf_counter() - started)
    conn.close()
    return times


def report(label: str, alone: list[float], together: list[float]) -> None:
    print(f"  {label}")
    print(f"    1 client    p50 {pct(alone, 50):7.1f} ms   p95 {pct(alone, 95):7.1f} ms")
    p50, p95 = pct(together, 50), pct(together, 95)
    ratio = p95 / pct(alone, 95)
    print(f"    {CLIENTS} clients  p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   p95 ratio {ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    raw = raw_listing(args.rounds)
    print(f"raw listAllDomains + getAllDomainStats (test driver): p50 {pct(raw, 50):.2f} ms")
    lab = f"lab=test://{TESTNODE}"
    silent, _held = silent_listener()  # the connections it holds, kept open
    silent_uri = f"qemu+tcp://127.0.0.1:{silent.getsockname()[1]}/system"
    for label, hosts in (("one host", lab), ("with a silent host", f"{lab},silent={silent_uri}")):
        proc, url = serve(hosts)
        try:
            get = getter(url, login_cookies(url, *ADMIN))
            print(f"{label}: a real Daphne (vmdash_run), one process")
            report("/domains/ (every host)", *one_and_twenty(get, "/domains/", args.rounds))
            report(
                "/hosts/lab/ (not the silent one)", *one_and_twenty(get, "/hosts/lab/", args.rounds)
            )
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
