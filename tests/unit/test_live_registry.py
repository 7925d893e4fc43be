"""Apps declare their live regions; vmdash/live routes events to them and
imports no app. A region registered here, from a test module, gets its
events like the apps' own (libvirt's test driver; an in-memory layer)."""

# ruff: noqa: F811 - the fixtures imported from tests/events are used as arguments
from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.test import Client

from tests.conftest import TESTNODE_URI
from tests.events.conftest import Publisher, layer, publisher, ws  # noqa: F401 - fixtures
from vmdash.live.regions import ObjectRegion, register, registry
from vmdash.models import Host
from vmdash.virt.connection import pool
from vmdash.virt.events import Change, read_domain

pytestmark = pytest.mark.django_db(transaction=True)

WEB1 = "11111111-0000-4000-8000-000000000001"
LIVE = Path(__file__).resolve().parents[2] / "vmdash" / "live"


@pytest.fixture
def vcpus_region(settings: Any) -> Iterator[ObjectRegion]:
    settings.TEMPLATES = [
        {
            **django_settings.TEMPLATES[0],
            "DIRS": [
                *django_settings.TEMPLATES[0]["DIRS"],
                str(Path(__file__).parent / "templates"),
            ],
        }
    ]
    region = ObjectRegion(
        name="test-vcpus",
        element_id="vcpus-{uuid}",
        partial="live_test/_vcpus.html",
        read=read_domain,
        context=lambda host, d, may_act: {"d": d},
        act=None,
        tag="span",
    )
    register(region)
    yield region
    registry().unregister(region.name)


async def test_a_region_registered_outside_vmdash_gets_its_events(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client, vcpus_region: Any
) -> None:
    comm = await ws(as_alice)
    regions = [{"region": "test-vcpus", "host": "lab", "uuid": WEB1}]
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "regions": regions}))
    await asyncio.sleep(0.1)
    await sync_to_async(
        lambda: pool().get(TESTNODE_URI).lookupByUUIDString(WEB1).suspend(),
        thread_sensitive=False,
    )()
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    pushed = await comm.receive_from(timeout=5)
    assert f'<span id="vcpus-{WEB1}" data-state="paused">' in pushed


async def test_once_unregistered_a_region_is_ignored(
    layer: Any, ws: Any, publisher: Publisher, lab: Host, as_alice: Client, vcpus_region: Any
) -> None:
    registry().unregister(vcpus_region.name)
    comm = await ws(as_alice)
    regions = [{"region": "test-vcpus", "host": "lab", "uuid": WEB1}]
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "regions": regions}))
    await asyncio.sleep(0.1)
    await publisher.domain("lab", WEB1, "web1", Change.SUSPENDED, "paused")
    assert await comm.receive_nothing(timeout=1)


def test_the_apps_declare_the_regions_of_their_pages() -> None:
    registry().discover()
    names = set(registry().regions)
    assert {"domain-table", "domain-row", "domain-header", "domain-facts"} <= names
    assert {"host-card", "host-facts", "state-totals"} <= names


def test_vmdash_live_imports_no_app() -> None:
    repo = LIVE.parents[1]
    tops = {a.split(".")[0] for a in django_settings.INSTALLED_APPS}
    apps = {a for a in tops if (repo / a / "apps.py").exists()} - {"vmdash"}
    assert {"domains", "hosts"} <= apps
    for source in LIVE.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            for name in names:
                assert name.split(".")[0] not in apps, f"{source.name} imports {name}"


def test_nothing_in_vmdash_imports_the_domains_app() -> None:
    """The groundwork issue's check, word for word: the VM pages are an app on
    top of vmdash, and vmdash names its own layer (vmdash.virt.domains) only by
    its full path."""
    import subprocess

    found = subprocess.run(
        ["grep", "-rn", r"from domains\|import domains", str(LIVE.parent)],
        capture_output=True,
        text=True,
    )
    assert found.returncode == 1, found.stdout
