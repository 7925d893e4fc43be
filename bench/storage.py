#!/usr/bin/env python3
"""Storage figures, in one run on the real libvirtd (qemu:///system):

  upload    the same file (--size, default 1 GiB, random bytes) uploaded into a
            new raw volume by `virsh vol-upload` and through vmdash's upload
            WebSocket (the chunk and window the server offers, as upload.js),
            alternated --rounds times; vmdash/virsh throughput is the headline
  rss       the web process's peak RSS growth during the vmdash uploads
            (sampled from /proc every 20 ms; target < 50 MB)
  list      GET /hosts/local/storage/<pool>/ of a pool with --volumes volumes
            (default 5000) against the bare virStoragePoolListAllVolumes of
            the same pool, median of --runs (target <= 3x)

vmdash runs as `make run` starts it (tests/servers.py), with its own SQLite.
Every object is named vmdash-b-... and removed at the end.
Usage: bench/storage.py [--size MiB] [--rounds N] [--volumes N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import libvirt  # noqa: E402
from autobahn.websocket.xormasker import create_xor_masker  # noqa: E402

from tests.events.wsclient import login_cookies  # noqa: E402
from tests.servers import ADMIN, start_vmdash  # noqa: E402

URI = "qemu:///system"
MiB = 1 << 20


def _quiet(_ctx: object, _err: object) -> None:
    pass


class BinaryWs:
    """A minimal RFC 6455 client on a blocking socket, for binary frames of CHUNK bytes.

    It masks with autobahn's C masker (Daphne's own dependency) and writes each frame
    with one sendall: an asyncio client or masking in Python costs more CPU than the
    server does, and on a small machine it would measure this client, not vmdash."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    @classmethod
    def connect(cls, base: str, path: str, cookies: dict[str, str]) -> BinaryWs:
        host, port = base.split("//", 1)[1].split(":")
        sock = socket.create_connection((host, int(port)))
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: {base}\r\nCookie: {cookie}\r\n\r\n"
            ).encode()
        )
        ws = cls(sock)
        head = ws._until(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        return ws

    def _until(self, mark: bytes) -> bytes:
        while mark not in self.buf:
            self._more()
        head, self.buf = self.buf.split(mark, 1)
        return head

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _more(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("closed")
        self.buf += data

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            length = bytes([0x80 | n])
        elif n < 2**16:
            length = bytes([0xFE]) + struct.pack("!H", n)
        else:
            length = bytes([0xFF]) + struct.pack("!Q", n)
        self.sock.sendmsg([bytes([0x80 | opcode]) + length + mask,
                           create_xor_masker(mask, n).process(payload)])  # fmt: skip

    def receive_json(self) -> dict[str, object]:
        while True:
            head = self._exactly(2)
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._exactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._exactly(8))[0]
            payload = self._exactly(n)
            if opcode == 0x8:
                raise ConnectionError(f"closed: {payload[2:].decode(errors='replace')}")
            if opcode == 0x1:
                return dict(json.loads(payload))

    def close(self) -> None:
        self.sock.close()


def upload_vmdash(base: str, cookies: dict[str, str], pool: str, name: str, path: Path) -> None:
    """As static/js/upload.js does it: start, then CHUNK frames, `window` unacknowledged."""
    ws = BinaryWs.connect(base, f"/ws/hosts/local/storage/{pool}/upload/", cookies)
    size = path.stat().st_size
    ws.send(0x1, json.dumps({"type": "start", "volume": name, "size": size}).encode())
    said = ws.receive_json()
    if said["type"] != "ready":
        raise RuntimeError(said)
    window, chunk_size = int(str(said["window"])), int(str(said["chunk"]))
    in_flight = 0
    with path.open("rb") as f:
        while said["type"] != "done":
            while in_flight < window and (chunk := f.read(chunk_size)):
                ws.send(0x2, chunk)
                in_flight += 1
            said = ws.receive_json()
            if said["type"] not in ("ack", "done"):
                raise RuntimeError(said)
            in_flight -= 1
    ws.close()


def upload_virsh(pool: str, name: str, path: Path) -> None:
    size = path.stat().st_size
    virsh = ["virsh", "-q", "-c", URI]
    subprocess.run(
        [*virsh, "vol-create-as", pool, name, str(size), "--format", "raw"],
        check=True,
        capture_output=True,
    )
    subprocess.run([*virsh, "vol-upload", "--pool", pool, name, str(path)], check=True)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RssWatch:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.base = rss_kib(pid)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, rss_kib(self.pid))

    def growth_mb(self) -> float:
        self.stop.set()
        self.thread.join()
        return (self.peak - self.base) / 1024


def make_pool(conn: libvirt.virConnect, name: str, path: Path) -> libvirt.virStoragePool:
    xml = f"<pool type='dir'><name>{name}</name><target><path>{path}</path></target></pool>"
    p = conn.storagePoolDefineXML(xml, 0)
    p.build(0)
    p.create(0)
    return p


def remove_pool(p: libvirt.virStoragePool) -> None:
    try:
        for v in p.listAllVolumes(0):
            v.delete(0)
        p.destroy()
        p.undefine()
    except libvirt.libvirtError as err:
        print(f"cleanup: {err}", file=sys.stderr)


def median_ms(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    t = os.times()
    return t.children_user + t.children_system


def bench_upload(srv, cookies, conn, pool_dir: Path, src: Path, rounds: int) -> None:  # type: ignore[no-untyped-def]
    """Alternate virsh and vmdash on the same file; wall-clock MiB/s and CPU seconds per
    GiB of each process (this machine's CPUs are shared by all of them)."""
    pool = make_pool(conn, "vmdash-b-pool-up", pool_dir)
    size_mib = src.stat().st_size // MiB
    libvirtd = int(subprocess.check_output(["pidof", "libvirtd"]).split()[0])
    per_gib = 1024 / size_mib
    rates: dict[str, list[float]] = {"virsh": [], "vmdash": []}
    cpu: dict[str, list[float]] = {
        k: [] for k in ("virsh", "libvirtd-v", "web", "client", "libvirtd-w")
    }
    growth: list[float] = []
    try:
        for r in range(rounds):
            subprocess.run(["sync"], check=True)  # the last round's writeback is not ours
            lv, kids, t = cpu_s(libvirtd), children_cpu_s(), time.perf_counter()
            upload_virsh(pool.name(), f"virsh-{r}", src)
            rates["virsh"].append(size_mib / (time.perf_counter() - t))
            cpu["virsh"].append((children_cpu_s() - kids) * per_gib)
            cpu["libvirtd-v"].append((cpu_s(libvirtd) - lv) * per_gib)
            subprocess.run(["sync"], check=True)
            watch = RssWatch(srv.proc.pid)
            lv, web, me = cpu_s(libvirtd), cpu_s(srv.proc.pid), time.process_time()
            t = time.perf_counter()
            upload_vmdash(srv.url, cookies, pool.name(), f"vmdash-{r}", src)
            rates["vmdash"].append(size_mib / (time.perf_counter() - t))
            cpu["web"].append((cpu_s(srv.proc.pid) - web) * per_gib)
            cpu["client"].append((time.process_time() - me) * per_gib)
            cpu["libvirtd-w"].append((cpu_s(libvirtd) - lv) * per_gib)
            growth.append(watch.growth_mb())
            for name in (f"virsh-{r}", f"vmdash-{r}"):
                pool.storageVolLookupByName(name).delete(0)
    finally:
        remove_pool(pool)
    virsh, ours = statistics.median(rates["virsh"]), statistics.median(rates["vmdash"])
    print(f"upload of {size_mib} MiB, {rounds} round(s), median:")
    print(f"  virsh vol-upload   {virsh:8.1f} MiB/s   {[round(x) for x in rates['virsh']]}")
    print(f"  vmdash WebSocket   {ours:8.1f} MiB/s   {[round(x) for x in rates['vmdash']]}")
    print(f"  vmdash/virsh       {ours / virsh:8.2f}x   (target >= 0.8x)")
    print(f"  web RSS growth     {max(growth):8.1f} MB    (peak of the rounds; target < 50 MB)")
    med = {k: statistics.median(v) for k, v in cpu.items()}
    print(
        f"  CPU s per GiB, virsh path:  virsh {med['virsh']:.2f} + libvirtd {med['libvirtd-v']:.2f}"
    )
    print(
        f"  CPU s per GiB, vmdash path: client {med['client']:.2f} + web {med['web']:.2f}"
        f" + libvirtd {med['libvirtd-w']:.2f}   ({os.cpu_count()} CPUs on this machine)"
    )


def bench_list(srv, cookies, conn, work: Path, n: int, runs: int) -> None:  # type: ignore[no-untyped-def]
    pool = make_pool(conn, "vmdash-b-pool-list", work / "list")
    try:
        t = time.perf_counter()
        for i in range(n):
            pool.createXML(f"<volume><name>vol-{i:05}</name><capacity>1024</capacity></volume>", 0)
        print(f"made {n} volumes in {time.perf_counter() - t:.1f} s")
        bare_conn = libvirt.open(URI)
        bare_pool = bare_conn.storagePoolLookupByName(pool.name())
        bare = median_ms(lambda: [v.name() for v in bare_pool.listAllVolumes(0)], runs)
        refresh = median_ms(lambda: bare_pool.refresh(0), runs)
        bare_conn.close()
        opener = urllib.request.build_opener()
        opener.addheaders = [("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))]
        url = f"{srv.url}/hosts/local/storage/{pool.name()}/"
        page = median_ms(lambda: opener.open(url, timeout=60).read(), runs)
        search = median_ms(lambda: opener.open(url + "?q=vol-049", timeout=60).read(), runs)
    finally:
        remove_pool(pool)
    print(f"volume list of {n} volumes, median of {runs}:")
    print(f"  bare listAllVolumes  {bare:8.1f} ms")
    print(f"  bare pool refresh    {refresh:8.1f} ms   (for scale: the page does not refresh)")
    print(f"  page (50 rows)       {page:8.1f} ms   {page / bare:.2f}x bare (target <= 3x)")
    print(f"  page, searched       {search:8.1f} ms   {search / bare:.2f}x bare")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024, help="MiB to upload")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--volumes", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument(
        "--pool-dir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else "",
        help="where the upload pool lives (default tmpfs: the disk's speed is not ours)",
    )
    ap.add_argument("--skip", choices=["upload", "list"], default=None)
    args = ap.parse_args()
    libvirt.registerErrorHandler(_quiet, None)
    conn = libvirt.open(URI)
    for p in conn.listAllStoragePools(0):
        if p.name().startswith("vmdash-b-pool-"):
            remove_pool(p)
    work = Path(tempfile.mkdtemp(prefix="vmdash-b-storage-"))
    (work / "server").mkdir()
    srv = start_vmdash(work / "server")
    try:
        cookies = login_cookies(srv.url, *ADMIN)
        if args.skip != "upload":
            src = work / "file.raw"
            with src.open("wb") as f:
                for _ in range(args.size):
                    f.write(os.urandom(MiB))
            pool_dir = Path(tempfile.mkdtemp(prefix="vmdash-b-up-", dir=args.pool_dir or work))
            try:
                bench_upload(srv, cookies, conn, pool_dir / "pool", src, args.rounds)
            finally:
                shutil.rmtree(pool_dir, ignore_errors=True)
        if args.skip != "list":
            bench_list(srv, cookies, conn, work, args.volumes, args.runs)
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
        conn.close()


if __name__ == "__main__":
    main()
