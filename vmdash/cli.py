"""vmdash-cli: the API for scripts. Standard library only: it runs on any Python 3.11.

    export VMDASH_URL=https://vmdash.example.org VMDASH_TOKEN=vmd_…
    vmdash-cli list [--host lab] [--state running] [--json]
    vmdash-cli start lab/web1          (also: shutdown, reboot, pause, resume)
    vmdash-cli stop lab/web1 [--force]
    vmdash-cli console lab/web1        (the URL of its console page)
    vmdash-cli upload lab/images debian.iso [--name NAME] [--existing]

Exit status: 0 done, 1 the API refused (its sentence on stderr), 2 bad use.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import socket
import ssl
import struct
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

ACTIONS = ("start", "shutdown", "reboot", "pause", "resume")


class Refused(Exception):
    """The API answered with an error; its sentence."""


class Client:
    def __init__(self, url: str, token: str, timeout: float = 30) -> None:
        self.base = url.rstrip("/") + "/api/v1"
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, query: dict[str, str] | None = None) -> Any:
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        request = urllib.request.Request(url, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as err:
            raise Refused(_detail(err)) from None
        except urllib.error.URLError as err:
            raise Refused(f"cannot reach {self.base}: {err.reason}") from None


def _detail(err: urllib.error.HTTPError) -> str:
    try:
        detail = json.load(err).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # a parameter the API refused
        detail = "; ".join(str(d.get("msg", d)) for d in detail)
    return f"{err.code}: {detail or err.reason}"


def _vm(spec: str) -> tuple[str, str]:
    host, sep, name = spec.partition("/")
    if not sep or not host or not name:
        raise SystemExit(f"vmdash-cli: name the VM as HOST/NAME, not {spec!r}")
    return urllib.parse.quote(host, safe=""), urllib.parse.quote(name, safe="")


def _list(client: Client, args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    page, pages = 1, 1
    query = {"host": args.host or "", "state": args.state or "", "q": args.q or ""}
    while page <= pages:
        found = client.call("GET", "/vms/", {**query, "page": str(page), "per_page": "500"})
        rows += found["items"]
        pages = found["pages"]
        page += 1
        for down in found.get("unreachable", []):
            print(
                f"vmdash-cli: host {down['host']} did not answer: {down['error']}", file=sys.stderr
            )
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    table = [("HOST", "NAME", "STATE", "VCPUS", "MEMORY")] + [
        (r["host"], r["name"], r["state"], str(r["vcpus"]), f"{r['memory_kib'] // 1024} MiB")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _act(client: Client, op: str, spec: str, confirm: str = "") -> int:
    host, name = _vm(spec)
    done = client.call("POST", f"/hosts/{host}/vms/{name}/actions/{op}/", {"confirm": confirm})
    print(done["done"])
    return 0


class Socket:
    """The least WebSocket client an upload needs (RFC 6455: masked frames out,
    text, binary, ping and close in), on a plain or TLS socket."""

    def __init__(self, url: str, path: str, token: str, timeout: float = 60) -> None:
        parts = urllib.parse.urlsplit(url)
        tls = parts.scheme == "https"
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if tls else 80)
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = (
            ssl.create_default_context().wrap_socket(raw, server_hostname=host) if tls else raw
        )
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        origin = f"{parts.scheme}://{parts.netloc}"
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {origin}\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            got = self.sock.recv(4096)
            if not got:
                raise Refused("the server closed the connection before answering")
            head += got
        status, _rest = head.split(b"\r\n", 1)
        if b" 101 " not in status:
            raise Refused(
                f"the server refused the upload socket: {status.decode(errors='replace')}"
            )
        self.buffer = head.split(b"\r\n\r\n", 1)[1]

    def send(self, data: bytes | str) -> None:
        opcode, payload = (1, data.encode()) if isinstance(data, str) else (2, data)
        self._frame(opcode, payload)

    def _frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = secrets.token_bytes(4)
        masked = int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        self.sock.sendall(head + mask + (masked.to_bytes(n, "big") if n else b""))

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            got = self.sock.recv(65536)
            if not got:
                raise Refused("the server closed the connection")
            self.buffer += got
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def receive(self) -> dict[str, Any]:
        """The next JSON message (pings answered; a close is Refused with its reason)."""
        while True:
            first, second = self._read(2)
            opcode, n = first & 0x0F, second & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(n)
            if opcode == 9:
                self._frame(10, payload)
            elif opcode == 8:
                reason = payload[2:].decode(errors="replace") if len(payload) > 2 else ""
                raise Refused(f"the server closed the upload{': ' + reason if reason else ''}")
            elif opcode == 1:
                return dict(json.loads(payload))

    def close(self) -> None:
        try:
            self._frame(8, struct.pack("!H", 1000))
        finally:
            self.sock.close()


def _upload(url: str, token: str, args: argparse.Namespace) -> int:
    host, _sep, pool = args.pool.partition("/")
    if not host or not pool:
        raise SystemExit(f"vmdash-cli: name the pool as HOST/POOL, not {args.pool!r}")
    size = os.path.getsize(args.file)
    name = args.name or os.path.basename(args.file)
    path = f"/ws/hosts/{urllib.parse.quote(host)}/storage/{urllib.parse.quote(pool)}/upload/"
    ws = Socket(url, path, token)
    try:
        ws.send(
            json.dumps({"type": "start", "volume": name, "size": size, "new": not args.existing})
        )
        ready = ws.receive()
        if ready.get("type") != "ready":
            raise Refused(str(ready.get("message") or ready))
        window, chunk = int(ready["window"]), int(ready["chunk"])
        sent = acked = 0
        with open(args.file, "rb") as f:
            while True:
                while sent - acked < window * chunk and sent < size:
                    data = f.read(chunk)
                    ws.send(data)
                    sent += len(data)
                answer = ws.receive()
                if answer.get("type") == "ack":
                    acked = int(answer["sent"])
                    print(f"\r{acked * 100 // max(size, 1):3d}% {acked} of {size} bytes",
                          end="", file=sys.stderr, flush=True)  # fmt: skip
                elif answer.get("type") == "done":
                    print(file=sys.stderr)
                    print(f"{host}/{pool}/{answer.get('volume', name)}: {size} bytes uploaded")
                    return 0
                else:
                    raise Refused(str(answer.get("message") or answer))
    finally:
        ws.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vmdash-cli",
        description="vmdash from scripts. VMDASH_URL and VMDASH_TOKEN (an API token "
        "made on your account page) come from the environment.",
    )
    parser.add_argument("--url", default=os.environ.get("VMDASH_URL", "http://127.0.0.1:8000"))
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="VMs you may see")
    listing.add_argument("--host")
    listing.add_argument("--state", choices=["running", "paused", "shutoff", "crashed"])
    listing.add_argument("--q", help="part of the name, or tag:NAME")
    listing.add_argument("--json", action="store_true", help="the API's rows as JSON")
    for op in ACTIONS:
        sub.add_parser(op, help=f"{op} a VM").add_argument("vm", metavar="HOST/NAME")
    stop = sub.add_parser("stop", help="shut a VM down (--force: power it off)")
    stop.add_argument("vm", metavar="HOST/NAME")
    stop.add_argument("--force", action="store_true")
    console = sub.add_parser("console", help="the URL of a VM's console page")
    console.add_argument("vm", metavar="HOST/NAME")
    upload = sub.add_parser("upload", help="a file into a volume, streamed through libvirt")
    upload.add_argument("pool", metavar="HOST/POOL")
    upload.add_argument("file")
    upload.add_argument("--name", help="the volume's name (default: the file's)")
    upload.add_argument("--existing", action="store_true", help="into the volume there is")
    args = parser.parse_args(argv)

    token = os.environ.get("VMDASH_TOKEN", "")
    if not token:
        print("vmdash-cli: set VMDASH_TOKEN to an API token (your account page)", file=sys.stderr)
        return 2
    client = Client(args.url, token)
    try:
        if args.command == "list":
            return _list(client, args)
        if args.command == "upload":
            return _upload(args.url, token, args)
        if args.command in ACTIONS:
            return _act(client, args.command, args.vm)
        if args.command == "stop":
            if args.force:
                return _act(client, "force-off", args.vm, confirm=args.vm.partition("/")[2])
            return _act(client, "shutdown", args.vm)
        host, name = _vm(args.vm)
        print(client.call("GET", f"/hosts/{host}/vms/{name}/console/")["url"])
        return 0
    except Refused as err:
        print(f"vmdash-cli: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
