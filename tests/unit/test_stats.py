"""Stats: rates from libvirt's counters, a day of history, the graph data and /metrics.

Reads go to libvirt's test driver (tests/data/testnode.xml); the rates are
checked on counters written out here, where the right answer is arithmetic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import lxml.html
import pytest
from django.contrib.auth.models import User
from django.test import Client

from stats.history import FIELDS, FINE_SECONDS, History, Series, vm_point
from stats.sampler import Sampler
from tests.unit.test_connections import silent_host  # noqa: F401  (a fixture)
from vmdash.models import Host
from vmdash.virt.refs import HostRef
from vmdash.virt.stats import Counters, VmCounters, read_counters

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-for-tests-only"


def counters(
    cpu_ns: int, read: int, rx: int, *, running: bool = True, vcpus: int = 2
) -> VmCounters:
    return VmCounters(
        uuid="6695eb01-f6a4-8304-79aa-97f2502e193f", name="web1", running=running, vcpus=vcpus,
        cpu_ns=cpu_ns, memory_kib=1024 * 1024, unused_kib=256 * 1024, rss_kib=None,
        read_bytes=read, write_bytes=0, read_reqs=read // 4096, write_reqs=0,
        rx_bytes=rx, tx_bytes=0,
    )  # fmt: skip


def test_two_reads_make_rates_a_person_can_read() -> None:
    before, now = counters(0, 0, 0), counters(2 * 10**9, 8 * 4096 * 1024, 5_000_000)
    point = dict(zip(FIELDS, vm_point(now, before, seconds=2.0), strict=True))
    assert point["cpu"] == pytest.approx(50.0)  # 2 s of CPU over 2 s on 2 vCPUs
    assert point["memory_used"] == 768 * 1024 * 1024  # balloon current minus unused
    assert point["disk_read"] == pytest.approx(16 * 1024 * 1024)  # bytes per second
    assert point["disk_iops"] == pytest.approx(4096)
    assert point["net_rx"] == pytest.approx(2_500_000)


def test_a_counter_that_restarted_gives_no_rate_rather_than_a_negative_one() -> None:
    point = dict(
        zip(FIELDS, vm_point(counters(10, 0, 0), counters(10**12, 0, 0), 2.0), strict=True)
    )
    assert point["cpu"] is None
    assert vm_point(counters(0, 0, 0, running=False), None, 2.0)[0] == 0.0  # stopped: idle


def test_beyond_ten_minutes_a_day_is_kept_in_one_minute_means() -> None:
    series = Series("web1")
    start = 1_700_000_000.0 - 1_700_000_000.0 % 60
    for i in range(0, 3600, 2):  # an hour of points every 2 s, CPU = the minute number
        series.add(start + i, (float(i // 60),) + (None,) * 7)
    now = start + 3600
    recent = series.window(600, now)
    assert len(recent) == pytest.approx(FINE_SECONDS / 2, abs=1)
    hour = series.window(3600, now)
    coarse = [p for p in hour if p[0] < series.fine[0][0]]
    assert len(coarse) == 50  # the minutes before the last ten, one point each
    assert [p[1][0] for p in coarse[:3]] == [0.0, 1.0, 2.0]


def test_one_bulk_read_of_a_host_has_every_running_vm(lab: Host) -> None:
    read = read_counters(HostRef(lab.slug, lab.uri))
    names = {vm.name for vm in read.vms}
    assert "web1" in names and "db" not in names  # db is shut off: its counters do not move
    history = History()
    history.add(read)
    history.add(read_counters(HostRef(lab.slug, lab.uri)))
    assert "web1" in {row[2] for row in history.latest()}


def test_a_vm_that_stopped_gets_one_idle_point_and_then_a_gap() -> None:
    history = History()
    on = Counters("lab", 1000.0, 1.0, None, (counters(0, 0, 0),))
    history.add(on)
    history.add(Counters("lab", 1002.0, 3.0, None, ()))
    history.add(Counters("lab", 1004.0, 5.0, None, ()))
    points = history.window("lab", on.vms[0].uuid, 10**9)
    assert [p[0] for p in points] == [1000.0, 1002.0]
    assert points[-1][1][0] == 0.0  # CPU 0 % when it stopped


def test_a_silent_host_skips_its_ticks_and_never_delays_the_others(
    silent_host: str,  # noqa: F811
    lab: Host,
) -> None:
    from stats.history import history

    history().clear()
    hosts = [HostRef("silent", silent_host), HostRef(lab.slug, lab.uri)]
    sampler = Sampler(lambda: hosts, every=0.2)

    async def run_for(seconds: float) -> None:
        task = asyncio.create_task(sampler.run())
        await asyncio.sleep(seconds)
        task.cancel()

    asyncio.run(run_for(1.5))
    lab_points = history().window(lab.slug, _uuid_of(lab, "web1"), 600)
    assert len(lab_points) >= 5  # about every 0.2 s, whatever the silent host does
    assert sampler.skipped >= 3  # the silent host's read was still waiting
    history().clear()


def _uuid_of(lab: Host, name: str) -> str:
    read = read_counters(HostRef(lab.slug, lab.uri))
    return next(vm.uuid for vm in read.vms if vm.name == name)


@pytest.fixture
def sampled(lab: Host) -> Iterator[Host]:
    from stats.history import history

    history().clear()
    history().add(read_counters(HostRef(lab.slug, lab.uri)))
    time.sleep(0.05)
    history().add(read_counters(HostRef(lab.slug, lab.uri)))
    yield lab
    history().clear()


def test_the_graph_data_of_a_vm_goes_through_the_door(
    sampled: Host, alice: User, bob: User
) -> None:
    url = "/hosts/lab/domains/web1/stats/?range=10m"
    as_bob, as_alice = Client(), Client()
    as_bob.force_login(bob)
    as_alice.force_login(alice)
    assert as_bob.get(url).status_code == 404
    data = as_alice.get(url).json()
    assert data["fields"][0] == "cpu" and len(data["points"]) == 2
    assert as_alice.get("/hosts/lab/domains/nosuchvm/stats/").status_code == 404


def test_metrics_needs_its_token_and_then_lists_every_vm(sampled: Host, settings: object) -> None:
    anonymous = Client()
    assert anonymous.get("/metrics").status_code == 404  # off until a token is set
    settings.VMDASH_METRICS_TOKEN = TOKEN  # type: ignore[attr-defined]
    refused = anonymous.get("/metrics")
    assert refused.status_code == 401 and "vmdash_vm" not in refused.content.decode()
    wrong = anonymous.get("/metrics", HTTP_AUTHORIZATION="Bearer not-" + TOKEN)
    assert wrong.status_code == 401
    ok = anonymous.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert ok.status_code == 200 and ok["Content-Type"].startswith("text/plain")
    body = ok.content.decode()
    assert "# TYPE vmdash_vm_memory_bytes gauge" in body
    assert 'vmdash_vm_memory_bytes{host="lab",name="web1",uuid="' in body
    assert 'vmdash_host_up{host="lab"} 1' in body


def test_the_top_vms_of_a_host_list_only_what_the_person_may_see(
    sampled: Host, alice: User, bob: User
) -> None:
    from tests.unit.test_grants import WEB1, grant, person

    url = "/hosts/lab/top/?by=memory"
    as_alice = Client()
    as_alice.force_login(alice)
    assert 'href="/hosts/lab/domains/web1/"' in as_alice.get(url).content.decode()
    hidden = person("hidden")
    grant("operator", user=hidden, scope="host", host="lab")
    grant("no-access", user=hidden, scope="vm", host="lab", object_uuid=WEB1, object_name="web1")
    as_hidden = Client()
    as_hidden.force_login(hidden)
    page = as_hidden.get(url)
    assert page.status_code == 200 and "web1" not in page.content.decode()
    as_bob = Client()
    as_bob.force_login(bob)
    assert as_bob.get(url).status_code == 404
    assert as_bob.get("/hosts/lab/stats/").status_code == 404


def test_the_vm_list_shows_each_vms_load_now_and_sorts_by_it(lab: Host, alice: User) -> None:
    """The list's CPU and memory-use columns come from the sampler's newest
    point (no call to libvirt); sorting by them puts the busiest first and
    the VMs without a fresh figure last. A stale point is no figure."""
    from stats.history import history

    web1, db, odd = (f"11111111-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))
    now = time.time()
    history().clear()
    history()._put("lab", web1, "web1", now, (12.0, 256 * 2**20, 2**30, 0, 0, 0, 0, 0))
    history()._put("lab", odd, "odd", now, (87.0, None, 2**29, 0, 0, 0, 0, 0))
    history()._put("lab", db, "db", now - 3600, (99.0, 2**30, 2**32, 0, 0, 0, 0, 0))  # stopped
    client = Client()
    client.force_login(alice)
    try:
        page = lxml.html.fromstring(client.get("/domains/?sort=-cpu").content)
        rows = page.xpath("//tbody/tr[starts-with(@id, 'dom-')]")
        assert [r.get("id")[4:] for r in rows] == [odd, web1, db]
        cells = {
            r.get("id")[4:]: [c.text_content().strip() for c in r.xpath("td[@class='load']")]
            for r in rows
        }
        assert cells[odd] == ["87 %", "–"]
        assert cells[web1] == ["12 %", "256 MiB"]
        assert cells[db] == ["–", "–"]
        ascending = lxml.html.fromstring(client.get("/domains/?sort=cpu").content)
        order = [r.get("id")[4:] for r in ascending.xpath("//tbody/tr[starts-with(@id, 'dom-')]")]
        assert order == [web1, odd, db]  # the unknown stays last either way
        by_memory = lxml.html.fromstring(client.get("/domains/?sort=-used").content)
        order = [r.get("id")[4:] for r in by_memory.xpath("//tbody/tr[starts-with(@id, 'dom-')]")]
        assert order[0] == web1
    finally:
        history().clear()
