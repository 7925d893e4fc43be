#!/usr/bin/env python3
"""Consoles: page open to first frame, and our proxy against plain websockify and direct VNC.

It boots the tiny test guest (vmdash-t-con-bench, VNC on 127.0.0.1),
starts vmdash as `make run` does (Daphne plus the console proxy,
`manage.py vmdash_console_proxy`) on free loopback ports, and a plain
websockify with a static token file (`--token-plugin TokenFile`), then
measures in one run:

  first frame  Chromium opens the console page; milliseconds from the start
               of navigation until the noVNC canvas first shows a non-black
               pixel (the page records it in data-first-frame-ms); --pages
               loads after a cold first one: median, p90, min
  banner       connect until the VNC server's "RFB 003.008" arrives, --runs
               times, interleaved: direct TCP to the guest's VNC port; plain
               websockify (token file); vmdash's proxy (a fresh ticket per
               connection, issued over HTTP beforehand and not timed: what is
               timed is the check: signature, single-use UPDATE, session,
               policy, the libvirt same-run lookup)
  throughput   MB/s through each path (median of --rounds samples of
               --seconds, interleaved) from a stand-in server
               that sends the RFB banner and then streams without pause (QEMU
               sends at most ~12 full screens a second here, which would
               measure QEMU, not the relay); our path uses a real ticket whose
               target port is pointed at the stand-in

and prints vmdash/websockify and vmdash/direct as ratios. Targets: the
ticket check costs at most 20% over plain websockify (banner ratio <= 1.20);
first frame under 500 ms. Loopback only. Usage:
  bench/console.py [--runs 50] [--pages 15] [--seconds 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.browser.conftest import ADMIN, CHROMIUM, CHROMIUM_ARGS, free_port, login  # noqa: E402
from tests.console.conftest import (  # noqa: E402
    ConsoleGuest,
    ConsoleServer,
    Web,
    define_guest,
    start_server,
    stop_server,
    undefine_guest,
)
from tests.console.wsclient import WebSocket  # noqa: E402
from tests.guest import ensure_guest, kvm_usable  # noqa: E402

RFB_VERSION = b"RFB 003.008\n"

STREAM_SERVER = r"""
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(16)
chunk = bytes(range(256)) * 1024
def serve(conn):
    try:
        conn.sendall(b"RFB 003.008\n")
        while True:
            conn.sendall(chunk)
    except OSError:
        conn.close()
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.1)


def banner_direct(port: int) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        data = b""
        while len(data) < 12:
            data += sock.recv(12 - len(data))
        elapsed = (time.perf_counter() - started) * 1000
    assert data == RFB_VERSION, data
    return elapsed


def banner_ws(url: str, cookie: str = "") -> float:
    started = time.perf_counter()
    ws = WebSocket(url, cookie=cookie)
    data = ws.recv_exact(12)
    elapsed = (time.perf_counter() - started) * 1000
    ws.close()
    assert data == RFB_VERSION, data
    return elapsed


def throughput_direct(port: int, seconds: float) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        buf = bytearray(1 << 20)
        total, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            total += sock.recv_into(buf)
        return total / (time.perf_counter() - started) / 1e6


def throughput_ws(url: str, seconds: float, cookie: str = "") -> float:
    ws = WebSocket(url, cookie=cookie)
    try:
        total, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            total += len(ws.recv_frame())
        return total / (time.perf_counter() - started) / 1e6
    finally:
        ws.close()


def first_frames(url: str, guest: ConsoleGuest, pages: int) -> tuple[float, list[float]]:
    from playwright.sync_api import sync_playwright

    samples: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 800})
        page.set_default_timeout(20_000)
        login(page, url)
        for _ in range(pages + 1):
            page.goto(f"{url}/hosts/local/domains/{guest.name}/console/")
            page.wait_for_selector("[data-console=vnc][data-first-frame-ms]")
            samples.append(float(page.get_attribute("[data-console=vnc]", "data-first-frame-ms")))
            page.goto("about:blank")
        browser.close()
    return samples[0], samples[1:]


def point_ticket_at(server: ConsoleServer, url: str, port: int) -> None:
    """Aim an issued ticket at another port on loopback (the stand-in server)."""
    ticket_id = int(url.split("token=", 1)[1].split(".", 1)[0])
    with server.db() as db:
        db.execute(
            "UPDATE vmdash_console_consoleticket SET target_port = ? WHERE id = ?",
            (port, ticket_id),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="connections per path (banner)")
    parser.add_argument("--pages", type=int, default=15, help="console page loads (after one)")
    parser.add_argument("--seconds", type=float, default=1.0, help="one throughput sample")
    parser.add_argument("--rounds", type=int, default=5, help="throughput samples per path")
    args = parser.parse_args()

    guest = define_guest(ensure_guest(), "bench")
    data = Path(tempfile.mkdtemp(prefix="vmdash-bench-console-"))
    server: ConsoleServer | None = None
    helpers: list[subprocess.Popen[bytes]] = []

    def spawn(*argv: str) -> int:
        port = free_port()
        helpers.append(
            subprocess.Popen(
                [sys.executable, *argv, str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_port(port)
        return port

    try:
        print(f"booting {guest.name} ...", flush=True)
        guest.start()
        vnc_port = guest.vnc_port()
        server = start_server(data, extra_env={"VMDASH_CONSOLE_TICKET_SECONDS": "30"})
        tokens = data / "tokens"
        tokens.write_text(f"bench: 127.0.0.1:{vnc_port}\n")
        plain_port = spawn(
            "-m", "websockify", "--token-plugin", "TokenFile", "--token-source", str(tokens)
        )
        stream_port = spawn("-c", STREAM_SERVER)
        stream_tokens = data / "stream-tokens"
        stream_tokens.write_text(f"bench: 127.0.0.1:{stream_port}\n")
        plain_stream_port = spawn(
            "-m", "websockify", "--token-plugin", "TokenFile", "--token-source", str(stream_tokens)
        )
        web = Web(server, *ADMIN)
        plain_url = f"ws://127.0.0.1:{plain_port}/?token=bench"

        def ours() -> float:
            url = web.ticket_url(guest.name)  # issued beforehand: not part of the timing
            return banner_ws(url, web.cookie_header)

        paths: dict[str, Callable[[], float]] = {
            "direct": lambda: banner_direct(vnc_port),
            "websockify": lambda: banner_ws(plain_url),
            "vmdash": ours,
        }
        for measure in paths.values():  # warm up: first fork, imports, page cache
            measure()
        banner: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.runs):
            for name, measure in paths.items():
                banner[name].append(measure())

        samples: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.rounds):  # interleaved, so that noise hits every path alike
            ours_url = web.ticket_url(guest.name)
            point_ticket_at(server, ours_url, stream_port)
            samples["direct"].append(throughput_direct(stream_port, args.seconds))
            samples["websockify"].append(
                throughput_ws(f"ws://127.0.0.1:{plain_stream_port}/?token=bench", args.seconds)
            )
            samples["vmdash"].append(throughput_ws(ours_url, args.seconds, web.cookie_header))
        rate = {name: statistics.median(values) for name, values in samples.items()}

        cold, frames = first_frames(server.url, guest, args.pages)
    finally:
        for helper in helpers:
            helper.terminate()
            helper.wait(10)
        if server is not None:
            stop_server(server)
        undefine_guest(guest)

    med = {name: statistics.median(v) for name, v in banner.items()}
    labels = {
        "direct": "direct TCP",
        "websockify": "websockify, token file",
        "vmdash": "vmdash proxy, ticket",
    }
    print()
    print(
        f"consoles: test guest under {'KVM' if kvm_usable() else 'TCG'}, "
        f"{os.cpu_count()} CPUs, loopback"
    )
    print(
        f"  page open -> first frame   median {statistics.median(frames):4.0f} ms"
        f"   p90 {pct(frames, 0.9):4.0f} ms   min {min(frames):4.0f} ms"
        f"   cold first load {cold:4.0f} ms   (n={len(frames)}; target < 500 ms)"
    )
    print(f"  time to VNC banner, median (p90) of {args.runs}")
    for name, label in labels.items():
        print(f"    {label:24s} {med[name]:7.2f} ms ({pct(banner[name], 0.9):6.2f} ms)")
    print(
        f"  throughput, median of {args.rounds} x {args.seconds:g} s from a stand-in server"
        " that streams without pause"
    )
    for name, label in labels.items():
        print(f"    {label:24s} {rate[name]:7.0f} MB/s")
    print("  ratios")
    print(
        f"    banner      vmdash/websockify {med['vmdash'] / med['websockify']:5.2f}"
        f" (target <= 1.20; the ticket check costs {med['vmdash'] - med['websockify']:+.2f} ms)"
        f"   vmdash/direct {med['vmdash'] / med['direct']:5.1f}"
        f"   websockify/direct {med['websockify'] / med['direct']:5.1f}"
    )
    print(
        f"    throughput  vmdash/websockify {rate['vmdash'] / rate['websockify']:5.2f}"
        f"   vmdash/direct {rate['vmdash'] / rate['direct']:5.2f}"
        f"   websockify/direct {rate['websockify'] / rate['direct']:5.2f}"
    )


if __name__ == "__main__":
    main()
