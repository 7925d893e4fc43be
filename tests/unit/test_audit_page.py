"""The audit page: filters, search, paging, CSV export of the same rows, and retention."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from vmdash.access.models import Grant, Role
from vmdash.audit import Actor, Outcome, record
from vmdash.models import AppendOnly, AuditEntry, Host

pytestmark = pytest.mark.django_db


def entry(user: str, action: str, name: str, outcome: str = Outcome.OK, message: str = "") -> None:
    record(Actor(None, user), action, None, outcome, message, object_type="vm", object_name=name)


def backdate(days: int, **match: str) -> None:
    """Age rows as if written `days` ago (the app itself cannot change a row)."""
    at = connection.ops.adapt_datetimefield_value(timezone.now() - timedelta(days=days))
    table = AuditEntry._meta.db_table
    where = " AND ".join(f"{k} = %s" for k in match)
    with connection.cursor() as c:
        c.execute(f"UPDATE {table} SET at = %s WHERE {where}", [at, *match.values()])


@pytest.fixture
def trail(db: None) -> None:
    entry("dora", "start", "web1")
    entry("dora", "shutdown", "web1", Outcome.ERROR, "it is not running")
    entry("erin", "start", "db", Outcome.DENIED)
    entry("erin", "console-open", "web2")


def rows(response: object) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    return list(csv.DictReader(io.StringIO(body)))


def test_a_user_without_grants_may_not_read_or_export_the_audit(as_bob: Client) -> None:
    assert as_bob.get("/audit/").status_code == 403
    assert as_bob.get("/audit/export.csv").status_code == 403


def test_a_host_admin_of_one_host_may_not_read_the_audit(lab: Host) -> None:
    hank = User.objects.create_user("hank", password="hank-pw-1")
    Grant.objects.create(
        user=hank, role=Role.objects.get(slug="host-admin"), scope="host", host="lab"
    )
    c = Client()
    c.force_login(hank)
    assert c.get("/audit/").status_code == 403
    assert c.get("/audit/export.csv").status_code == 403


def test_an_auditor_reads_and_exports_it(trail: None) -> None:
    ada = User.objects.create_user("ada", password="ada-pw-1")
    Grant.objects.create(user=ada, role=Role.objects.get(slug="auditor"), scope="site")
    c = Client()
    c.force_login(ada)
    assert c.get("/audit/").status_code == 200
    assert len([r for r in rows(c.get("/audit/export.csv")) if r["object_type"] == "vm"]) == 4


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("user=dora", ["shutdown web1", "start web1"]),
        ("object=web", ["console-open web2", "shutdown web1", "start web1"]),
        ("action=start", ["start db", "start web1"]),
        ("outcome=denied", ["start db"]),
        ("q=not+running", ["shutdown web1"]),
        ("user=erin&action=start", ["start db"]),
    ],
)
def test_the_filters_pick_the_rows_on_the_page_and_in_the_csv(
    as_alice: Client, trail: None, query: str, names: list[str]
) -> None:
    page = as_alice.get(f"/audit/?{query}").content.decode()
    for other in {"web1", "web2", "db"} - {n.split()[1] for n in names}:
        assert f"vm {other}<" not in page
    found = rows(as_alice.get(f"/audit/export.csv?{query}"))
    assert sorted(f"{r['action']} {r['object_name']}" for r in found) == names


def test_the_time_range_filter_keeps_the_rows_between(as_alice: Client, trail: None) -> None:
    backdate(10, username="erin")
    since = (timezone.localtime() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    found = rows(as_alice.get(f"/audit/export.csv?since={since}&object=w"))
    assert {r["username"] for r in found} == {"dora"}
    until = since
    found = rows(as_alice.get(f"/audit/export.csv?until={until}&object=w"))
    assert {r["username"] for r in found} == {"erin"}


def test_a_range_that_ends_before_it_starts_is_refused_next_to_the_field(
    as_alice: Client,
) -> None:
    response = as_alice.get("/audit/?since=2025-05-02T10:00&until=2025-05-01T10:00")
    assert response.status_code == 400
    assert "The end is before the start." in response.content.decode()


def test_the_csv_has_every_column_and_defuses_formulas(as_alice: Client) -> None:
    entry("=HYPERLINK(1)", "login", "x", Outcome.DENIED, "+1")
    response = as_alice.get("/audit/export.csv?action=login&outcome=denied")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    [row] = rows(response)
    assert row["username"] == "'=HYPERLINK(1)" and row["message"] == "'+1"
    assert row["outcome"] == "denied" and row["at"]


def test_an_export_is_itself_on_record_but_not_in_its_own_file(as_alice: Client) -> None:
    found = rows(as_alice.get("/audit/export.csv?outcome=ok"))
    assert not [r for r in found if r["action"] == "audit-export"]
    [export] = AuditEntry.objects.filter(action="audit-export")
    assert export.username == "alice" and export.message == "outcome=ok"


def test_the_page_shows_fifty_rows_at_a_time(as_alice: Client) -> None:
    for i in range(55):
        entry("dora", "start", f"vm-{i:02d}")
    page = as_alice.get("/audit/?user=dora").content.decode()
    assert page.count('<tr class="outcome-') == 50 and "Page 1 of 2" in page
    second = as_alice.get("/audit/?user=dora&page=2").content.decode()
    assert second.count('<tr class="outcome-') == 5 and "vm-00" in second


def test_the_app_cannot_delete_or_change_an_entry(trail: None) -> None:
    with pytest.raises(AppendOnly):
        AuditEntry.objects.filter(username="dora").delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.first().delete()  # type: ignore[union-attr]
    with pytest.raises(AppendOnly):
        AuditEntry.objects.update(message="")
    assert AuditEntry.objects.filter(object_type="vm").count() == 4


def test_the_prune_command_deletes_by_age_and_says_how_many(trail: None, settings: object) -> None:
    backdate(40, username="erin")
    backdate(20, action="shutdown")
    settings.VMDASH_AUDIT_DAYS = 30  # type: ignore[attr-defined]
    out = io.StringIO()
    call_command("vmdash_audit_prune", stdout=out)
    assert "Deleted 2 audit entries older than 30 days." in out.getvalue()
    left = set(AuditEntry.objects.values_list("action", "username"))
    assert ("start", "dora") in left and ("shutdown", "dora") in left
    assert not AuditEntry.objects.filter(username="erin").exists()
    [pruned] = AuditEntry.objects.filter(action="audit-prune")
    assert pruned.message.startswith("2 entries older than 30 days") and pruned.via == "prune"


def test_retention_zero_keeps_everything(trail: None, settings: object) -> None:
    backdate(4000, username="erin")
    settings.VMDASH_AUDIT_DAYS = 0  # type: ignore[attr-defined]
    out = io.StringIO()
    call_command("vmdash_audit_prune", stdout=out)
    assert "kept for ever" in out.getvalue()
    assert AuditEntry.objects.filter(username="erin").count() == 2
    assert not AuditEntry.objects.filter(action="audit-prune").exists()


def test_the_audit_page_says_how_long_entries_are_kept(as_alice: Client, settings: object) -> None:
    settings.VMDASH_AUDIT_DAYS = 90  # type: ignore[attr-defined]
    assert "Entries are kept for 90 days." in as_alice.get("/audit/").content.decode()
