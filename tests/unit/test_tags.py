"""Tags in a VM's libvirt <metadata>: the XML layer, libvirt's own view, the editor, the list.

Golden files (tests/data/xml/tags-*.in.xml → .expected.xml) hold the edit
of <metadata>: our element changes, other tools' stay. What the editor did
is checked through libvirt (virDomainGetXMLDesc), on the test driver.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import libvirt
import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import audit_entries
from vmdash.access.models import Grant, Role
from vmdash.models import Host
from vmdash.virt import domains as virt_domains
from vmdash.virt.connection import pool
from vmdash.virt.errors import InvalidInput
from vmdash.virt.xml.domain import DomainXML
from vmdash.virt.xml.tags import NS, parse_tags, tags_xml

DATA = Path(__file__).parent.parent / "data" / "xml"
WEB1 = "11111111-0000-4000-8000-000000000001"

EDITS: dict[str, Callable[[DomainXML], None]] = {
    "tags-other-tools": lambda doc: setattr(doc, "tags", {"web", "prod"}),
    "tags-none": lambda doc: setattr(doc, "tags", {"db"}),
    "tags-only-ours": lambda doc: setattr(doc, "tags", set()),
}


def edited(case: str) -> DomainXML:
    doc = DomainXML.parse((DATA / f"{case}.in.xml").read_text())
    EDITS[case](doc)
    return doc


@pytest.mark.parametrize("case", sorted(EDITS))
def test_a_tags_edit_gives_exactly_the_expected_xml(case: str) -> None:
    out = edited(case).tostring()
    expected = DATA / f"{case}.expected.xml"
    if os.environ.get("VMDASH_REGEN_GOLDEN"):
        expected.write_text(out)
    assert out == expected.read_text()


@pytest.mark.parametrize("case", sorted(EDITS))
def test_tagged_xml_passes_libvirts_schema(case: str, tmp_path: Path) -> None:
    validate = shutil.which("virt-xml-validate")
    assert validate, "virt-xml-validate is missing: apt-get install libvirt-clients"
    path = tmp_path / f"{case}.xml"
    path.write_text(edited(case).tostring())
    out = subprocess.run([validate, str(path), "domain"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_other_tools_metadata_survives_and_ours_reads_back() -> None:
    doc = edited("tags-other-tools")
    assert 'libosinfo:os id="http://debian.org/debian/12"' in doc.tostring()
    assert DomainXML.parse(doc.tostring()).tags == {"web", "prod"}
    assert edited("tags-only-ours").tostring().count("metadata") == 0
    assert parse_tags(tags_xml({"b", "a"})) == {"a", "b"}


def test_setting_the_same_tags_changes_nothing() -> None:
    doc = DomainXML.parse((DATA / "tags-other-tools.in.xml").read_text())
    doc.tags = {"web", "old"}
    assert not doc.changed


def libvirt_xml(host: Host, name: str, flags: int = 0) -> str:
    return str(pool().get(host.uri).lookupByName(name).XMLDesc(flags))


def test_tags_are_stored_in_the_running_vms_definition_and_live(lab: Host) -> None:
    ref, change = virt_domains.set_tags(lab.ref, "web1", {"web", "prod"})
    assert ref.tags == {"web", "prod"} and change == "tags: (none) → prod, web"
    for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
        doc = DomainXML.parse(libvirt_xml(lab, "web1", flags))
        assert doc.tags == {"web", "prod"}
        assert f'<vmdash:tags xmlns:vmdash="{NS}">' in doc.tostring()
    assert virt_domains.get_tags(lab.ref, "web1") == {"web", "prod"}


def test_a_bad_tag_is_refused_and_nothing_changes(lab: Host) -> None:
    with pytest.raises(InvalidInput):
        virt_domains.set_tags(lab.ref, "db", {"ok", "no spaces"})
    assert "vmdash:tags" not in libvirt_xml(lab, "db")


def test_the_list_sees_a_change_made_outside_vmdash(lab: Host) -> None:
    assert next(d for d in virt_domains.list_domains(lab.ref) if d.name == "db").tags == set()
    dom = pool().get(lab.uri).lookupByName("db")  # as virsh would: no word to vmdash
    dom.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT,
        "<tags><tag>backup</tag></tags>",
        "vmdash",
        NS,
        libvirt.VIR_DOMAIN_AFFECT_CONFIG,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rows = virt_domains.list_domains(lab.ref)
        if next(d for d in rows if d.name == "db").tags == {"backup"}:
            break
        time.sleep(0.05)
    assert next(d for d in rows if d.name == "db").tags == {"backup"}


# The editor on the VM page.


def test_the_overview_loads_the_tags_editor(as_alice: Client, lab: Host) -> None:
    page = as_alice.get("/hosts/lab/domains/web1/").content.decode()
    assert 'hx-get="/hosts/lab/domains/web1/tags/"' in page
    part = as_alice.get("/hosts/lab/domains/web1/tags/").content.decode()
    assert 'name="tags"' in part and 'name="csrfmiddlewaretoken"' in part


def test_saving_tags_writes_them_to_libvirt_and_the_audit(as_alice: Client, lab: Host) -> None:
    response = as_alice.post(
        "/hosts/lab/domains/web1/tags/", {"tags": "web, prod"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "Tags saved" in response.content.decode()
    assert DomainXML.parse(libvirt_xml(lab, "web1", libvirt.VIR_DOMAIN_XML_INACTIVE)).tags == {
        "web",
        "prod",
    }
    entry = audit_entries().get(action="tags")
    assert entry.outcome == "ok" and entry.object_uuid == WEB1 and "prod, web" in entry.message


def test_a_bad_tag_is_shown_next_to_the_field(as_alice: Client, lab: Host) -> None:
    response = as_alice.post("/hosts/lab/domains/web1/tags/", {"tags": "web, <b>"})
    assert response.status_code == 200 and 'aria-invalid="true"' in response.content.decode()
    assert "vmdash:tags" not in libvirt_xml(lab, "web1")


def test_a_viewer_sees_the_tags_but_may_not_change_them(lab: Host) -> None:
    dora = User.objects.create_user("dora", password="dora-pw-1")
    Grant.objects.create(
        role=Role.objects.get(slug="viewer"), user=dora, scope="vm", host="lab",
        object_uuid=WEB1, object_name="web1",
    )  # fmt: skip
    virt_domains.set_tags(lab.ref, "web1", {"web"})
    c = Client()
    c.force_login(dora)
    part = c.get("/hosts/lab/domains/web1/tags/").content.decode()
    assert ">web<" in part and 'name="tags"' not in part
    assert c.post("/hosts/lab/domains/web1/tags/", {"tags": "mine"}).status_code == 403
    assert c.post("/hosts/lab/domains/db/tags/", {"tags": "mine"}).status_code == 404
    assert virt_domains.get_tags(lab.ref, "web1") == {"web"}


def test_the_tags_editor_refuses_get_for_nobody_and_bob(as_bob: Client, lab: Host) -> None:
    assert as_bob.get("/hosts/lab/domains/web1/tags/").status_code == 404
    assert Client().get("/hosts/lab/domains/web1/tags/").status_code == 302


def test_the_vm_list_shows_tags_and_filters_by_one(as_alice: Client, lab: Host) -> None:
    virt_domains.set_tags(lab.ref, "web1", {"web"})
    virt_domains.set_tags(lab.ref, "db", {"db"})
    listing = as_alice.get("/domains/").content.decode()
    assert 'href="?q=tag:web">web</a>' in listing
    only = as_alice.get("/domains/?q=tag:web").content.decode()
    assert ">web1</a>" in only and ">db</a>" not in only
