"""The Devices tab's network interfaces card on libvirt's test driver: the
NICs and networks offered, refusals before libvirt is asked, and a driver
without virDomainAttachDeviceFlags (the test driver) said, not a 500. For
real: tests/integration/test_nics_real.py."""

from __future__ import annotations

import html

import lxml.html
import pytest
from django.test import Client

from tests.conftest import TESTNODE_URI
from vmdash.models import Host
from vmdash.virt import nics
from vmdash.virt.connection import pool

pytestmark = pytest.mark.django_db

URL = "/hosts/lab/domains/web1/"


@pytest.fixture
def lan(lab: Host) -> str:
    """A running network on the test driver's host (its world has none)."""
    conn = pool().get(TESTNODE_URI)
    conn.networkDefineXML(
        "<network><name>lan</name><bridge name='virbr-lan'/>"
        "<ip address='10.78.0.1' prefix='24'/></network>"
    ).create()
    return "lan"


def test_the_card_lists_the_nics_and_the_hosts_networks(lan: str, as_alice: Client) -> None:
    page = lxml.html.fromstring(as_alice.get(f"{URL}devices/").content)
    assert page.xpath("//section[@id='nics']//tr/@data-mac") == ["52:54:00:00:00:01"]
    offered = page.xpath("//form[@id='nic-add-form']//select[@name='network']/option/@value")
    assert offered == ["lan"]
    models = page.xpath("//form[@id='nic-add-form']//select[@name='model']/option/@value")
    assert models == list(nics.MODELS)


def test_a_driver_that_cannot_attach_says_so(lan: str, as_alice: Client) -> None:
    response = as_alice.post(f"{URL}nics/add/", {"network": lan, "model": "virtio"}, follow=True)
    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    assert "Cannot add a network interface to VM 'web1'" in text and "not supported" in text


@pytest.mark.parametrize(
    ("mac", "problem"),
    [
        ("", ""),
        ("52:54:00:12:34:56", ""),
        ("52-54-00-12-34-56", "six pairs"),
        ("03:00:00:00:00:01", "multicast"),
    ],
)
def test_mac_addresses(mac: str, problem: str) -> None:
    from django.utils import translation

    with translation.override("en"):
        said = nics.mac_problem(mac)
    assert (problem in said) if problem else said == ""
