"""The XML editor and the History tab on libvirt's test driver: what libvirt
stores after each apply, the guard against a change made meanwhile (as
`virsh define` would), what is refused and why, the versions kept (by whom,
outside vmdash), comparing two, and reverting, checked through libvirt."""

from __future__ import annotations

import libvirt
import lxml.html
import pytest
from django.contrib.auth.models import User
from django.test import Client

from domains import versions
from domains.models import DomainVersion
from tests.conftest import TESTNODE_URI
from tests.unit.test_grants import dora
from vmdash.models import AuditEntry, Host
from vmdash.virt import definition
from vmdash.virt.connection import pool
from vmdash.virt.events import Change, ObjectEvent, ObjectKind

__all__ = ["dora"]  # a persona (tests/unit/test_grants.py), used by name

pytestmark = pytest.mark.django_db

XML = "/hosts/lab/domains/{}/xml/"
HISTORY = "/hosts/lab/domains/{}/history/"
HTMX = {"HTTP_HX_REQUEST": "true"}


def defined(name: str, secure: bool = False) -> str:
    """The definition as libvirt stores it now."""
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | (libvirt.VIR_DOMAIN_XML_SECURE if secure else 0)
    return str(pool().get(TESTNODE_URI).lookupByName(name).XMLDesc(flags))


def outside(name: str, old: str, new: str) -> None:
    """A change made with another tool (virsh define)."""
    conn = pool().get(TESTNODE_URI)
    conn.defineXML(defined(name).replace(old, new))


def editor(client: Client, name: str) -> tuple[str, str]:
    """(text, digest) as the XML tab hands them to the person."""
    page = lxml.html.fromstring(client.get(XML.format(name)).content)
    text = page.xpath("string(//textarea[@name='xml'])")
    digest = page.xpath("string(//form[@id='xml-form']//input[@name='digest']/@value)")
    return text, digest


def partial(response: object) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(response.content.decode())  # type: ignore[attr-defined]


def test_the_editor_holds_the_definition_and_a_viewer_gets_it_read_only(
    lab: Host, as_alice: Client, dora: User
) -> None:
    text, digest = editor(as_alice, "db")
    assert text == defined("db") and digest == definition.digest(text)
    as_dora = Client()
    as_dora.force_login(dora)  # Viewer of web1 only
    page = lxml.html.fromstring(as_dora.get(XML.format("web1")).content)
    assert not page.xpath("//textarea") and page.xpath("//pre[@class='xml']")
    assert as_dora.post(XML.format("web1"), {"xml": "<domain/>", "digest": "x"}).status_code == 403


def test_show_the_change_then_apply_stores_it_and_keeps_a_version_by_its_author(
    lab: Host, as_alice: Client
) -> None:
    text, digest = editor(as_alice, "db")
    edited = text.replace("<on_crash>destroy</on_crash>", "<on_crash>restart</on_crash>")
    shown = as_alice.post(
        XML.format("db"), {"xml": edited, "digest": digest, "preview": "1"}, **HTMX
    )
    diff = partial(shown).xpath("string(//pre[@class='diff'])")
    assert "-  <on_crash>destroy</on_crash>" in diff and "+  <on_crash>restart</on_crash>" in diff
    assert "<on_crash>destroy</on_crash>" in defined("db")  # a preview changes nothing

    applied = as_alice.post(XML.format("db"), {"xml": edited, "digest": digest}, follow=True)
    assert "Saved. It applies when the VM next starts." in applied.content.decode()
    assert "<on_crash>restart</on_crash>" in defined("db")
    newest = DomainVersion.objects.filter(host="lab", name="db").first()
    assert newest is not None and (newest.username, newest.reason) == ("alice", "XML edited")
    assert newest.xml == defined("db")
    entry = AuditEntry.objects.get(action="xml-edit", outcome="ok")
    assert "+  <on_crash>restart</on_crash>" in entry.diff


def test_an_apply_after_a_change_made_meanwhile_is_refused_and_shows_that_change(
    lab: Host, as_alice: Client
) -> None:
    text, digest = editor(as_alice, "db")
    outside("db", "<on_reboot>restart</on_reboot>", "<on_reboot>destroy</on_reboot>")
    mine = text.replace("<on_crash>destroy</on_crash>", "<on_crash>restart</on_crash>")
    response = as_alice.post(XML.format("db"), {"xml": mine, "digest": digest}, **HTMX)
    assert response.status_code == 409
    page = partial(response)
    assert "it was changed since you opened it" in page.text_content()
    other = page.xpath("string(//pre[@class='diff'])")
    assert "+  <on_reboot>destroy</on_reboot>" in other
    stored = defined("db")
    assert "<on_reboot>destroy</on_reboot>" in stored and "<on_crash>destroy</on_crash>" in stored


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda t: t.replace("<name>db</name>", "<name>db2</name>"), "A new name is a new VM"),
        (lambda t: t.replace("<uuid>", "<uuid>0").replace("</uuid>", "</uuid>"), "another UUID"),
        (lambda t: t.replace("</domain>", "<domain>"), "The XML is not well-formed"),
        (lambda t: t.replace("<devices>", "<devices><bogus/>"), "failed to validate"),
        (
            lambda t: t.replace(
                "<domain type='test'>",
                "<domain type='test' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>",
            ),
            "pass-through namespace",
        ),
    ],
    ids=["renamed", "new-uuid", "not-xml", "schema", "qemu-namespace"],
)
def test_what_the_editor_refuses_leaves_the_definition_as_it_was(
    lab: Host, as_alice: Client, change: object, said: str
) -> None:
    text, digest = editor(as_alice, "db")
    before = defined("db")
    edited = change(text)  # type: ignore[operator]
    response = as_alice.post(XML.format("db"), {"xml": edited, "digest": digest}, **HTMX)
    assert response.status_code == 400
    assert said in partial(response).xpath("string(//div[@role='alert'])")
    assert defined("db") == before


def test_a_parse_error_marks_the_line_it_names(lab: Host, as_alice: Client) -> None:
    text, digest = editor(as_alice, "db")
    broken = text.replace("</domain>", "<domain>")
    response = as_alice.post(XML.format("db"), {"xml": broken, "digest": digest}, **HTMX)
    line = partial(response).xpath("string(//div[@id='xml-result']/@data-error-line)")
    assert int(line) == len(broken.splitlines()) + 1  # the parser ran past the end


def test_a_vnc_password_the_editor_never_showed_is_kept(lab: Host, as_alice: Client) -> None:
    conn = pool().get(TESTNODE_URI)
    conn.defineXML(
        defined("db", secure=True).replace(
            "</devices>", "<graphics type='vnc' port='-1' passwd='s3cret-vnc'/></devices>"
        )
    )
    text, digest = editor(as_alice, "db")
    assert "s3cret-vnc" not in text
    edited = text.replace("<on_crash>destroy</on_crash>", "<on_crash>restart</on_crash>")
    assert as_alice.post(XML.format("db"), {"xml": edited, "digest": digest}).status_code == 302
    assert "passwd='s3cret-vnc'" in defined("db", secure=True)
    assert "s3cret-vnc" not in AuditEntry.objects.get(action="xml-edit").diff
    assert all("s3cret-vnc" not in v.xml for v in DomainVersion.objects.all())


def test_the_history_lists_each_version_compares_two_and_reverts_to_the_first(
    lab: Host, as_alice: Client
) -> None:
    first = defined("db")
    text, digest = editor(as_alice, "db")  # kept as first seen
    edited = text.replace("<on_crash>destroy</on_crash>", "<on_crash>restart</on_crash>")
    as_alice.post(XML.format("db"), {"xml": edited, "digest": digest})
    outside("db", "<on_reboot>restart</on_reboot>", "<on_reboot>destroy</on_reboot>")

    page = lxml.html.fromstring(as_alice.get(HISTORY.format("db")).content)
    rows = page.xpath("//table[@class='versions']/tbody/tr")
    who = [" ".join(r.xpath("string(td[2])").split()) for r in rows]
    assert who == ["outside vmdash", "alice · XML edited", "as vmdash first saw it"]
    assert "current" in rows[0].xpath("string(td[1])")
    ids = [int(r.get("data-version")) for r in rows]

    compared = lxml.html.fromstring(
        as_alice.get(HISTORY.format("db"), {"a": ids[2], "b": ids[0]}).content
    )
    diff = compared.xpath("string(//section[@id='compare']//pre[@class='diff'])")
    assert "+  <on_reboot>destroy</on_reboot>" in diff and "+  <on_crash>restart" in diff

    response = as_alice.post(f"{HISTORY.format('db')}{ids[2]}/revert/", follow=True)
    assert "Reverted to the version of" in response.content.decode()
    assert defined("db") == first
    newest = DomainVersion.objects.filter(host="lab", name="db").first()
    assert newest is not None and newest.reason.startswith("reverted to the version of ")
    assert newest.username == "alice"
    assert AuditEntry.objects.filter(action="definition-revert", outcome="ok").count() == 1


def test_a_version_that_no_longer_validates_is_not_defined_and_says_why(
    lab: Host, as_alice: Client
) -> None:
    uuid = pool().get(TESTNODE_URI).lookupByName("db").UUIDString()
    broken = defined("db").replace("<devices>", "<devices><bogus/>")
    bad = versions.remember("lab", uuid, "db", broken, "", "")
    assert bad is not None
    before = defined("db")
    response = as_alice.post(f"{HISTORY.format('db')}{bad.pk}/revert/", follow=True)
    assert "Cannot revert VM" in response.content.decode()
    assert defined("db") == before


def test_a_version_of_another_vm_is_not_reverted_to_here(lab: Host, as_alice: Client) -> None:
    uuid = pool().get(TESTNODE_URI).lookupByName("web1").UUIDString()
    other = versions.remember("lab", uuid, "web1", defined("web1"), "", "")
    assert other is not None
    assert as_alice.post(f"{HISTORY.format('db')}{other.pk}/revert/").status_code == 404


def test_the_events_sink_keeps_a_change_made_outside_and_vmdash_claims_its_own(
    lab: Host,
) -> None:
    dom = pool().get(TESTNODE_URI).lookupByName("db")
    event = ObjectEvent("lab", ObjectKind.DOMAIN, dom.UUIDString(), "db", Change.DEFINED)
    outside("db", "<on_reboot>restart</on_reboot>", "<on_reboot>destroy</on_reboot>")
    versions.seen(event)
    versions.seen(event)  # the same definition again: one version
    kept = list(DomainVersion.objects.filter(host="lab", uuid=dom.UUIDString()))
    assert [(v.username, v.xml) for v in kept] == [("", defined("db"))]
    claimed = versions.remember("lab", dom.UUIDString(), "db", defined("db"), "alice", "x")
    assert claimed is not None and claimed.pk == kept[0].pk and claimed.username == "alice"
