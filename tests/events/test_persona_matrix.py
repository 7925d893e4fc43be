"""What each persona's live socket receives while VMs change on the real libvirtd.

Seven personas open /ws/events/ as the VM list and the overview do (the VM
table, the state totals, the host card) and also ask for the rows and
headers of every test VM, those they may not see included (a page's script
is the client's to change). Then VMs are started, forced off, defined and
undefined with the libvirt API directly (as virsh does), and every frame each
socket received is checked: nothing about an object the persona may not see
(rows, headers, toasts, counts, totals, resyncs), and what they may see does
arrive.

- alice, superuser: everything.
- bob, no grants; frank, a Console user grant on `dora`'s VM that ended an
  hour ago: nothing at all.
- dora, Viewer of one VM (`pm-dora`): that VM only; totals count it alone.
- erin, Operator on host `local` through the group `ops`: every VM.
- gina, VM admin on the tag `web` (pm-web1 and pm-web2 carry it) with
  "No access" on pm-web2: pm-web1 only.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from tests.console.conftest import ConsoleGuest as Guest
from tests.console.conftest import define_guest, undefine_guest
from tests.events.test_realhost import embedded, local  # noqa: F401 - fixtures
from tests.realhost import remove_domain
from vmdash.access.models import Grant, Role
from vmdash.live.service import embedded_service
from vmdash.models import Host
from vmdash.virt.domains import set_tags

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.libvirtd]

# Guests named vmdash-tc-con-pm-*: a unit-test session (which takes no libvirtd
# lock) sweeps vmdash-t-* when it starts, and would remove these mid-test.
PREFIX = "vmdash-tc-con-"
PERSONAS = ("alice", "bob", "dora", "erin", "frank", "gina")
GUESTS = ("pm-web1", "pm-web2", "pm-dora")
ROW = re.compile(r'id="dom-(?:head-)?([0-9a-f-]{36})"')
TOTAL = re.compile(r"</span> (\d+)</a></li>")
VM_TOTAL = re.compile(r"\?host=local\">(\d+)</a>")


@dataclass
class Socket:
    name: str
    comm: Any
    frames: list[str] = field(default_factory=list)

    async def read(self, quiet: float) -> None:
        """Every frame until none came for `quiet` seconds."""
        while True:
            try:
                self.frames.append(await self.comm.receive_from(timeout=quiet))
            except TimeoutError:
                return

    async def until(self, check: Callable[[str], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(check(f) for f in self.frames):
            left = deadline - time.monotonic()
            toasts = re.findall(r"toast-text\">(.*?)<", self.text)
            assert left > 0, f"{self.name}: no awaited frame came; toasts: {toasts}"
            try:
                self.frames.append(await self.comm.receive_from(timeout=left))
            except TimeoutError:
                continue

    @property
    def text(self) -> str:
        return "\n".join(self.frames)


@pytest.fixture
def make_guest(system_conn: object, guest_files: Path) -> Iterator[Callable[[str], Guest]]:
    """Define (not start) a real test guest; removed after the test."""
    made: list[Guest] = []

    def make(suffix: str) -> Guest:
        made.append(define_guest(guest_files, suffix))
        return made[-1]

    yield make
    for guest in made:
        undefine_guest(guest)


def _grant(role: str, **kw: Any) -> Grant:
    return Grant.objects.create(role=Role.objects.get(slug=role), **kw)


def _personas(host: Host, guests: dict[str, Guest], uuids: dict[str, str]) -> dict[str, Client]:
    """The personas on host `local`."""
    clients = {"alice": User.objects.create_superuser("alice", password="alice-pw-1")}
    for name in PERSONAS[1:]:
        clients[name] = User.objects.create_user(name, password=f"{name}-pw-1")
    vm = {"scope": "vm", "host": "local"}
    _grant(
        "viewer", user=clients["dora"], object_uuid=uuids["pm-dora"], object_name="pm-dora", **vm
    )
    ops = Group.objects.create(name="ops")
    clients["erin"].groups.add(ops)
    _grant("operator", group=ops, scope="host", host="local")
    _grant(
        "console-user",
        user=clients["frank"],
        object_uuid=uuids["pm-dora"],
        object_name="pm-dora",
        expires_at=timezone.now() - timedelta(hours=1),
        **vm,
    )
    gina = clients["gina"]
    for name in ("pm-web1", "pm-web2"):  # in their <metadata>, as the VM page does
        set_tags(host.ref, guests[name].name, {"web"})
    _grant("vm-admin", user=gina, scope="tag", tag="web")
    _grant("no-access", user=gina, object_uuid=uuids["pm-web2"], object_name="pm-web2", **vm)
    logged_in = {}
    for name, user in clients.items():
        c = Client()
        c.force_login(user)
        logged_in[name] = c
    return logged_in


def _regions(uuids: dict[str, str]) -> list[dict[str, str]]:
    regions = [
        {"region": "domain-table"},
        {"region": "state-totals"},
        {"region": "host-card", "host": "local"},
    ]
    for uuid in uuids.values():
        regions += [
            {"region": "domain-row", "host": "local", "uuid": uuid},
            {"region": "domain-header", "host": "local", "uuid": uuid},
        ]
    return regions


async def _open(ws: Any, clients: dict[str, Client], uuids: dict[str, str]) -> dict[str, Socket]:
    sockets = {name: Socket(name, await ws(c)) for name, c in clients.items()}
    regions = _regions(uuids)
    for s in sockets.values():
        await s.comm.send_to(text_data=json.dumps({"type": "subscribe", "regions": regions}))
    deadline = time.monotonic() + 30
    while not (
        (svc := embedded_service()) and (w := svc.watchers.get("local")) and w.connected.is_set()
    ):
        assert time.monotonic() < deadline, "the events service did not connect"
        await asyncio.sleep(0.05)
    for s in sockets.values():  # a resync, as after a reconnect: it must be filtered too
        await s.comm.send_to(
            text_data=json.dumps({"type": "subscribe", "regions": regions, "resync": True})
        )
    await sockets["alice"].until(lambda f: "vmdash-live resync local" in f)
    return sockets


def _state_frame(uuid: str, state: str) -> Callable[[str], bool]:
    return lambda f: f'id="dom-{uuid}"' in f and f'data-state="{state}"' in f


async def test_each_persona_hears_only_of_what_they_may_see(
    embedded: Any,  # noqa: F811 - the fixture
    ws: Any,
    local: Host,  # noqa: F811 - the fixture
    make_guest: Any,
) -> None:
    guests = {n: await sync_to_async(make_guest)(n) for n in GUESTS}
    uuids = {n: await sync_to_async(lambda g=g: g.dom().UUIDString())() for n, g in guests.items()}
    clients = await sync_to_async(_personas)(local, guests, uuids)
    sockets = await _open(ws, clients, uuids)

    alice, dora, gina = sockets["alice"], sockets["dora"], sockets["gina"]
    virsh = sync_to_async(lambda name, op: getattr(guests[name].dom(), op)())
    for name in GUESTS:  # virsh start
        await virsh(name, "create")
    for name in GUESTS:  # each step reached the superuser before the next
        await alice.until(_state_frame(uuids[name], "running"))
    await dora.until(_state_frame(uuids["pm-dora"], "running"))
    late = await sync_to_async(make_guest)("pm-late")  # virsh define
    late_uuid = await sync_to_async(lambda: late.dom().UUIDString())()
    await alice.until(lambda f: f"{PREFIX}pm-late was defined" in f)
    for name in GUESTS:  # virsh destroy
        await virsh(name, "destroy")
    for name in GUESTS:
        await alice.until(_state_frame(uuids[name], "shutoff"))
    await sync_to_async(lambda: remove_domain(late.dom()))()  # virsh undefine
    await alice.until(lambda f: f"{PREFIX}pm-late was deleted" in f)
    await dora.until(_state_frame(uuids["pm-dora"], "shutoff"))
    await gina.until(_state_frame(uuids["pm-web1"], "shutoff"))
    await asyncio.gather(*(s.read(quiet=2.0) for s in sockets.values()))  # ...and the rest

    everything = {*uuids.values(), late_uuid}
    may_see = {
        "alice": everything,
        "erin": everything,
        "dora": {uuids["pm-dora"]},
        "gina": {uuids["pm-web1"]},
        "bob": set(),
        "frank": set(),
    }
    names = {uuid: name for name, uuid in uuids.items()} | {late_uuid: "pm-late"}
    for persona, s in sockets.items():
        seen = {u for u in ROW.findall(s.text)} & everything
        assert seen <= may_see[persona], (persona, [names[u] for u in seen - may_see[persona]])
        for uuid in everything - may_see[persona]:
            name = f"{PREFIX}{names[uuid]}"
            assert uuid not in s.text and name not in s.text, (persona, name)
        if persona not in ("alice", "erin"):
            assert not _other_vms(s.text, everything), persona  # the host's other VMs

    for persona in ("alice", "erin"):
        for name in GUESTS:
            assert f"{PREFIX}{name} was started outside vmdash." in sockets[persona].text
    assert f"{PREFIX}pm-dora was started outside vmdash." in dora.text
    assert f"{PREFIX}pm-dora was forced off outside vmdash." in dora.text
    assert f"{PREFIX}pm-web1 was forced off outside vmdash." in gina.text
    for persona in ("bob", "frank"):
        assert not _mentions_vms(sockets[persona].text), (persona, sockets[persona].frames[:3])
    # Counts: what dora is told of the host counts her one VM, never the others.
    for n in TOTAL.findall(_region(dora.frames, 'id="state-totals"')):
        assert int(n) <= 1, ("dora's totals", n)
    for n in VM_TOTAL.findall(_region(dora.frames, 'id="host-local"')):
        assert int(n) == 1, ("dora's host card", n)


def _mentions_vms(text: str) -> bool:
    return bool(ROW.search(text)) or "vmdash-t" in text or "data-live-toast" in text


def _other_vms(text: str, mine: set[str]) -> set[str]:
    """VMs on the host that are not this test's (other tests' guests, the host's own)."""
    return set(ROW.findall(text)) - mine


def _region(frames: list[str], marker: str) -> str:
    return "\n".join(f for f in frames if marker in f)
