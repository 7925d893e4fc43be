"""The done-when of webhooks, on the real libvirtd: a guest stopped with
`virsh destroy` (not through vmdash) reaches a real HTTP receiver, signed,
through the events service; a receiver that fails twice gets it on the
third try, and what happened next waits its turn."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.hooks.receiver import Receiver
from tests.hooks.service import events_service
from tests.realhost import SYSTEM_URI, Guest, start_domain
from vmdash.hooks.kinds import Kind
from vmdash.hooks.models import Delivery, Hook
from vmdash.models import Host
from vmdash.virt.domains import set_tags
from vmdash.virt.refs import HostRef

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.libvirtd]

LOCAL = HostRef("local", SYSTEM_URI, "This machine")


def virsh_destroy(name: str) -> float:
    """`virsh destroy` as an admin types it; when it returned (monotonic)."""
    subprocess.run(["virsh", "-c", SYSTEM_URI, "destroy", name], check=True, capture_output=True)
    return time.monotonic()


async def running_guest(make_guest: Any, tag: str) -> Guest:
    """A started guest carrying `tag`: the hooks here hear of it alone (other
    test workers start and stop guests on the same libvirtd meanwhile)."""
    guest: Guest = await sync_to_async(make_guest)()
    await sync_to_async(Host.objects.get_or_create)(slug="local", defaults={"uri": SYSTEM_URI})
    await asyncio.to_thread(set_tags, LOCAL, guest.name, {tag})
    await asyncio.to_thread(lambda: start_domain(guest.dom()))
    return guest


async def test_a_guest_destroyed_from_virsh_is_delivered_signed_within_2_s(
    receiver: Receiver, make_guest: Any, system_conn: object
) -> None:
    hook = await sync_to_async(Hook.objects.create)(
        name="ops", url=receiver.url, events=[Kind.VM_STOPPED, Kind.VM_CRASHED], vm_tag="hooked"
    )
    guest = await running_guest(make_guest, "hooked")
    async with events_service(lambda: [LOCAL]):
        destroyed = await asyncio.to_thread(virsh_destroy, guest.name)
        (got,) = await asyncio.to_thread(receiver.wait_for, 1, 10)
    # The done-when, measured from virsh's return to the POST's arrival.
    assert got.at - destroyed < 2.0
    assert got.signed_by(hook.secret)
    assert (got.headers["X-Vmdash-Event"], got.json["event"]) == ("vm.stopped", "vm.stopped")
    data = got.json["data"]
    assert (data["host"], data["vm"], data["change"], data["detail"]) == (
        "local",
        guest.name,
        "stopped",
        "destroyed",
    )
    assert data["uuid"] == await asyncio.to_thread(lambda: guest.dom().UUIDString())


async def test_a_receiver_that_fails_twice_gets_it_on_the_third_try_and_in_order(
    receiver: Receiver, make_guest: Any, system_conn: object, settings: Any
) -> None:
    # Slow enough retries that the second stop is queued while the first retries.
    settings.VMDASH_HOOK_RETRY_BASE = 1.0
    settings.VMDASH_HOOK_RETRY_CAP = 2.0
    hook = await sync_to_async(Hook.objects.create)(
        name="flaky", url=receiver.url, events=[Kind.VM_STOPPED], vm_tag="flaky"
    )
    receiver.answer(500, 500)
    guest = await running_guest(make_guest, "flaky")
    async with events_service(lambda: [LOCAL]):
        await asyncio.to_thread(virsh_destroy, guest.name)
        await asyncio.to_thread(receiver.wait_for, 1, 10)  # the first try failed
        await asyncio.to_thread(lambda: start_domain(guest.dom()))
        await asyncio.to_thread(virsh_destroy, guest.name)
        got = await asyncio.to_thread(receiver.wait_for, 4, 20)
        await asyncio.sleep(0.3)  # the sender writes the outcome after the answer
    first, second = await sync_to_async(lambda: list(Delivery.objects.order_by("id")))()
    assert [(g.json["id"], g.headers["X-Vmdash-Attempt"], g.status) for g in got] == [
        (first.pk, "1", 500),
        (first.pk, "2", 500),
        (first.pk, "3", 200),
        (second.pk, "1", 200),
    ]
    assert all(g.signed_by(hook.secret) for g in got)
    assert len({g.body for g in got[:3]}) == 1  # every try sends the same signed bytes
    assert got[1].at - got[0].at >= 0.9 and got[2].at - got[1].at >= 1.9  # backoff 1 s, 2 s
    assert (first.state, first.attempts, first.status_code) == (Delivery.State.DELIVERED, 3, 200)
    assert (second.state, second.attempts) == (Delivery.State.DELIVERED, 1)
