from __future__ import annotations

import pytest
from django.test import Client

from vmdash.models import Host


@pytest.fixture
def local(db: None, system_conn: object) -> Host:
    """The real libvirtd as a vmdash host."""
    return Host.objects.create(slug="local", name="This machine", uri="qemu:///system")


@pytest.fixture
def client(as_alice: Client) -> Client:
    return as_alice
