"""vmdash-cli: the API for scripts. Standard library only: it runs on any Python 3.11.

    export VMDASH_URL=https://vmdash.example.org VMDASH_TOKEN=vmd_…
    vmdash-cli list [--host lab] [--state running] [--json]
    vmdash-cli start lab/web1          (also: shutdown, reboot, pause, resume)
    vmdash-cli stop lab/web1 [--force]
    vmdash-cli console lab/web1        (the URL of its console page)

Exit status: 0 done, 1 the API refused (its sentence on stderr), 2 bad use.
"""

from __future__ import annotations

import argparse
import json
import os
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
    args = parser.parse_args(argv)

    token = os.environ.get("VMDASH_TOKEN", "")
    if not token:
        print("vmdash-cli: set VMDASH_TOKEN to an API token (your account page)", file=sys.stderr)
        return 2
    client = Client(args.url, token)
    try:
        if args.command == "list":
            return _list(client, args)
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
