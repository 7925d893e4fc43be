"""Tags on the real libvirtd: in the definition `virsh dumpxml` shows, live and
in the config of a running guest, and a change made with `virsh metadata`
reaches the list (libvirt's metadata event), the page and the policy."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import libvirt
import lxml.html
from django.contrib.auth.models import User
from django.test import Client

from tests.realhost import Guest, fresh_conn, start_domain, wait_until
from vmdash.access.models import Grant, Role
from vmdash.models import Host
from vmdash.virt import domains as virt_domains
from vmdash.virt.xml.domain import DomainXML
from vmdash.virt.xml.tags import NS


def virsh(*args: str) -> str:
    out = subprocess.run(
        ["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=True
    )
    return out.stdout


def listed_tags(host: Host, name: str) -> frozenset[str] | None:
    """The VM's tags as the list has them (None: not in this read of the list)."""
    return next((d.tags for d in virt_domains.list_domains(host.ref) if d.name == name), None)


def test_tags_of_a_running_guest_show_in_virsh_dumpxml(
    local: Host, make_guest: Callable[..., Guest], as_alice: Client
) -> None:
    guest = make_guest()
    start_domain(fresh_conn().lookupByName(guest.name))
    response = as_alice.post(f"/hosts/local/domains/{guest.name}/tags/", {"tags": "web lab"})
    assert response.status_code == 302
    for flags in ((), ("--inactive",)):
        text = virsh("dumpxml", *flags, guest.name)
        assert f'<vmdash:tags xmlns:vmdash="{NS}">' in text
        assert DomainXML.parse(text).tags == {"web", "lab"}


def test_a_virsh_metadata_change_reaches_the_list_and_the_policy(
    local: Host, make_guest: Callable[..., Guest]
) -> None:
    guest = make_guest()
    assert listed_tags(local, guest.name) == set()  # read once, then remembered
    gina = User.objects.create_user("gina", password="gina-pw-1")
    Grant.objects.create(user=gina, role=Role.objects.get(slug="vm-admin"), scope="tag", tag="web")
    c = Client()
    c.force_login(gina)
    assert c.get(f"/hosts/local/domains/{guest.name}/").status_code == 404
    virsh(
        "metadata", guest.name, NS, "--key", "vmdash", "--config",
        "--set", "<tags><tag>web</tag></tags>",
    )  # fmt: skip
    wait_until(lambda: listed_tags(local, guest.name) == {"web"}, 5, "the metadata event")
    assert c.get(f"/hosts/local/domains/{guest.name}/").status_code == 200
    # A list whose host did not answer (VMDASH_HOST_TIMEOUT) is read again;
    # any other answer is the answer. (The "a host is unreachable" once seen
    # here was a VM of another worker vanishing mid-list, fixed in
    # virt/domains.list_domains; the alerts are in the message if it recurs.)
    deadline = time.monotonic() + 20
    while True:
        page = lxml.html.fromstring(c.get("/domains/").content)
        alerts = [a.text_content().strip() for a in page.xpath("//*[@role='alert']")]
        unanswered = page.xpath("//*[contains(@class, 'host-unreachable')]")
        if not unanswered or time.monotonic() > deadline:
            break
    assert page.xpath("//tbody//a[text()=$name]", name=guest.name), alerts or "not listed"


def test_a_redefinition_with_other_tags_is_seen(
    local: Host, make_guest: Callable[..., Guest]
) -> None:
    guest = make_guest()
    virt_domains.set_tags(local.ref, guest.name, {"old"})
    assert listed_tags(local, guest.name) == {"old"}
    conn = fresh_conn()
    doc = DomainXML.parse(conn.lookupByName(guest.name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    doc.tags = {"new"}
    conn.defineXML(doc.tostring())  # as `virsh define` would: a DEFINED event
    wait_until(lambda: listed_tags(local, guest.name) == {"new"}, 5, "the defined event")
