"""The VM list with 20 parallel clients, without and with a silent host.

A silent host accepts TCP and never answers (issue 7 §7). It may cost the
list one timeout while the first open is pending; after that the page must
not wait on it. Prints p50/p95 of /domains/ for both runs and their ratio
(the aim: within 3x of the run without the silent host).

    .venv/bin/python bench/silent_host.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIENTS = 20


def silent_listener() -> tuple[socket.socket, list[socket.socket]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, held


def run(rounds: int, silent_uri: str | None) -> list[float]:
    from django.contrib.auth.models import User
    from django.test import Client

    from vmdash.models import Host
    from vmdash.virt.connection import reset_pool

    reset_pool()
    Host.objects.all().delete()
    Host.objects.create(slug="lab", uri=f"test://{REPO / 'tests' / 'data' / 'testnode.xml'}")
    if silent_uri:
        Host.objects.create(slug="silent", uri=silent_uri)
    user = User.objects.filter(username="bench").first() or User.objects.create_user(
        "bench", password="x", is_superuser=True
    )
    clients = []
    for _ in range(CLIENTS):
        c = Client(HTTP_HOST="127.0.0.1")
        c.force_login(user)
        clients.append(c)
    clients[0].get("/domains/")  # the first open of each host, silent one included

    def one(c: Client) -> float:
        started = time.perf_counter()
        page = c.get("/domains/").content.decode()
        took = time.perf_counter() - started
        assert 'data-name="web1"' in page, "the healthy host's VMs are missing"
        return took

    times: list[float] = []
    with ThreadPoolExecutor(CLIENTS) as ex:
        for _ in range(rounds):
            times += list(ex.map(one, clients))
    return times


def pct(times: list[float], q: int) -> float:
    return statistics.quantiles(times, n=100)[q - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    os.environ["VMDASH_DATA_DIR"] = tempfile.mkdtemp(prefix="vmdash-bench-silent-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vmdash.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    server, _held = silent_listener()
    silent = f"qemu+tcp://127.0.0.1:{server.getsockname()[1]}/system"
    base = run(args.rounds, None)
    with_silent = run(args.rounds, silent)
    threads = threading.active_count()
    print(f"/domains/, {CLIENTS} parallel clients, {len(base)} requests per run")
    for label, t in (("without silent host", base), ("with silent host", with_silent)):
        print(f"  {label:20s} p50 {pct(t, 50):7.1f} ms   p95 {pct(t, 95):7.1f} ms")
    print(
        f"  ratio (with/without)  p50 {pct(with_silent, 50) / pct(base, 50):.2f}x   "
        f"p95 {pct(with_silent, 95) / pct(base, 95):.2f}x"
    )
    print(f"  threads in this process at the end: {threads}")


if __name__ == "__main__":
    main()
