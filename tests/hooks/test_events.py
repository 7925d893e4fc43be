"""Which events reach which hooks: the sink, and the checks of pools, grants
and failed logins (on libvirt's test driver and the database)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import libvirt
import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from vmdash.access.models import Grant, Role
from vmdash.hooks import checks, queue
from vmdash.hooks.kinds import Kind, vm_kind
from vmdash.hooks.models import Delivery, Hook
from vmdash.models import Host
from vmdash.virt.events import Change, HostStatus, ObjectEvent, ObjectKind
from vmdash.virt.refs import HostRef
from vmdash.virt.storage import list_pools

pytestmark = pytest.mark.django_db

DEMO = HostRef("demo", "test:///default")
UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"


def vm_event(change: Change, detail: str = "") -> ObjectEvent:
    return ObjectEvent("lab", ObjectKind.DOMAIN, UUID, "web1", change, detail, "", time.time())


def hook(*events: str, **kwargs: object) -> Hook:
    return Hook.objects.create(name="ops", url="http://127.0.0.1:9/", events=list(events), **kwargs)


def kinds() -> list[tuple[int, str]]:
    return list(Delivery.objects.order_by("id").values_list("hook_id", "kind"))


@pytest.mark.parametrize(
    ("change", "detail", "kind"),
    [
        (Change.STOPPED, "destroyed", Kind.VM_STOPPED),
        (Change.STOPPED, "shutdown", Kind.VM_STOPPED),
        (Change.STOPPED, "saved", Kind.VM_STOPPED),
        (Change.STOPPED, "crashed", Kind.VM_CRASHED),
        (Change.STOPPED, "failed", Kind.VM_CRASHED),
        (Change.CRASHED, "panicked", Kind.VM_CRASHED),
        (Change.SHUTDOWN, "guest", Kind.VM_SHUTDOWN_BY_GUEST),
        (Change.SHUTDOWN, "host", None),
        (Change.SHUTDOWN, "finished", None),
        (Change.STARTED, "booted", None),
        (Change.SUSPENDED, "paused", None),
    ],
)
def test_each_libvirt_event_stands_for_one_hook_event_or_none(
    change: Change, detail: str, kind: Kind | None
) -> None:
    assert vm_kind(vm_event(change, detail)) == kind


def test_a_stopped_vm_is_queued_for_the_hooks_that_chose_it() -> None:
    wants = hook(Kind.VM_STOPPED)
    hook(Kind.VM_CRASHED)
    hook(Kind.VM_STOPPED, enabled=False)
    queue.on_event(vm_event(Change.STOPPED, "destroyed"))
    (delivery,) = Delivery.objects.all()
    assert delivery.hook == wants and delivery.kind == "vm.stopped"
    assert delivery.payload == {
        "host": "lab",
        "vm": "web1",
        "uuid": UUID,
        "change": "stopped",
        "detail": "destroyed",
        "at": delivery.payload["at"],
    }


def test_a_hook_with_a_tag_hears_only_of_the_vms_carrying_it(lab: Host) -> None:
    """web1 of the test driver, tagged "web" in its libvirt metadata."""
    from vmdash.virt.domains import set_tags

    web = hook(Kind.VM_STOPPED, vm_tag="web")
    db = hook(Kind.VM_STOPPED, vm_tag="db")
    every = hook(Kind.VM_STOPPED)
    set_tags(lab.ref, "web1", {"web"})
    web1 = "11111111-0000-4000-8000-000000000001"  # tests/data/testnode.xml
    queue.on_event(ObjectEvent("lab", ObjectKind.DOMAIN, web1, "web1", Change.STOPPED,
                               "destroyed", "", time.time()))  # fmt: skip
    assert sorted(h for h, _kind in kinds()) == sorted([web.pk, every.pk])
    assert db.deliveries.count() == 0


def test_the_form_refuses_a_tag_that_cannot_be_one(as_alice: Client) -> None:
    from vmdash.hooks.forms import HookForm

    form = HookForm({"name": "x", "url": "https://example.org/h", "events": ["vm.stopped"],
                     "vm_tag": "no spaces please", "pool_threshold": 90, "login_threshold": 5,
                     "enabled": "on"})  # fmt: skip
    assert not form.is_valid()
    assert "Name the tag" in str(form.errors["vm_tag"])


def test_events_of_networks_and_pools_are_not_vm_events() -> None:
    hook(*Kind.values)
    queue.on_event(ObjectEvent("lab", ObjectKind.NETWORK, UUID, "default", Change.STOPPED))
    assert kinds() == []


def test_a_host_is_unreachable_once_per_outage_and_back_after_one() -> None:
    h = hook(Kind.HOST_UNREACHABLE, Kind.HOST_BACK)
    queue.on_event(HostStatus("lab", True))  # the first connection: no news
    queue.on_event(HostStatus("lab", False, "Lost the connection to Lab"))
    queue.on_event(HostStatus("lab", False, "Cannot connect to Lab"))
    queue.on_event(HostStatus("lab", True))
    queue.on_event(HostStatus("lab", True))
    assert kinds() == [(h.pk, "host.unreachable"), (h.pk, "host.back")]
    assert Delivery.objects.first().payload["message"] == "Lost the connection to Lab"  # type: ignore[union-attr]


def test_a_hook_for_back_only_hears_of_returns() -> None:
    h = hook(Kind.HOST_BACK)
    queue.on_event(HostStatus("lab", False))
    queue.on_event(HostStatus("lab", True))
    assert kinds() == [(h.pk, "host.back")]


def test_send_test_queues_a_ping_for_that_hook_alone() -> None:
    h = hook(Kind.VM_STOPPED)
    hook(Kind.VM_STOPPED)
    delivery = queue.send_test(h, "alice")
    assert kinds() == [(h.pk, "ping")]
    assert delivery.payload["by"] == "alice"


@pytest.fixture
def big_volume() -> Iterator[libvirt.virStorageVol]:
    """60 of default-pool's 100 GiB allocated, on the test driver's shared world."""
    conn = libvirt.open(DEMO.uri)
    pool = conn.storagePoolLookupByName("default-pool")
    vol = pool.createXML(
        "<volume><name>vmdash-t-big</name><capacity unit='G'>60</capacity>"
        "<allocation unit='G'>60</allocation></volume>"
    )
    yield vol
    try:
        vol.delete()
    except libvirt.libvirtError:
        pass
    conn.close()


def test_a_pool_above_the_threshold_is_sent_once_until_it_falls_below(
    big_volume: libvirt.virStorageVol,
) -> None:
    h = hook(Kind.POOL_FULL, pool_threshold=50)
    hook(Kind.POOL_FULL, pool_threshold=90)  # 60 %: not for this one
    checks.check_host(DEMO)
    checks.check_host(DEMO)
    assert kinds() == [(h.pk, "pool.full")]
    data = Delivery.objects.get().payload
    assert (data["pool"], data["used_percent"], data["threshold"]) == ("default-pool", 60, 50)

    big_volume.delete()
    checks.check_host(DEMO)  # below: armed again
    conn = libvirt.open(DEMO.uri)
    conn.storagePoolLookupByName("default-pool").createXML(
        "<volume><name>vmdash-t-big</name><capacity unit='G'>60</capacity>"
        "<allocation unit='G'>60</allocation></volume>"
    )
    checks.check_pools(DEMO, list_pools(DEMO))
    assert kinds() == [(h.pk, "pool.full"), (h.pk, "pool.full")]


def test_a_grant_ending_within_a_day_is_sent_once(alice: User) -> None:
    h = hook(Kind.GRANT_EXPIRING)
    role = Role.objects.get(name="Operator")
    soon = Grant.objects.create(
        role=role, user=alice, scope="site", expires_at=timezone.now() + timedelta(hours=3)
    )
    Grant.objects.create(
        role=role, user=alice, scope="site", expires_at=timezone.now() + timedelta(days=3)
    )
    Grant.objects.create(role=role, user=alice, scope="site")  # never ends
    checks.check_grants()
    checks.check_grants()
    assert kinds() == [(h.pk, "grant.expiring")]
    data = Delivery.objects.get().payload
    assert (data["grant"], data["user"], data["role"]) == (soon.pk, "alice", "Operator")
    soon.expires_at = timezone.now() + timedelta(hours=5)  # extended: a new end
    soon.save()
    checks.check_grants()
    assert len(kinds()) == 2


def test_failed_logins_over_the_threshold_are_sent_once_per_run() -> None:
    h = hook(Kind.LOGIN_FAILURES, login_threshold=3)
    run = AccessAttempt.objects.create(
        username="root", ip_address="192.0.2.7", user_agent="curl", failures_since_start=2
    )
    checks.check_logins()
    assert kinds() == []
    run.failures_since_start = 4
    run.save()
    checks.check_logins()
    checks.check_logins()
    assert kinds() == [(h.pk, "login.failures")]
    data = Delivery.objects.get().payload
    assert (data["username"], data["ip_address"], data["failures"]) == ("root", "192.0.2.7", 4)
    run.delete()  # a success resets axes' record; the next run is news again
    AccessAttempt.objects.create(
        username="root", ip_address="192.0.2.7", user_agent="curl", failures_since_start=3
    )
    checks.check_logins()
    assert len(kinds()) == 2


def test_old_occurrences_of_grants_and_logins_and_old_deliveries_are_forgotten() -> None:
    from vmdash.hooks.models import Occurrence

    h = hook(Kind.GRANT_EXPIRING)
    long_ago = timezone.now() - timedelta(days=31)
    for key in ("grant:1:1", "login:1", "pool-full:lab:x", "host-down:lab"):
        Occurrence.objects.create(hook=h, key=key)
    Occurrence.objects.create(hook=h, key="grant:2:2")  # recent: stays
    Occurrence.objects.exclude(key="grant:2:2").update(created_at=long_ago)
    for state in ("delivered", "failed", "pending"):
        Delivery.objects.create(hook=h, kind="ping", state=state, next_try_at=long_ago)
    Delivery.objects.update(created_at=long_ago)
    assert checks.forget_old() == 4
    assert sorted(Occurrence.objects.values_list("key", flat=True)) == [
        "grant:2:2",
        "host-down:lab",
        "pool-full:lab:x",
    ]
    assert list(Delivery.objects.values_list("state", flat=True)) == ["pending"]
