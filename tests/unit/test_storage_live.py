"""The pools page's rows are a live region: the same partial, read by UUID."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import TESTNODE_URI
from vmdash.live.regions import registry, render_object
from vmdash.models import Host
from vmdash.virt.connection import pool as connections

pytestmark = pytest.mark.django_db


def test_a_pool_row_renders_from_its_uuid_like_the_page(as_alice: Client, lab: Host) -> None:
    as_alice.post(
        "/hosts/lab/storage/new/",
        {"name": "images", "type": "dir", "target_path": "/vmdash-t/images", "build": "on"},
    )
    p = connections().get(TESTNODE_URI).storagePoolLookupByName("images")
    region = registry().get("pool-row")
    assert region is not None
    row = region.read(lab.ref, p.UUIDString())
    html = render_object(region, lab.ref, row, True)
    assert f'id="pool-{p.UUIDString()}"' in html and 'data-op="stop"' in html
    assert 'data-op="stop"' not in render_object(region, lab.ref, row, False)
    p.destroy()
    p.undefine()
    assert region.read(lab.ref, p.UUIDString()) is None
