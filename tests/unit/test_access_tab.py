"""The Access tab of a VM, host, pool and network on libvirt's test driver.

Who may do what here and why, grants given and taken back right there
(audited, through the door), and who may see the tab at all: those who
manage access or read the audit there (as Proxmox's Permissions panel).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from tests.conftest import TESTNODE_URI, audit_entries
from tests.unit.test_grants import WEB1, dora, erin, frank, gina, grant, logged_in, person
from vmdash.access.models import Grant, Role
from vmdash.models import Host
from vmdash.virt import domains as virt_domains
from vmdash.virt.connection import pool as connections

pytestmark = pytest.mark.django_db
__all__ = ["dora", "erin", "frank", "gina"]  # fixtures, used by name

TAB = "/access/vm/lab/web1/"
POOL_XML = "<pool type='dir'><name>images</name><target><path>/vmdash-t/img</path></target></pool>"
NET_XML = (
    "<network><name>lan</name><bridge name='virbr9'/><ip address='10.9.0.1' prefix='24'/></network>"
)


def _row(page: str, person_name: str) -> str:
    found = re.search(rf'<tr data-person="{person_name}".*?</tr>', page, re.S)
    assert found, f"no row for {person_name}"
    return found.group(0)


@pytest.fixture
def vm_admin(lab: Host) -> User:
    """Host admin of lab: manages access there."""
    u = person("hana")
    grant("host-admin", user=u, scope="host", host="lab")
    return u


def test_the_tab_says_who_may_do_what_on_a_vm_and_why(
    as_alice: Client, dora: User, erin: User, frank: User, gina: User
) -> None:
    page = as_alice.get(TAB).content.decode()
    assert "Access to VM web1" in page
    assert 'data-action="view"' in _row(page, "dora") and "this VM" in _row(page, "dora")
    erin_row = _row(page, "erin")
    assert 'data-action="operate"' in erin_row and "through group ops" in erin_row
    gina_row = _row(page, "gina")
    assert 'data-action="delete"' in gina_row and "VM admin · tag web" in gina_row
    assert 'data-person="frank"' not in page  # an ended grant gives nothing...
    assert re.search(
        r'<tr id="grant-\d+" data-grant="\d+" class="muted expired"', page
    )  # ...greyed


def test_no_access_is_shown_as_such(as_alice: Client, gina: User) -> None:
    row = _row(as_alice.get("/access/vm/lab/db/").content.decode(), "gina")
    assert "No access" in row and "data-action" not in row


def test_a_host_tab_lists_host_and_site_grants_and_what_lets_people_see_it(
    as_alice: Client, dora: User, erin: User
) -> None:
    page = as_alice.get("/access/host/lab/").content.decode()
    assert "through group ops" in _row(page, "erin")
    assert "lets them see the host" in _row(page, "dora")


def test_a_grant_given_on_the_tab_works_at_once_and_is_audited(as_alice: Client, lab: Host) -> None:
    ivy = person("ivy")
    assert logged_in(ivy).get("/hosts/lab/domains/web1/").status_code == 404
    ends = (timezone.localtime() + timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%S")
    role = Role.objects.get(slug="console-user")
    r = as_alice.post(
        f"{TAB}grants/",
        {"user": ivy.pk, "role": role.pk, "expires_at": ends},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200 and 'id="access-panel"' in r.content.decode()
    g = Grant.objects.get(user=ivy)
    assert (g.scope, g.host, g.object_uuid, g.object_name) == ("vm", "lab", WEB1, "web1")
    assert g.expires_at is not None and g.expires_at.second == int(ends[-2:])  # seconds kept
    assert logged_in(ivy).get("/hosts/lab/domains/web1/").status_code == 200
    assert logged_in(ivy).get("/hosts/lab/domains/db/").status_code == 404
    entry = audit_entries().get(action="grant-add")
    assert entry.username == "alice" and entry.object_uuid == WEB1 and "ivy" in entry.message


def test_a_plain_post_redirects_back_to_the_tab(as_alice: Client, lab: Host) -> None:
    ops = Group.objects.create(name="ops")
    role = Role.objects.get(slug="viewer")
    r = as_alice.post(f"{TAB}grants/", {"group": ops.pk, "role": role.pk})
    assert r.status_code == 302 and r["Location"] == TAB
    assert Grant.objects.get(group=ops).object_uuid == WEB1


def test_bad_input_is_said_next_to_the_field_and_makes_nothing(as_alice: Client, lab: Host) -> None:
    role = Role.objects.get(slug="viewer")
    past = (timezone.localtime() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    r = as_alice.post(
        f"{TAB}grants/", {"role": role.pk, "expires_at": past}, HTTP_HX_REQUEST="true"
    )
    page = r.content.decode()
    assert r.status_code == 400
    assert "Choose a user or a group" in page and "This time has passed" in page
    assert not Grant.objects.exists()


def test_taking_a_grant_back_on_the_tab_ends_it_and_is_audited(
    as_alice: Client, dora: User
) -> None:
    g = Grant.objects.get(user=dora)
    r = as_alice.post(f"{TAB}grants/{g.pk}/remove/", HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and f'id="grant-{g.pk}"' not in r.content.decode()
    assert logged_in(dora).get("/hosts/lab/domains/web1/").status_code == 404
    assert audit_entries().get(action="grant-delete").object_uuid == WEB1


def test_a_grant_of_another_object_cannot_be_taken_back_through_this_tab(
    as_alice: Client, gina: User
) -> None:
    deny = Grant.objects.get(user=gina, role__slug="no-access")  # on db, not web1
    r = as_alice.post(f"{TAB}grants/{deny.pk}/remove/")
    assert r.status_code == 404
    assert Grant.objects.filter(pk=deny.pk).exists()


def test_a_host_admin_manages_here_but_not_grants_given_on_the_whole_site(
    vm_admin: User, lab: Host
) -> None:
    site = grant("viewer", user=person("sam"), scope="site")
    c = logged_in(vm_admin)
    page = c.get(TAB).content.decode()
    assert "Give a grant on this VM" in page
    assert f'action="{TAB}grants/{site.pk}/remove/"' not in page
    assert c.post(f"{TAB}grants/{site.pk}/remove/").status_code == 403
    assert Grant.objects.filter(pk=site.pk).exists()


def test_a_viewer_may_not_see_the_tab_and_sees_no_link_to_it(dora: User) -> None:
    c = logged_in(dora)
    assert c.get(TAB).status_code == 403
    assert 'data-tab="access"' not in c.get("/hosts/lab/domains/web1/").content.decode()
    role = Role.objects.get(slug="console-user")
    assert c.post(f"{TAB}grants/", {"user": dora.pk, "role": role.pk}).status_code == 403
    assert Grant.objects.filter(user=dora).count() == 1


def test_an_auditor_sees_the_tab_but_no_form(lab: Host) -> None:
    u = person("otto")
    grant("auditor", user=u, scope="host", host="lab")
    page = logged_in(u).get(TAB).content.decode()
    assert "Who may do what here" in page and "Give a grant" not in page
    assert "Take back" not in page


def test_the_vm_page_links_to_its_tab_for_those_who_manage_access(
    as_alice: Client, lab: Host
) -> None:
    page = as_alice.get("/hosts/lab/domains/web1/").content.decode()
    assert f'href="{TAB}" data-tab="access"' in page


def test_pools_and_networks_have_a_tab_too(as_alice: Client, lab: Host) -> None:
    conn = connections().get(TESTNODE_URI)
    conn.storagePoolDefineXML(POOL_XML).create()
    conn.networkDefineXML(NET_XML).create()
    role = Role.objects.get(slug="viewer")
    ivy = person("ivy")
    for url in ("/access/pool/lab/images/", "/access/network/lab/lan/"):
        assert as_alice.get(url).status_code == 200
        assert as_alice.post(f"{url}grants/", {"user": ivy.pk, "role": role.pk}).status_code == 302
    assert set(Grant.objects.filter(user=ivy).values_list("scope", flat=True)) == {
        "pool",
        "network",
    }
    c = logged_in(ivy)
    assert c.get("/hosts/lab/storage/images/").status_code == 200
    assert c.get("/hosts/lab/networks/lan/").status_code == 200
    for page in ("/hosts/lab/storage/images/", "/hosts/lab/networks/lan/", "/hosts/lab/"):
        assert 'data-tab="access"' in as_alice.get(page).content.decode(), page
    pool_uuid = conn.storagePoolLookupByName("images").UUIDString()
    assert Grant.objects.get(user=ivy, scope="pool").object_uuid == pool_uuid


def test_the_tab_rejects_get_on_its_posts(as_alice: Client, dora: User) -> None:
    assert as_alice.get(f"{TAB}grants/").status_code == 405
    g = Grant.objects.get(user=dora)
    assert as_alice.get(f"{TAB}grants/{g.pk}/remove/").status_code == 405


def test_a_host_admin_on_a_tag_gets_the_tab_of_the_tagged_vms_only(lab: Host) -> None:
    virt_domains.set_tags(lab.ref, "web1", {"web"})
    u = person("tom")
    grant("host-admin", user=u, scope="tag", tag="web")
    c = logged_in(u)
    assert 'data-tab="access"' in c.get("/hosts/lab/domains/web1/").content.decode()
    page = c.get(TAB).content.decode()
    assert "Host admin · tag web" in _row(page, "tom")
    assert c.get("/access/vm/lab/db/").status_code == 404  # db has no tag web


def test_a_viewer_sees_no_console_links_and_a_console_user_does(lab: Host) -> None:
    from tests.unit.test_grants import WEB1, grant, logged_in, person

    viewer, console = person("vera"), person("conny")
    grant("viewer", user=viewer, scope="vm", host="lab", object_uuid=WEB1, object_name="web1")
    grant("console-user", user=console, scope="vm", host="lab", object_uuid=WEB1,
          object_name="web1")  # fmt: skip
    link = 'href="/hosts/lab/domains/web1/console/"'
    assert link not in logged_in(viewer).get("/hosts/lab/domains/web1/").content.decode()
    assert link in logged_in(console).get("/hosts/lab/domains/web1/").content.decode()


def test_clone_and_delete_are_offered_to_who_may_do_them(lab: Host, alice: User) -> None:
    from tests.unit.test_grants import WEB1, grant, logged_in, person

    viewer = person("vic")
    grant("viewer", user=viewer, scope="vm", host="lab", object_uuid=WEB1, object_name="web1")
    links = (
        'href="/hosts/lab/domains/web1/clone/"',
        'href="/hosts/lab/domains/web1/delete-with-storage/"',
    )
    for link in links:
        assert link in logged_in(alice).get("/hosts/lab/domains/web1/").content.decode()
        assert link not in logged_in(viewer).get("/hosts/lab/domains/web1/").content.decode()
