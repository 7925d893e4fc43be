"""VM list, detail and lifecycle pages, as a person uses them (test driver)."""

from __future__ import annotations

import html

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import WEIRD_NAME, audit_entries
from vmdash.models import Host
from vmdash.virt import domains
from vmdash.virt.enums import DomainState

pytestmark = pytest.mark.django_db


def state_of(host: Host, name: str) -> DomainState:
    """What libvirt says, through the same (private-world) connection."""
    from vmdash.virt.connection import pool

    return DomainState.from_virt(pool().get(host.uri).lookupByName(name).state()[0])


def op_url(name: str, op: str, host: str = "lab") -> str:
    return reverse(f"domain-{op}", args=[host, name])


class TestList:
    def test_it_lists_the_vms_of_every_host(self, as_alice: Client, lab: Host) -> None:
        Host.objects.create(slug="demo", uri="test:///default")
        page = as_alice.get("/domains/").content.decode()
        for name in ("web1", "db", "test"):
            assert f'data-name="{name}"' in page
        assert "Front web server" in page  # title under the name
        assert "4 GiB" in page  # db's memory

    def test_it_shows_the_state_as_a_badge(self, as_alice: Client, lab: Host) -> None:
        page = as_alice.get("/domains/").content.decode()
        assert '<span class="badge state-running"' in page
        assert '<span class="badge state-shutoff"' in page
        assert '<span class="badge state-paused"' in page

    def test_it_filters_by_state_host_and_name(self, as_alice: Client, lab: Host) -> None:
        Host.objects.create(slug="demo", uri="test:///default")
        page = as_alice.get("/domains/?state=shutoff").content.decode()
        assert 'data-name="db"' in page and 'data-name="web1"' not in page
        page = as_alice.get("/domains/?host=demo").content.decode()
        assert 'data-name="test"' in page and 'data-name="db"' not in page
        page = as_alice.get("/domains/?q=WEB").content.decode()
        assert 'data-name="web1"' in page and 'data-name="db"' not in page

    def test_it_sorts_by_column(self, as_alice: Client, lab: Host) -> None:
        page = as_alice.get("/domains/?sort=-memory").content.decode()
        assert page.index('data-name="db"') < page.index('data-name="web1"')
        page = as_alice.get("/domains/?sort=memory").content.decode()
        assert page.index('data-name="web1"') < page.index('data-name="db"')

    def test_htmx_gets_only_the_table(self, as_alice: Client, lab: Host) -> None:
        page = as_alice.get("/domains/?q=db", headers={"HX-Request": "true"}).content.decode()
        assert page.lstrip().startswith('<div id="domain-table"')
        assert "<html" not in page

    def test_a_history_restore_gets_the_whole_page(self, as_alice: Client, lab: Host) -> None:
        headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
        response = as_alice.get("/domains/?state=running&sort=-name", headers=headers)
        page = response.content.decode()
        assert "<html" in page and 'class="filters"' in page and "<nav>" in page
        assert "HX-Request" in response["Vary"] and "HX-History-Restore-Request" in response["Vary"]

    def test_a_list_of_unreachable_hosts_says_so_not_no_vms_yet(
        self, as_alice: Client, lab: Host
    ) -> None:
        lab.uri = "qemu+tcp://127.0.0.1:1/system"
        lab.save()
        page = as_alice.get("/domains/").content.decode()
        assert "Host Lab is unreachable" in page
        assert "No VM to show: a host is unreachable." in page and "No VMs yet." not in page

    def test_it_offers_only_valid_actions_per_row(self, as_alice: Client, lab: Host) -> None:
        page = as_alice.get("/domains/").content.decode()
        db_row = page[page.index('data-name="db"') :].split("</tr>")[0]
        assert 'data-op="start"' in db_row and 'data-op="shutdown"' not in db_row
        web_row = page[page.index('data-name="web1"') :].split("</tr>")[0]
        assert 'data-op="shutdown"' in web_row and 'data-op="start"' not in web_row

    def test_a_down_host_shows_its_error_and_the_others_still_list(
        self, as_alice: Client, lab: Host
    ) -> None:
        Host.objects.create(slug="gone", uri="qemu+tcp://127.0.0.1:1/system")
        response = as_alice.get("/domains/")
        assert response.status_code == 200
        page = response.content.decode()
        assert "Host gone is unreachable: Cannot connect to qemu+tcp://127.0.0.1:1/system" in page
        assert 'data-name="web1"' in page

    def test_names_titles_and_descriptions_are_escaped(self, as_alice: Client, lab: Host) -> None:
        page = as_alice.get("/domains/").content.decode()
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt;" in page
        assert html.escape(WEIRD_NAME) in page
        assert "<b>&" not in page
        assert html.escape(reverse("domain-detail", args=["lab", WEIRD_NAME])) in page


class TestDetail:
    def test_it_shows_the_overview(self, as_alice: Client, lab: Host) -> None:
        page = as_alice.get("/hosts/lab/domains/web1/").content.decode()
        for text in (
            "11111111-0000-4000-8000-000000000001",
            "hvm",
            "x86_64",
            "Front web server",
            "nginx + app",
            "1 GiB current",
            "running",
        ):
            assert text in page

    def test_it_shows_devices(self, as_alice: Client, lab: Host) -> None:
        page = as_alice.get("/hosts/lab/domains/web1/devices/").content.decode()
        for text in (
            "vda",
            "virtio",
            "/guest/web1.qcow2",
            "qcow2",
            "52:54:00:00:00:01",
            "default",
            "VNC",
            "5901",
        ):
            assert text in page

    def test_it_shows_the_xml_escaped(self, as_alice: Client, lab: Host) -> None:
        page = as_alice.get("/hosts/lab/domains/web1/xml/").content.decode()
        assert "&lt;name&gt;web1&lt;/name&gt;" in page

    def test_the_vm_with_the_odd_name_has_a_working_page(self, as_alice: Client, lab: Host) -> None:
        url = reverse("domain-detail", args=["lab", WEIRD_NAME])
        page = as_alice.get(url).content.decode()
        assert html.escape(WEIRD_NAME) in page
        assert "Quotes &#x27; and &quot; &amp; &lt;tags&gt; — ünïcödé" in page

    def test_an_unknown_vm_is_404_with_a_message(self, as_alice: Client, lab: Host) -> None:
        response = as_alice.get("/hosts/lab/domains/nope/")
        assert response.status_code == 404
        assert (
            "There is no VM &#x27;nope&#x27; on host &#x27;Lab&#x27;" in response.content.decode()
        )

    def test_an_unknown_host_is_404(self, as_alice: Client, lab: Host) -> None:
        assert as_alice.get("/hosts/nope/domains/web1/").status_code == 404
        assert as_alice.get("/hosts/nope/").status_code == 404

    def test_a_disabled_host_hides_its_vms(self, as_alice: Client, lab: Host) -> None:
        lab.enabled = False
        lab.save()
        assert as_alice.get("/hosts/lab/domains/web1/").status_code == 404
        assert 'data-name="web1"' not in as_alice.get("/domains/").content.decode()

    def test_an_unreachable_host_is_503_with_the_reason(self, as_alice: Client, db: None) -> None:
        Host.objects.create(slug="gone", uri="qemu+tcp://127.0.0.1:1/system")
        response = as_alice.get("/hosts/gone/domains/web1/")
        assert response.status_code == 503
        assert "Cannot connect to qemu+tcp://127.0.0.1:1/system" in response.content.decode()


class TestActions:
    def test_it_starts_a_shut_off_vm_and_redirects_back(self, as_alice: Client, lab: Host) -> None:
        response = as_alice.post(op_url("db", "start"))
        assert response.status_code == 302
        assert response["Location"] == reverse("domain-detail", args=["lab", "db"])
        assert state_of(lab, "db") == DomainState.RUNNING

    def test_from_the_list_it_redirects_to_the_list(self, as_alice: Client, lab: Host) -> None:
        response = as_alice.post(op_url("db", "start"), {"view": "row"})
        assert response["Location"] == reverse("domain-list")

    def test_htmx_gets_the_updated_row(self, as_alice: Client, lab: Host) -> None:
        response = as_alice.post(
            op_url("web1", "pause"), {"view": "row"}, headers={"HX-Request": "true"}
        )
        assert response.status_code == 200
        row = response.content.decode()
        assert row.strip().startswith('<tr id="dom-11111111-0000-4000-8000-000000000001"')
        assert 'class="badge state-paused"' in row and 'data-op="resume"' in row
        assert state_of(lab, "web1") == DomainState.PAUSED

    def test_htmx_gets_the_updated_header(self, as_alice: Client, lab: Host) -> None:
        response = as_alice.post(
            op_url("db", "start"), {"view": "header"}, headers={"HX-Request": "true"}
        )
        header = response.content.decode()
        assert 'id="dom-head-11111111-0000-4000-8000-000000000002"' in header
        assert 'class="badge state-running"' in header

    def test_every_operation_is_audited(self, as_alice: Client, lab: Host) -> None:
        as_alice.post(op_url("db", "start"))
        entry = audit_entries().get()
        assert (entry.username, entry.host, entry.object_name, entry.action, entry.outcome) == (
            "alice",
            "lab",
            "db",
            "start",
            "ok",
        )
        assert entry.object_uuid == "11111111-0000-4000-8000-000000000002"

    def test_an_invalid_action_is_409_and_changes_nothing(
        self, as_alice: Client, lab: Host
    ) -> None:
        response = as_alice.post(op_url("web1", "start"))
        assert response.status_code == 409
        assert "Cannot start VM &#x27;web1&#x27;: it is running." in response.content.decode()
        assert state_of(lab, "web1") == DomainState.RUNNING
        entry = audit_entries().get()
        assert entry.outcome == "error" and "it is running" in entry.message

    def test_with_htmx_the_error_goes_to_the_message_area(
        self, as_alice: Client, lab: Host
    ) -> None:
        response = as_alice.post(
            op_url("web1", "start"), {"view": "row"}, headers={"HX-Request": "true"}
        )
        assert response.status_code == 409
        assert response["HX-Retarget"] == "#messages"
        assert "it is running" in response.content.decode()

    def test_a_get_never_changes_anything(self, as_alice: Client, lab: Host) -> None:
        for op in domains.Op:
            assert as_alice.get(op_url("web1", op.value)).status_code == 405
        assert state_of(lab, "web1") == DomainState.RUNNING
        assert not audit_entries().exists()

    def test_a_post_without_csrf_is_refused(self, alice: object, lab: Host) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(alice)  # type: ignore[arg-type]
        assert client.post(op_url("db", "start")).status_code == 403
        assert state_of(lab, "db") == DomainState.SHUTOFF

    def test_force_off_asks_for_confirmation_naming_the_vm(
        self, as_alice: Client, lab: Host
    ) -> None:
        response = as_alice.post(op_url("web1", "force-off"))
        assert response.status_code == 302
        assert response["Location"] == reverse("domain-confirm", args=["lab", "web1", "force-off"])
        assert state_of(lab, "web1") == DomainState.RUNNING
        page = as_alice.get(response["Location"]).content.decode()
        assert "Force off VM &#x27;web1&#x27;?" in page
        response = as_alice.post(op_url("web1", "force-off"), {"confirm": "web1"})
        assert response.status_code == 302
        assert state_of(lab, "web1") == DomainState.SHUTOFF

    def test_a_confirmation_for_another_vm_does_not_count(
        self, as_alice: Client, lab: Host
    ) -> None:
        as_alice.post(op_url("web1", "force-off"), {"confirm": "db"})
        assert state_of(lab, "web1") == DomainState.RUNNING

    def test_delete_confirms_and_removes_the_definition(self, as_alice: Client, lab: Host) -> None:
        page = as_alice.get(
            reverse("domain-confirm", args=["lab", "db", "delete"])
        ).content.decode()
        assert "Delete VM &#x27;db&#x27;?" in page
        response = as_alice.post(op_url("db", "delete"), {"confirm": "db"})
        assert response["Location"] == reverse("domain-list")
        assert as_alice.get("/hosts/lab/domains/db/").status_code == 404
        assert audit_entries().get().action == "delete"

    def test_htmx_delete_from_the_list_removes_the_row(self, as_alice: Client, lab: Host) -> None:
        response = as_alice.post(
            op_url("db", "delete"), {"confirm": "db", "view": "row"}, headers={"HX-Request": "true"}
        )
        assert response.status_code == 200 and response.content == b""

    def test_it_acts_on_the_vm_with_the_odd_name(self, as_alice: Client, lab: Host) -> None:
        response = as_alice.post(op_url(WEIRD_NAME, "resume"))
        assert response.status_code == 302
        assert state_of(lab, WEIRD_NAME) == DomainState.RUNNING
        assert state_of(lab, "web1") == DomainState.RUNNING
        assert audit_entries().get().object_name == WEIRD_NAME

    def test_an_unknown_operation_is_404(self, as_alice: Client, lab: Host) -> None:
        assert (
            as_alice.get(reverse("domain-confirm", args=["lab", "db", "explode"])).status_code
            == 404
        )


@pytest.mark.parametrize("name", ["web1", WEIRD_NAME, "a b", "x?y#z%", "日本語", "semi;colon=1"])
def test_the_fast_vm_url_is_the_one_reverse_gives(name: str) -> None:
    from domains.templatetags.domains import domain_path

    assert domain_path("lab", name) == reverse("domain-detail", args=["lab", name])
