"""The live stream for a person whose rights come from a tag (gina: VM admin on
tag web, "No access" on db): rows of web VMs follow events, the others say
nothing, and a tag taken away with libvirt's own call stops the rows."""

from __future__ import annotations

from typing import Any

import libvirt
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import TESTNODE_URI
from tests.events.conftest import Publisher
from tests.events.test_consumer import on_host, row, subscribe
from vmdash.access.models import Grant, Role
from vmdash.models import Host
from vmdash.virt import domains as virt_domains
from vmdash.virt.connection import pool
from vmdash.virt.events import Change
from vmdash.virt.xml.tags import NS

pytestmark = pytest.mark.django_db(transaction=True)

WEB1 = "11111111-0000-4000-8000-000000000001"
DB = "11111111-0000-4000-8000-000000000002"
ODD = "11111111-0000-4000-8000-000000000003"
VM_ADMIN = ["view", "operate", "console", "console-view", "change", "snapshot", "create", "delete"]


def role(slug: str, actions: list[str], deny: bool = False) -> Role:
    """The built-in role (a transactional test flushes the migration's rows)."""
    found, _ = Role.objects.get_or_create(
        slug=slug, defaults={"name": slug, "actions": actions, "deny": deny, "builtin": True}
    )
    return found


@pytest.fixture
def gina(lab: Host) -> Client:
    virt_domains.set_tags(lab.ref, "web1", {"web"})
    virt_domains.set_tags(lab.ref, "db", {"web"})
    u = User.objects.create_user("gina", password="gina-pw-1")
    Grant.objects.create(user=u, role=role("vm-admin", VM_ADMIN), scope="tag", tag="web")
    Grant.objects.create(
        user=u, role=role("no-access", [], deny=True), scope="vm", host="lab",
        object_uuid=DB, object_name="db",
    )  # fmt: skip
    c = Client()
    c.force_login(u)
    c.get("/domains/")  # the list reads (and remembers) every VM's tags
    return c


async def test_a_tag_grant_hears_its_vms_and_nothing_else(
    layer: Any, ws: Any, publisher: Publisher, gina: Client
) -> None:
    comm = await ws(gina)
    await subscribe(comm, row(WEB1), row(DB), row(ODD))
    await on_host(lambda c: c.lookupByUUIDString(DB).create())
    await publisher.domain("lab", DB, "db", Change.STARTED, "booted")
    await publisher.domain("lab", ODD, "odd", Change.DEFINED, "updated")  # re-read, if visible
    assert await comm.receive_nothing(timeout=1.5)  # db: no access; odd: no tag

    await on_host(lambda c: c.lookupByUUIDString(WEB1).suspend())
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    pushed = await comm.receive_from(timeout=5)
    assert f'<tr id="dom-{WEB1}"' in pushed and 'data-state="paused"' in pushed
    assert 'hx-post="/hosts/lab/domains/web1/resume/"' in pushed  # VM admin may act


async def test_a_tag_taken_away_outside_vmdash_ends_the_rows(
    layer: Any, ws: Any, publisher: Publisher, gina: Client
) -> None:
    comm = await ws(gina)
    await subscribe(comm, row(WEB1))

    def untag(conn: libvirt.virConnect) -> None:
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | libvirt.VIR_DOMAIN_AFFECT_LIVE
        dom = conn.lookupByUUIDString(WEB1)
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None, NS, flags)
        dom.suspend()

    await on_host(untag)
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    received = await drained(comm)
    assert not any('data-state="paused"' in m for m in received)
    lab = await sync_to_async(Host.objects.get)()
    assert await sync_to_async(virt_domains.get_tags)(lab.ref, "web1") == set()


async def drained(comm: Any, quiet: float = 1.5) -> list[str]:
    """What the socket sends until it has been quiet for `quiet` seconds."""
    received: list[str] = []
    while not await comm.receive_nothing(timeout=quiet):
        received.append(await comm.receive_from(timeout=1))
    return received


def test_the_pool_connection_is_the_one_the_test_changes(lab: Host) -> None:
    assert pool().get(TESTNODE_URI) is pool().get(lab.uri)
