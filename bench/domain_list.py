#!/usr/bin/env python3
"""VM list page vs the bare libvirt listing of the same 1000 VMs, in one run.

Backends:
  test  libvirt's test driver with a generated node file (in-process, no RPC)
  qemu  1000 inactive definitions on the real libvirtd (qemu:///system),
        named vmdash-b-NNNN and removed afterwards

For each, it times (median and p95 of --runs):
  bare      the bare libvirt listing of what the page shows, with the raw
            API and nothing else: virConnectGetAllDomainStats(state, vcpu,
            balloon) for all VMs, the autostart/transient/managed-save
            filtered listings, and title + description of the first page's
            rows (virDomainGetMetadata)
  bulk      the single virConnectGetAllDomainStats call alone (the floor)
  naive     listAllDomains + per-VM info(), autostart() and both metadata
            calls for every VM: what a per-VM loop costs, for reference
  page      GET /domains/ through Django (session, auth, policy, bulk calls,
            titles for the page's rows, template) with the default page size
  page-all  the same with all 1000 rows on one page
  api       GET /api/v1/vms/?per_page=<page size> (JSON, the same filters),
            through the same session
and prints page/bare (the headline), page/bulk, naive/page and api/bare as ratios.
Usage: bench/domain_list.py [--backend test|qemu|both] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
N = 1000


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm up
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def domain_xml(i: int, dtype: str) -> etree._Element:
    dom = etree.Element("domain", type=dtype)
    etree.SubElement(dom, "name").text = f"vmdash-b-{i:04d}"
    etree.SubElement(dom, "title").text = f"Bench VM {i}"
    etree.SubElement(dom, "memory", unit="MiB").text = str(128 * (1 + i % 8))
    etree.SubElement(dom, "vcpu").text = str(1 + i % 4)
    os_el = etree.SubElement(dom, "os")
    etree.SubElement(os_el, "type", arch="x86_64").text = "hvm"
    return dom


def test_node(path: Path) -> str:
    ns = "http://libvirt.org/schemas/domain/test/1.0"
    node = etree.Element("node", nsmap={"test": ns})
    for i in range(N):
        dom = domain_xml(i, "test")
        # a third running, the rest shut off, like a busy lab
        etree.SubElement(dom, f"{{{ns}}}runstate").text = "1" if i % 3 == 0 else "5"
        # fixed UUIDs: another process opening the same world finds the same VMs
        etree.SubElement(dom, "uuid").text = f"00000000-0000-4000-8000-{i:012d}"
        node.append(dom)
    path.write_bytes(etree.tostring(node, pretty_print=True))
    return f"test://{path}"


def define_on_libvirtd() -> str:
    import libvirt

    conn = libvirt.open("qemu:///system")
    existing = {d.name() for d in conn.listAllDomains()}
    for i in range(N):
        dom = domain_xml(i, "qemu")
        if dom.findtext("name") not in existing:
            conn.defineXML(etree.tostring(dom, encoding="unicode"))
    conn.close()
    return "qemu:///system"


def remove_from_libvirtd() -> None:
    import libvirt

    conn = libvirt.open("qemu:///system")
    for d in conn.listAllDomains():
        if d.name().startswith("vmdash-b-"):
            d.undefine()
    conn.close()


def setup_django(data: Path) -> None:
    os.environ["VMDASH_DATA_DIR"] = str(data)
    # The benchmark's test-driver world lives here; vmdash opens test:// worlds
    # only inside VMDASH_TEST_DRIVER_DIR.
    os.environ["VMDASH_TEST_DRIVER_DIR"] = str(data)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vmdash.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def measure(label: str, uri: str, runs: int) -> None:
    import libvirt
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    from vmdash.models import Host
    from vmdash.virt.connection import reset_pool

    reset_pool()
    Host.objects.all().delete()
    Host.objects.create(slug="bench", uri=uri)
    user = User.objects.filter(username="bench").first() or User.objects.create_user(
        "bench", password="x", is_superuser=True
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)

    conn = libvirt.open(uri)
    flags = (
        libvirt.VIR_DOMAIN_STATS_STATE
        | libvirt.VIR_DOMAIN_STATS_VCPU
        | libvirt.VIR_DOMAIN_STATS_BALLOON
    )
    if uri.startswith("test:"):
        # The test driver keeps a private world per connection: read the one
        # vmdash uses, so both sides list the very same 1000 VMs.
        from vmdash.virt.connection import pool

        conn = pool().get(uri)
    count = len(conn.listAllDomains())

    title, desc = libvirt.VIR_DOMAIN_METADATA_TITLE, libvirt.VIR_DOMAIN_METADATA_DESCRIPTION
    page_size = settings.VMDASH_PAGE_SIZE

    def meta(d: libvirt.virDomain, kind: int) -> str:
        try:
            return str(d.metadata(kind, None, 0))
        except libvirt.libvirtError:
            return ""

    def bare() -> object:
        stats = conn.getAllDomainStats(flags, 0)
        for f in (
            libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART,
            libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT,
            libvirt.VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE,
        ):
            conn.listAllDomains(f)
        rows = sorted(((d.name(), d, s) for d, s in stats), key=lambda r: r[0])
        return [(n, s, meta(d, title), meta(d, desc)) for n, d, s in rows[:page_size]]

    def bulk() -> object:
        return [(d.name(), s) for d, s in conn.getAllDomainStats(flags, 0)]

    def naive() -> object:
        return [
            (d.name(), d.info(), d.autostart(), meta(d, title), meta(d, desc))
            for d in conn.listAllDomains()
        ]

    def page() -> object:
        response = client.get("/domains/")
        assert response.status_code == 200 and b"vmdash-b-0000" in response.content
        return response

    def api() -> object:
        response = client.get(f"/api/v1/vms/?per_page={page_size}")
        assert response.status_code == 200 and response.json()["total"] == count
        return response

    bare_med, bare_p95 = timed(bare, runs)
    bulk_med, bulk_p95 = timed(bulk, runs)
    naive_med, naive_p95 = timed(naive, max(3, runs // 4))
    page_med, page_p95 = timed(page, runs)
    api_med, api_p95 = timed(api, runs)
    default_size = settings.VMDASH_PAGE_SIZE
    settings.VMDASH_PAGE_SIZE = N
    all_med, all_p95 = timed(page, max(3, runs // 2))
    settings.VMDASH_PAGE_SIZE = default_size

    print(f"\n{label}: {uri}  ({count} VMs, {runs} runs)")
    print(f"  bare listing of the page     median {bare_med:7.1f} ms  p95 {bare_p95:7.1f} ms")
    print(f"  bulk GetAllDomainStats only  median {bulk_med:7.1f} ms  p95 {bulk_p95:7.1f} ms")
    print(f"  naive per-VM loop            median {naive_med:7.1f} ms  p95 {naive_p95:7.1f} ms")
    print(
        f"  page /domains/ ({default_size} rows)     median {page_med:7.1f} ms"
        f"  p95 {page_p95:7.1f} ms"
    )
    print(f"  page, all {N} rows           median {all_med:7.1f} ms  p95 {all_p95:7.1f} ms")
    print(
        f"  api /api/v1/vms/ ({default_size} rows)  median {api_med:7.1f} ms  p95 {api_p95:7.1f} ms"
    )
    print(
        f"  ratios: page/bare {page_med / bare_med:.2f}x   page/bulk {page_med / bulk_med:.2f}x"
        f"   naive/page {naive_med / page_med:.2f}x   api/bare {api_med / bare_med:.2f}x"
    )


def main() -> None:
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors are raised, not printed
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["test", "qemu", "both"], default="both")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp))
        if args.backend in ("test", "both"):
            measure("test driver", test_node(Path(tmp) / "node.xml"), args.runs)
        if args.backend in ("qemu", "both"):
            try:
                started = time.perf_counter()
                uri = define_on_libvirtd()
                print(f"\n(defined {N} inactive VMs in {time.perf_counter() - started:.1f} s)")
                measure("real libvirtd", uri, args.runs)
            finally:
                remove_from_libvirtd()


if __name__ == "__main__":
    main()
