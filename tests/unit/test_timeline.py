"""The VM timeline on libvirt's test driver: what is kept, how it is merged and
labelled, who may see it, paging and the live region.

Events are handed to the timeline's sink as the events service hands them
(ObjectEvent values as vmdash.virt.events makes them from libvirt's callbacks);
the real libvirtd's own events are in tests/integration/test_timeline.py.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from domains import timeline
from domains.models import DomainEvent
from tests.unit.test_grants import DB, WEB1
from tests.unit.test_grants import dora as dora
from vmdash.console.models import ConsoleSession
from vmdash.live import regions
from vmdash.live.sinks import sinks
from vmdash.models import Host
from vmdash.virt.events import Change, HostStatus, ObjectEvent, ObjectKind
from vmdash.virt.refs import DomainRef, HostRef

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def seen(s: float, change: Change, detail: str = "", **kw: str) -> timeline.Seen:
    return timeline.Seen(at(s), change.value, detail, **kw)


def done(s: float, action: str, outcome: str = "ok", user: str = "alice") -> timeline.Done:
    return timeline.Done(at(s), action, outcome, user)


def texts(lines: list[timeline.Line]) -> list[str]:
    return [line.text for line in lines]


def happen(uuid: str, name: str, change: Change, detail: str = "", info: str = "") -> None:
    """libvirt reported this (as the events service publishes it) just now."""
    event = ObjectEvent("lab", ObjectKind.DOMAIN, uuid, name, change, detail, info, time.time())
    timeline.store(event)


def shown(client: Client, name: str = "db", query: str = "") -> list[str]:
    page = client.get(f"/hosts/lab/domains/{name}/timeline/{query}").content.decode()
    return [
        re.sub(r"<.*", "", t, flags=re.S)
        for t in re.findall(r'<td class="what">(.*?)</td>', page, re.S)
    ]


# --- the merge: one line per happening, labelled for a person -----------------


def test_a_start_from_vmdash_and_its_events_are_one_line() -> None:
    lines = timeline.merge(
        [done(1.0, "start")],
        [seen(0.4, Change.STARTED, "booted"), seen(0.5, Change.RESUMED, "unpaused")],
    )
    assert texts(lines) == ["Started by alice (vmdash)"]
    assert lines[0].seen == ("started (booted)", "resumed (unpaused)")


def test_a_start_nothing_in_vmdash_explains_is_outside_vmdash() -> None:
    lines = timeline.merge(
        [done(0, "start")], [seen(300, Change.STARTED, "booted"), seen(300.1, Change.RESUMED)]
    )
    assert texts(lines) == [
        "Started outside vmdash (virsh, autostart or another tool)",
        "Started by alice (vmdash)",
    ]


def test_a_start_with_virsh_just_before_a_start_from_vmdash_stays_its_own_line() -> None:
    lines = timeline.merge(
        [done(20, "start")],
        [
            seen(0, Change.STARTED, "booted"),
            seen(0.1, Change.RESUMED, "unpaused"),
            seen(8, Change.SHUTDOWN, "host"),
            seen(8.1, Change.STOPPED, "destroyed"),
            seen(19.5, Change.STARTED, "booted"),
            seen(19.6, Change.RESUMED, "unpaused"),
        ],
    )
    assert texts(lines) == [
        "Started by alice (vmdash)",
        "Forced off outside vmdash (virsh or another tool)",
        "Started outside vmdash (virsh, autostart or another tool)",
    ]
    assert lines[0].seen == ("started (booted)", "resumed (unpaused)")


def test_a_poweroff_of_the_guest_is_a_shutdown_by_the_guest() -> None:
    lines = timeline.merge(
        [], [seen(10, Change.SHUTDOWN, "guest"), seen(10.5, Change.STOPPED, "shutdown")]
    )
    assert texts(lines) == ["Shut down by the guest"]
    assert lines[0].source == "guest"
    assert lines[0].seen == ("shutdown (guest)", "stopped (shutdown)")


def test_a_qemu_told_to_quit_is_not_the_guest() -> None:
    lines = timeline.merge(
        [], [seen(10, Change.SHUTDOWN, "host"), seen(10.2, Change.STOPPED, "shutdown")]
    )
    assert texts(lines) == ["Stopped by the host (QEMU was told to quit)"]


def test_a_shutdown_requested_in_vmdash_is_by_that_person_once_the_guest_stops() -> None:
    lines = timeline.merge(
        [done(0, "shutdown", user="bob")],
        [seen(40, Change.SHUTDOWN, "guest"), seen(40.3, Change.STOPPED, "shutdown")],
    )
    assert texts(lines) == ["Shut down by bob (vmdash)"]
    waiting = timeline.merge([done(0, "shutdown", user="bob")], [])
    assert texts(waiting) == ["Shutdown requested by bob (vmdash); the guest has not stopped"]


def test_a_definition_change_with_no_vmdash_change_before_it_is_outside_vmdash() -> None:
    lines = timeline.merge([done(0, "start")], [seen(100, Change.DEFINED, "updated")])
    assert texts(lines)[0] == "Definition changed outside vmdash (virsh or another tool)"
    assert lines[0].source == "outside"


def test_a_definition_change_right_after_a_vmdash_start_is_not_its_echo() -> None:
    lines = timeline.merge([done(0, "start")], [seen(1, Change.DEFINED, "updated")])
    assert texts(lines)[0] == "Definition changed outside vmdash (virsh or another tool)"


def test_a_definition_change_right_after_a_vmdash_edit_is_its_echo() -> None:
    lines = timeline.merge(
        [done(5, "edit")],
        [seen(4.8, Change.DEFINED, "updated"), seen(4.9, Change.METADATA_CHANGED, info="title")],
    )
    assert texts(lines) == ["Edit by alice (vmdash)"]


def test_a_forced_off_a_crash_and_a_rename_are_told_as_such() -> None:
    lines = timeline.merge(
        [],
        [
            seen(0, Change.STOPPED, "destroyed"),
            seen(100, Change.STOPPED, "crashed"),
            seen(200, Change.UNDEFINED, "renamed", name="old"),
            seen(200.01, Change.DEFINED, "renamed", name="new"),
            seen(300, Change.METADATA_CHANGED, info="description"),
            seen(400, Change.SUSPENDED, "paused"),
            seen(500, Change.RESUMED, "unpaused"),
        ],
    )
    assert texts(lines) == [
        "Resumed outside vmdash",
        "Paused outside vmdash",
        "Description changed outside vmdash",
        "Renamed to new outside vmdash",
        "Crashed: the QEMU process ended",
        "Forced off outside vmdash (virsh or another tool)",
    ]
    assert [line.outcome for line in lines] == ["ok", "ok", "ok", "ok", "alert", "ok"]  # the crash


def test_a_pause_then_a_crash_are_two_lines_and_a_save_one() -> None:
    lines = timeline.merge(
        [], [seen(0, Change.SUSPENDED, "paused"), seen(2, Change.STOPPED, "crashed")]
    )
    assert texts(lines) == ["Crashed: the QEMU process ended", "Paused outside vmdash"]
    saved = timeline.merge(
        [], [seen(0, Change.SUSPENDED, "paused"), seen(2, Change.STOPPED, "saved")]
    )
    assert texts(saved) == ["Saved (hibernated) outside vmdash"]


def test_errors_and_refusals_are_lines_of_their_own_and_explain_nothing() -> None:
    lines = timeline.merge(
        [done(0, "start", "error"), done(10, "force-off", "denied", user="bob")],
        [seen(0.2, Change.STARTED, "booted")],
    )
    assert texts(lines) == [
        "bob was refused: force off",
        "Started outside vmdash (virsh, autostart or another tool)",
        "alice could not start the VM",
    ]
    assert [line.outcome for line in lines] == ["denied", "ok", "error"]


def test_a_console_session_says_who_how_long_and_view_only() -> None:
    session = timeline.Watched(at(0), "bob", "vnc", True, at(240), "grant ended")
    (line,) = timeline.merge([], [], [session])
    assert line.text == "Console opened by bob, 4 min (view only)"
    assert line.message == "closed: grant ended"
    still = timeline.Watched(at(0), "carol", "serial")
    assert timeline.merge([], [], [still])[0].text == "Serial console opened by carol, still open"


# --- the sink: what the events service hands over is kept ---------------------


def test_the_sink_is_registered_and_keeps_vm_events_only(lab: Host) -> None:
    regions.registry().discover()
    assert timeline.store in sinks()
    happen(DB, "db", Change.STOPPED, "shutdown")
    timeline.store(ObjectEvent("lab", ObjectKind.NETWORK, DB, "net", Change.STOPPED))
    timeline.store(HostStatus("lab", True))
    happen(DB, "db", Change.JOB_COMPLETED)
    rows = list(DomainEvent.objects.values_list("host", "uuid", "name", "change", "detail"))
    assert rows == [("lab", DB, "db", "stopped", "shutdown")]


def test_old_events_go_after_the_retention_days(lab: Host) -> None:
    happen(DB, "db", Change.STARTED, "booted")
    old = DomainEvent.objects.create(
        at=timezone.now() - timedelta(days=91), host="lab", uuid=DB, name="db", change="stopped"
    )
    assert timeline.prune(0) == 0  # 0 keeps them all
    assert timeline.prune(90) == 1
    assert not DomainEvent.objects.filter(pk=old.pk).exists()
    assert DomainEvent.objects.count() == 1


def test_a_recorded_event_is_not_edited(lab: Host) -> None:
    happen(DB, "db", Change.STARTED, "booted")
    row = DomainEvent.objects.get()
    row.change = "stopped"
    with pytest.raises(ValueError):
        row.save()


# --- the tab, through the door ------------------------------------------------


def test_the_tab_shows_a_vmdash_start_once_and_a_virsh_change_outside(
    as_alice: Client, lab: Host
) -> None:
    assert as_alice.post("/hosts/lab/domains/db/start/").status_code == 302
    happen(DB, "db", Change.STARTED, "booted")
    happen(DB, "db", Change.DEFINED, "updated")
    assert shown(as_alice) == [
        "Definition changed outside vmdash (virsh or another tool)",
        "Started by alice (vmdash)",
    ]


def test_refusals_errors_and_consoles_of_others_show_on_the_tab(
    as_alice: Client, dora: User, lab: Host
) -> None:
    dora_client = Client()
    dora_client.force_login(dora)
    assert dora_client.post("/hosts/lab/domains/web1/force-off/").status_code == 403
    assert as_alice.post("/hosts/lab/domains/web1/resume/").status_code == 409  # running
    ConsoleSession.objects.create(
        kind="vnc",
        user=dora,
        username="dora",
        host="lab",
        vm_name="web1",
        vm_uuid=WEB1,
        view_only=True,
        started_at=timezone.now() - timedelta(minutes=5),
        ended_at=timezone.now() - timedelta(minutes=1),
    )
    lines = shown(as_alice, "web1")
    assert lines[:2] == ["alice could not resume the VM", "dora was refused: force off"]
    assert lines[2] == "Console opened by dora, 4 min (view only)"
    page = as_alice.get("/hosts/lab/domains/web1/timeline/").content.decode()
    assert "is running" in page  # the error's own sentence, next to the line


def test_who_may_see_the_vm_sees_its_timeline_with_names(
    as_alice: Client, dora: User, as_bob: Client, lab: Host
) -> None:
    assert as_alice.post("/hosts/lab/domains/web1/pause/").status_code == 302
    viewer = Client()
    viewer.force_login(dora)
    assert shown(viewer, "web1") == ["Paused by alice (vmdash)"]
    assert viewer.get("/hosts/lab/domains/db/timeline/").status_code == 404  # not hers
    assert as_bob.get("/hosts/lab/domains/web1/timeline/").status_code == 404
    assert viewer.post("/hosts/lab/domains/web1/timeline/").status_code == 405


def test_the_history_follows_the_vm_by_uuid_through_a_rename(as_alice: Client, lab: Host) -> None:
    DomainEvent.objects.create(
        at=timezone.now(), host="lab", uuid=DB, name="db-old", change="stopped", detail="crashed"
    )
    DomainEvent.objects.create(
        at=timezone.now(), host="lab", uuid=WEB1, name="web1", change="stopped", detail="crashed"
    )
    assert shown(as_alice) == ["Crashed: the QEMU process ended"]  # db's only


def test_the_timeline_pages_back_without_gaps_or_repeats(as_alice: Client, lab: Host) -> None:
    start = timezone.now() - timedelta(hours=3)
    DomainEvent.objects.bulk_create(
        DomainEvent(
            at=start + timedelta(minutes=i), host="lab", uuid=DB, name="db", change="stopped",
            detail="crashed", info=str(i),
        )
        for i in range(120)
    )  # fmt: skip
    ref = DomainRef("lab", "db", DB)
    seen_at: list[datetime] = []
    page = timeline.read_page(ref)
    pages = 1
    while True:
        seen_at += [line.at for line in page.lines]
        if page.older is None:
            break
        page = timeline.read_page(ref, page.older)
        pages += 1
    assert pages == 3 and len(seen_at) == 120 == len(set(seen_at))
    assert seen_at == sorted(seen_at, reverse=True)
    first = as_alice.get("/hosts/lab/domains/db/timeline/").content.decode()
    older = re.search(r'href="(/hosts/lab/domains/db/timeline/\?before=\d+)" rel="next"', first)
    assert older
    second = as_alice.get(older.group(1)).content.decode()
    assert "← Newest" in second and 'data-live="domain-timeline"' not in second
    assert len(re.findall(r'<td class="what">', second)) == 50


def test_a_malformed_before_is_the_newest_page(as_alice: Client, lab: Host) -> None:
    happen(DB, "db", Change.STOPPED, "crashed")
    for bad in ("?before=abc", "?before=-1", "?before=" + "9" * 30, "?before="):
        assert shown(as_alice, query=bad) == ["Crashed: the QEMU process ended"]


# --- live: the region the events consumer re-renders ----------------------------


def test_the_timeline_is_a_live_region_of_the_vm(lab: Host) -> None:
    region = regions.registry().get("domain-timeline")
    assert isinstance(region, regions.ObjectRegion)
    happen(DB, "db", Change.DEFINED, "updated")
    host = HostRef("lab", lab.uri)
    fresh = region.read(host, DB)
    assert (fresh.ref.host, fresh.ref.name, fresh.ref.uuid) == ("lab", "db", DB)
    html = regions.render_object(region, host, fresh, False)
    assert f'id="dom-timeline-{DB}"' in html and 'data-live="domain-timeline"' in html
    assert "Definition changed outside vmdash" in html
    # Pushed: fetched again a moment later, when vmdash's own audit entry is written.
    assert 'hx-trigger="load delay:3s, every 30s"' in html
    assert region.read(host, "11111111-0000-4000-8000-0000000000ff") is None  # gone


def test_the_page_refreshes_itself_as_an_htmx_partial(as_alice: Client, lab: Host) -> None:
    happen(DB, "db", Change.STOPPED, "crashed")
    page = as_alice.get("/hosts/lab/domains/db/timeline/", headers={"HX-Request": "true"})
    html = page.content.decode()
    assert html.lstrip().startswith('<section class="card timeline"')
    assert 'hx-trigger="every 30s"' in html and "<nav" not in html
