"""Roles granted to users and groups on the site, a host or one VM, maybe until a time.

Personas (issue 10): dora (Viewer of one VM), erin (Operator on host lab,
through a group), frank (Console user whose grant ended an hour ago), gina
(VM admin on tag `web`, with "No access" on one web VM). Tags are set in
the VMs' libvirt <metadata> through vmdash/virt/domains.py. Pages are asked through
the Django test client on libvirt's test driver; what they may do is what
the door answers, not what the template shows.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from vmdash.access.models import Grant, Role
from vmdash.door import load_who
from vmdash.models import Host
from vmdash.policy import Action, can
from vmdash.virt import domains as virt_domains
from vmdash.virt.refs import DomainRef, HostRef

pytestmark = pytest.mark.django_db

WEB1 = "11111111-0000-4000-8000-000000000001"
WEIRD = "it%27s%20%3Cb%3E%26%20%22%C3%BCn%C3%AF%20c%C3%B6d%C3%A9%22"
DB = "11111111-0000-4000-8000-000000000002"


def grant(
    role: str, *, user: User | None = None, group: Group | None = None, **kw: object
) -> Grant:
    return Grant.objects.create(role=Role.objects.get(slug=role), user=user, group=group, **kw)


def person(name: str) -> User:
    return User.objects.create_user(name, password=f"{name}-pw-1")


def logged_in(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def dora(lab: Host) -> User:
    u = person("dora")
    grant("viewer", user=u, scope="vm", host="lab", object_uuid=WEB1, object_name="web1")
    return u


@pytest.fixture
def erin(lab: Host) -> User:
    u = person("erin")
    ops = Group.objects.create(name="ops")
    u.groups.add(ops)
    grant("operator", group=ops, scope="host", host="lab")
    return u


@pytest.fixture
def frank(lab: Host) -> User:
    u = person("frank")
    grant(
        "console-user",
        user=u,
        scope="vm",
        host="lab",
        object_uuid=WEB1,
        object_name="web1",
        expires_at=timezone.now() - timedelta(hours=1),
    )
    return u


@pytest.fixture
def gina(lab: Host) -> User:
    """VM admin on tag web (web1 and db carry it), with "No access" on db."""
    virt_domains.set_tags(lab.ref, "web1", {"web"})
    virt_domains.set_tags(lab.ref, "db", {"web", "backup"})
    u = person("gina")
    grant("vm-admin", user=u, scope="tag", tag="web")
    grant("no-access", user=u, scope="vm", host="lab", object_uuid=DB, object_name="db")
    return u


def test_the_built_in_roles_exist() -> None:
    names = set(Role.objects.values_list("slug", flat=True))
    assert {"viewer", "console-user", "operator", "vm-admin", "host-admin", "auditor"} <= names
    assert Role.objects.get(slug="no-access").deny


def test_a_viewer_of_one_vm_sees_it_and_nothing_else(dora: User) -> None:
    c = logged_in(dora)
    assert c.get("/hosts/lab/domains/web1/").status_code == 200
    assert c.get("/hosts/lab/domains/db/").status_code == 404
    listing = c.get("/domains/").content.decode()
    assert "web1" in listing and ">db<" not in listing
    assert c.post("/hosts/lab/domains/web1/shutdown/").status_code == 403
    assert c.get("/hosts/lab/domains/web1/console/").status_code == 403


def test_a_group_grant_on_a_host_reaches_every_vm_of_it(erin: User) -> None:
    c = logged_in(erin)
    assert c.post("/hosts/lab/domains/db/start/", HTTP_HX_REQUEST="true").status_code == 200
    assert c.post("/hosts/lab/domains/db/delete/", {"confirm": "db"}).status_code == 403
    assert c.get("/hosts/add/").status_code == 403
    assert c.get("/audit/").status_code == 403


def test_an_ended_grant_gives_nothing(frank: User) -> None:
    c = logged_in(frank)
    assert c.get("/hosts/lab/domains/web1/").status_code == 404
    assert c.get("/hosts/lab/").status_code == 404


def test_no_access_wins_over_a_wider_grant(gina: User) -> None:
    c = logged_in(gina)
    assert c.get("/hosts/lab/domains/web1/").status_code == 200
    assert c.get("/hosts/lab/domains/db/").status_code == 404
    assert c.post("/hosts/lab/domains/db/start/").status_code == 404
    assert ">db<" not in c.get("/domains/").content.decode()


def test_a_grant_on_a_tag_reaches_the_vms_carrying_it_and_no_other(gina: User) -> None:
    c = logged_in(gina)
    listing = c.get("/domains/").content.decode()
    assert ">web1</a>" in listing and "ünï" not in listing
    assert c.post("/hosts/lab/domains/web1/pause/", HTTP_HX_REQUEST="true").status_code == 200
    assert c.get(f"/hosts/lab/domains/{WEIRD}/").status_code == 404
    assert c.get("/hosts/lab/").status_code == 200  # a tag may be on any host's VMs


def test_taking_the_tag_away_takes_the_grant_away(gina: User, lab: Host) -> None:
    c = logged_in(gina)
    assert c.get("/hosts/lab/domains/web1/").status_code == 200
    virt_domains.set_tags(lab.ref, "web1", set())
    assert c.get("/hosts/lab/domains/web1/").status_code == 404
    assert ">web1</a>" not in c.get("/domains/").content.decode()


def test_a_no_access_on_a_tag_refuses_even_a_host_admin(lab: Host) -> None:
    virt_domains.set_tags(lab.ref, "db", {"secret"})
    u = person("hal")
    grant("host-admin", user=u, scope="host", host="lab")
    grant("no-access", user=u, scope="tag", tag="secret")
    c = logged_in(u)
    assert c.get("/hosts/lab/domains/db/").status_code == 404
    assert c.get("/hosts/lab/domains/web1/").status_code == 200
    who = load_who(u)
    assert not can(who, Action.VIEW, DomainRef("lab", "db", DB))  # tags unknown: refused
    assert can(who, Action.VIEW, DomainRef("lab", "web1", WEB1, frozenset()))


def test_a_tag_grant_gives_nothing_on_a_ref_without_tags(gina: User) -> None:
    who = load_who(gina)
    assert not can(who, Action.VIEW, DomainRef("lab", "web1", WEB1))
    assert can(who, Action.CHANGE, DomainRef("lab", "web1", WEB1, frozenset({"web"})))
    assert not can(who, Action.CHANGE, DomainRef("lab", "db", DB, frozenset({"web"})))


def test_a_grant_follows_the_vm_by_uuid_not_by_name(dora: User) -> None:
    who = load_who(dora)
    assert can(who, Action.VIEW, DomainRef("lab", "renamed", WEB1))
    assert not can(who, Action.VIEW, DomainRef("lab", "web1", DB))


def test_a_grant_runs_out_while_the_who_is_held(lab: Host) -> None:
    u = person("ivy")
    g = grant(
        "viewer",
        user=u,
        scope="host",
        host="lab",
        expires_at=timezone.now() + timedelta(seconds=60),
    )
    who = load_who(u)
    assert can(who, Action.VIEW, HostRef("lab", lab.uri))
    assert who.next_expiry == pytest.approx(g.expires_at.timestamp())
    Grant.objects.filter(pk=g.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not can(load_who(u), Action.VIEW, HostRef("lab", lab.uri))


def test_a_superuser_needs_no_grant(lab: Host) -> None:
    root = User.objects.create_superuser("root", password="root-pw-1")
    assert can(load_who(root), Action.MANAGE_ACCESS, HostRef("lab", lab.uri))


def test_deleting_a_group_with_grants_takes_them_away(erin: User) -> None:
    Group.objects.get(name="ops").delete()
    assert not Grant.objects.filter(scope="host").exists()
    assert logged_in(erin).get("/hosts/lab/domains/db/").status_code == 404


def test_a_console_held_through_a_tag_is_checked_with_the_vms_tags(gina: User) -> None:
    from vmdash.door import console_allowed

    who = load_who(gina)
    bare = DomainRef("lab", "web1", WEB1)  # as a ticket or a session names it: no tags
    assert console_allowed(who, bare, view_only=False)
    assert not console_allowed(who, DomainRef("lab", "db", DB), view_only=True)


def test_the_grant_form_gives_a_grant_on_a_tag(gina: User) -> None:
    from vmdash.access.forms import GrantForm

    u = person("ivan")
    data = {"user": u.pk, "role": Role.objects.get(slug="viewer").pk, "scope": "tag"}
    refused = GrantForm({**data, "tag": "not a tag"})
    assert not refused.is_valid() and "tag" in refused.errors
    form = GrantForm({**data, "tag": "web"})
    assert form.is_valid(), form.errors
    made = form.grant(by=None)
    assert (made.scope, made.tag, made.host) == ("tag", "web", "")
    assert logged_in(u).get("/hosts/lab/domains/web1/").status_code == 200
