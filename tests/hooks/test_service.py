"""From libvirt to the receiver through the events service, on libvirt's test
driver (test:///default: one world per process, so a change made through
one connection is an event on the watcher's)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest
from asgiref.sync import sync_to_async

from tests.hooks.receiver import Receiver
from tests.hooks.service import events_service
from vmdash.hooks.kinds import Kind
from vmdash.hooks.models import Delivery, Hook
from vmdash.virt.refs import HostRef

pytestmark = pytest.mark.django_db(transaction=True)

DEMO = HostRef("demo", "test:///default")
XML = (
    "<domain type='test'><name>vmdash-t-hook</name><memory>65536</memory>"
    "<os><type arch='x86_64'>hvm</type></os></domain>"
)


@pytest.fixture
def demo_vm() -> Iterator[libvirt.virDomain]:
    conn = libvirt.open(DEMO.uri)
    dom = conn.defineXML(XML)
    dom.create()
    yield dom
    if dom.isActive():
        dom.destroy()
    dom.undefine()
    conn.close()


async def test_a_vm_destroyed_on_the_test_driver_is_delivered_signed(
    receiver: Receiver, demo_vm: libvirt.virDomain
) -> None:
    hook = await sync_to_async(Hook.objects.create)(
        name="ops", url=receiver.url, events=[Kind.VM_STOPPED, Kind.HOST_BACK]
    )
    async with events_service(lambda: [DEMO]):
        await asyncio.to_thread(demo_vm.destroy)
        (got,) = await asyncio.to_thread(receiver.wait_for, 1)
    assert got.signed_by(hook.secret) and got.headers["X-Vmdash-Event"] == "vm.stopped"
    data = got.json["data"]
    assert (data["host"], data["vm"], data["detail"]) == ("demo", "vmdash-t-hook", "destroyed")
    assert data["uuid"] == demo_vm.UUIDString()
    assert len(receiver.got) == 1  # the first connection is no "host back"


async def test_send_test_is_delivered_by_the_service(receiver: Receiver, settings: Any) -> None:
    from vmdash.hooks.queue import send_test

    hook = await sync_to_async(Hook.objects.create)(name="ops", url=receiver.url, events=[])
    async with events_service(lambda: [DEMO]):
        delivery = await sync_to_async(send_test)(hook, "alice")
        (got,) = await asyncio.to_thread(receiver.wait_for, 1)
        await asyncio.sleep(0.2)
    assert got.json["event"] == "ping" and got.signed_by(hook.secret)
    await sync_to_async(delivery.refresh_from_db)()
    assert delivery.state == Delivery.State.DELIVERED


async def test_the_service_checks_pools_now_and_then(receiver: Receiver, settings: Any) -> None:
    settings.VMDASH_HOOK_CHECK_INTERVAL = 0.2
    await sync_to_async(Hook.objects.create)(
        name="ops", url=receiver.url, events=[Kind.POOL_FULL], pool_threshold=1
    )
    conn = libvirt.open(DEMO.uri)
    vol = conn.storagePoolLookupByName("default-pool").createXML(
        "<volume><name>vmdash-t-hookvol</name><capacity unit='G'>5</capacity>"
        "<allocation unit='G'>5</allocation></volume>"
    )
    try:
        async with events_service(lambda: [DEMO]):
            (got,) = await asyncio.to_thread(receiver.wait_for, 1)
            await asyncio.sleep(0.6)  # more checks: still once
    finally:
        vol.delete()
        conn.close()
    assert got.json["event"] == "pool.full" and got.json["data"]["used_percent"] == 5
    assert len(receiver.got) == 1
