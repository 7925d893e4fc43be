#!/usr/bin/env python3
"""The VM list at 1000 VMs for a person with 50 grants against a superuser, in one run.

Issue 10, done-when 5: the page /domains/ for a user whose 50 grants mix
their own and their groups', hosts, single VMs and tags (with a "No access"
on a tag and on one VM) must cost at most 1.2x the same page for a
superuser. Every VM carries tags in its <metadata>, so the policy has to
look at each VM's tags for the first person and at nothing for the second.

Backends:
  test  libvirt's test driver with a generated node file (in-process, no RPC)
  qemu  1000 inactive definitions on the real libvirtd (qemu:///system),
        named vmdash-bp-NNNN and removed afterwards

Printed per backend (median and p95 of --runs, same process, same warm
connection): the page for the superuser, for the person with 50 grants, the
ratio (target <= 1.2x), the rows each one sees, and what reading the tags of
all 1000 VMs costs the first time on a fresh connection (later lists use
what the connection remembers, kept fresh by libvirt's events).
Usage: bench/permissions.py [--backend test|qemu|both] [--runs N]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from domain_list import setup_django  # noqa: E402

N = 1000
PREFIX = "vmdash-bp-"
NS = "https://vmdash.example/ns/1"
TARGET = 1.2


def tags_for(i: int) -> list[str]:
    """A lab's tags: a quarter web, a fifth db, every tenth secret, all 'lab'."""
    tags = ["lab", f"team{i % 7}"]
    if i % 4 == 0:
        tags.append("web")
    if i % 5 == 0:
        tags.append("db")
    if i % 10 == 3:
        tags.append("secret")
    return tags


def domain_xml(i: int, dtype: str) -> etree._Element:
    dom = etree.Element("domain", type=dtype)
    etree.SubElement(dom, "name").text = f"{PREFIX}{i:04d}"
    etree.SubElement(dom, "uuid").text = uuid_of(i)
    etree.SubElement(dom, "title").text = f"Bench VM {i}"
    metadata = etree.SubElement(dom, "metadata")
    tags = etree.SubElement(metadata, f"{{{NS}}}tags", nsmap={"vmdash": NS})
    for tag in tags_for(i):
        etree.SubElement(tags, f"{{{NS}}}tag").text = tag
    etree.SubElement(dom, "memory", unit="MiB").text = str(128 * (1 + i % 8))
    etree.SubElement(dom, "vcpu").text = str(1 + i % 4)
    os_el = etree.SubElement(dom, "os")
    etree.SubElement(os_el, "type", arch="x86_64").text = "hvm"
    return dom


def uuid_of(i: int) -> str:
    return f"7e57b000-0000-4000-8000-{i:012d}"


def test_node(path: Path) -> str:
    ns = "http://libvirt.org/schemas/domain/test/1.0"
    node = etree.Element("node", nsmap={"test": ns})
    for i in range(N):
        dom = domain_xml(i, "test")
        etree.SubElement(dom, f"{{{ns}}}runstate").text = "1" if i % 3 == 0 else "5"
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
        if d.name().startswith(PREFIX):
            d.undefine()
    conn.close()


def fifty_grants(user: object) -> int:
    """The person's grants: 50, theirs and their groups', on hosts, VMs and tags."""
    from django.contrib.auth.models import Group

    from vmdash.access.models import Grant, Role

    role = {r.slug: r for r in Role.objects.all()}
    ops, web, dba = (Group.objects.create(name=n) for n in ("bench-ops", "bench-web", "bench-dba"))
    user.groups.add(ops, web, dba)  # type: ignore[attr-defined]
    made = [
        Grant(group=ops, role=role["viewer"], scope="host", host="bench"),
        Grant(group=web, role=role["vm-admin"], scope="tag", tag="web"),
        Grant(group=dba, role=role["operator"], scope="tag", tag="db"),
        Grant(user=user, role=role["no-access"], scope="tag", tag="secret"),
        Grant(user=user, role=role["no-access"], scope="vm", host="bench", object_uuid=uuid_of(8)),
        Grant(user=user, role=role["console-user"], scope="tag", tag="team3"),
    ]
    for h in range(8):  # hosts this deployment does not have (any more)
        made.append(Grant(group=ops, role=role["operator"], scope="host", host=f"old-{h}"))
    for t in range(6):
        made.append(Grant(group=web, role=role["viewer"], scope="tag", tag=f"project{t}"))
    i = 1
    while len(made) < 50:
        made.append(
            Grant(
                user=user,
                role=role["operator"],
                scope="vm",
                host="bench",
                object_uuid=uuid_of(i),
                object_name=f"{PREFIX}{i:04d}",
            )
        )
        i += 7
    Grant.objects.bulk_create(made)
    return len(made)


def measure(label: str, uri: str, runs: int) -> float:
    from django.contrib.auth.models import Group, User
    from django.http import QueryDict
    from django.test import Client

    from domains.views import list_context
    from vmdash.access.models import Grant
    from vmdash.door import load_who
    from vmdash.models import Host
    from vmdash.virt import domains as virt_domains
    from vmdash.virt.connection import reset_pool

    reset_pool()
    Host.objects.all().delete()
    Grant.objects.all().delete()
    User.objects.filter(username__in=["bench-root", "bench-person"]).delete()
    Group.objects.filter(name__startswith="bench-").delete()
    host = Host.objects.create(slug="bench", uri=uri)
    root = User.objects.create_superuser("bench-root", password="x")
    person = User.objects.create_user("bench-person", password="x")
    grants = fifty_grants(person)

    started = time.perf_counter()
    cold = virt_domains.list_domains(host.ref)  # reads every VM's tags once
    cold_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    virt_domains.list_domains(host.ref)
    warm_ms = (time.perf_counter() - started) * 1000

    pages = {}
    for name, user in (("superuser", root), ("person", person)):
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        pages[name] = client

    def page(name: str) -> object:
        response = pages[name].get("/domains/")
        assert response.status_code == 200, response.status_code
        return response

    sizes = {n: page(n).content.decode() for n in pages}  # type: ignore[attr-defined]
    whos = {"superuser": load_who(root), "person": load_who(person)}
    times = interleaved(
        {
            "page superuser": lambda: page("superuser"),
            "page person": lambda: page("person"),
            "list superuser": lambda: list_context(whos["superuser"], QueryDict()),
            "list person": lambda: list_context(load_who(person), QueryDict()),
        },
        runs,
    )
    ratio = times["page person"][0] / times["page superuser"][0]
    listed = times["list person"][0] / times["list superuser"][0]
    print(f"\n{label}: {uri}  ({len(cold)} VMs, {runs} runs; the person has {grants} grants)")
    print(f"  tags of every VM, fresh connection {cold_ms:7.1f} ms  (remembered: {warm_ms:.1f} ms)")
    for name, (med, p95) in times.items():
        print(f"  {name:<16} median {med:7.1f} ms  p95 {p95:7.1f} ms")
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"  page person/superuser {ratio:.2f}x (target <= {TARGET}x: {verdict})")
    print(f"  list_context alone (who, rows, policy; no template) {listed:.2f}x")
    print(f"  VMs listed: superuser {totals(sizes['superuser'])}, person {totals(sizes['person'])}")
    return ratio


def interleaved(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, tuple[float, float]]:
    """Median and p95 (ms) of each, the runs taken in turn so that drift hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm up
    for _ in range(runs):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - t) * 1000)
    out = {}
    for name, values in samples.items():
        values.sort()
        out[name] = (
            statistics.median(values),
            values[min(len(values) - 1, int(len(values) * 0.95))],
        )
    return out


def totals(html: str) -> str:
    match = re.search(r"(\d+)\s+(?:VMs|VM)\b", html)
    return match.group(1) if match else "?"


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
