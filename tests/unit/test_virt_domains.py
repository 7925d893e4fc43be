"""The access layer on libvirt's test driver: listing, reading, lifecycle."""

from __future__ import annotations

import libvirt
import pytest
from lxml import etree

from tests.conftest import TESTNODE_URI, WEIRD_NAME
from vmdash.virt import domains
from vmdash.virt.domains import Op, available_ops
from vmdash.virt.enums import DomainState
from vmdash.virt.errors import HostUnavailable, InvalidInput, InvalidState, NotFound
from vmdash.virt.hosts import host_info
from vmdash.virt.names import check_name, name_problem
from vmdash.virt.refs import HostRef
from vmdash.virt.xml.domain import DomainXML

LAB = HostRef("lab", TESTNODE_URI, "Lab")


def raw_state(name: str) -> DomainState:
    """Ask libvirt directly, on a connection of its own... of the same world.

    A test:///file world is private to a connection, so the check goes
    through the pool's connection, but with the bare libvirt API.
    """
    from vmdash.virt.connection import pool

    return DomainState.from_virt(pool().get(LAB.uri).lookupByName(name).state()[0])


def test_it_lists_every_vm_with_state_vcpus_and_memory() -> None:
    rows = {d.name: d for d in domains.list_domains(LAB)}
    assert set(rows) == {"web1", "db", WEIRD_NAME}
    assert rows["web1"].state == DomainState.RUNNING
    assert rows["db"].state == DomainState.SHUTOFF
    assert rows[WEIRD_NAME].state == DomainState.PAUSED
    assert rows["db"].vcpus == 4
    assert rows["web1"].memory_kib == 1024 * 1024
    assert rows["web1"].host == "lab"
    assert rows["web1"].uuid == "11111111-0000-4000-8000-000000000001"


def test_the_list_has_no_titles_until_asked_for_the_rows_on_a_page() -> None:
    rows = domains.list_domains(LAB)
    assert all(r.title == "" for r in rows)
    filled = {d.name: d for d in domains.with_metadata(LAB, rows)}
    assert filled["web1"].title == "Front web server"
    assert filled["web1"].description == "nginx + app"
    assert filled["db"].title == ""


def test_it_offers_only_operations_valid_in_the_state() -> None:
    shutoff = available_ops(
        DomainState.SHUTOFF, persistent=True, managed_save=False, autostart=False
    )
    assert Op.START in shutoff and Op.DELETE in shutoff and Op.AUTOSTART_ON in shutoff
    assert Op.SHUTDOWN not in shutoff and Op.FORCE_OFF not in shutoff
    running = available_ops(
        DomainState.RUNNING, persistent=True, managed_save=False, autostart=True
    )
    assert {Op.SHUTDOWN, Op.REBOOT, Op.PAUSE, Op.SAVE, Op.FORCE_OFF, Op.AUTOSTART_OFF} <= set(
        running
    )
    assert Op.START not in running and Op.DELETE not in running
    paused = available_ops(DomainState.PAUSED, persistent=True, managed_save=False, autostart=False)
    assert Op.RESUME in paused and Op.PAUSE not in paused
    transient = available_ops(
        DomainState.RUNNING, persistent=False, managed_save=False, autostart=False
    )
    assert Op.SAVE not in transient and Op.AUTOSTART_ON not in transient
    saved = available_ops(DomainState.SHUTOFF, persistent=True, managed_save=True, autostart=False)
    assert Op.DISCARD_SAVE in saved


def test_it_starts_a_shut_off_vm() -> None:
    domains.run_op(LAB, "db", Op.START)
    assert raw_state("db") == DomainState.RUNNING


def test_it_forces_off_pauses_and_resumes() -> None:
    domains.run_op(LAB, "web1", Op.PAUSE)
    assert raw_state("web1") == DomainState.PAUSED
    domains.run_op(LAB, "web1", Op.RESUME)
    assert raw_state("web1") == DomainState.RUNNING
    domains.run_op(LAB, "web1", Op.FORCE_OFF)
    assert raw_state("web1") == DomainState.SHUTOFF


def test_it_saves_and_restores_a_running_vm() -> None:
    domains.run_op(LAB, "web1", Op.SAVE)
    summary = domains.get_summary(LAB, "web1")
    assert summary.state == DomainState.SHUTOFF and summary.managed_save
    domains.run_op(LAB, "web1", Op.START)
    assert raw_state("web1") == DomainState.RUNNING


def test_it_turns_autostart_on_and_off() -> None:
    domains.run_op(LAB, "db", Op.AUTOSTART_ON)
    assert domains.get_summary(LAB, "db").autostart
    domains.run_op(LAB, "db", Op.AUTOSTART_OFF)
    assert not domains.get_summary(LAB, "db").autostart


def test_it_deletes_a_shut_off_vm() -> None:
    ref = domains.run_op(LAB, "db", Op.DELETE)
    assert ref.uuid == "11111111-0000-4000-8000-000000000002"
    with pytest.raises(NotFound):
        domains.get_summary(LAB, "db")


def test_starting_a_running_vm_says_so_and_changes_nothing() -> None:
    with pytest.raises(InvalidState) as err:
        domains.run_op(LAB, "web1", Op.START)
    assert str(err.value) == "Cannot start VM 'web1': it is running."
    assert raw_state("web1") == DomainState.RUNNING


def test_deleting_a_running_vm_is_refused() -> None:
    with pytest.raises(InvalidState, match="Cannot delete VM 'web1': it is running"):
        domains.run_op(LAB, "web1", Op.DELETE)
    assert raw_state("web1") == DomainState.RUNNING


def test_an_unknown_vm_is_not_found_with_its_name() -> None:
    with pytest.raises(NotFound, match="There is no VM 'nope' on host 'Lab'"):
        domains.get_detail(LAB, "nope")


def test_it_acts_on_the_vm_with_the_odd_name() -> None:
    domains.run_op(LAB, WEIRD_NAME, Op.RESUME)
    assert raw_state(WEIRD_NAME) == DomainState.RUNNING
    assert raw_state("web1") == DomainState.RUNNING


def test_detail_reads_devices_from_the_xml() -> None:
    d = domains.get_detail(LAB, "web1")
    assert d.summary.title == "Front web server"
    assert d.os_type == "hvm" and d.arch == "x86_64"
    assert d.boot_order == ("hd",)
    assert [(x.target, x.bus, x.source, x.format) for x in d.disks] == [
        ("vda", "virtio", "/guest/web1.qcow2", "qcow2")
    ]
    assert [(n.mac, n.type, n.source, n.model) for n in d.nics] == [
        ("52:54:00:00:00:01", "network", "default", "virtio")
    ]
    assert [(g.type, g.port, g.listen) for g in d.graphics] == [("vnc", 5901, "127.0.0.1")]
    assert "<name>web1</name>" in d.xml


def test_host_info_reports_cpus_memory_and_counts() -> None:
    info = host_info(LAB)
    assert info.hypervisor == "TEST"
    assert info.cpus == 4
    assert info.memory_bytes == 8 * 1024**3
    assert info.counts == {
        DomainState.RUNNING: 1,
        DomainState.SHUTOFF: 1,
        DomainState.PAUSED: 1,
    }
    assert info.vm_total == 3 and info.running == 2


def test_an_unreachable_host_raises_host_unavailable() -> None:
    down = HostRef("down", "qemu+tcp://127.0.0.1:1/system")
    with pytest.raises(
        HostUnavailable, match=r"Cannot connect to qemu\+tcp://127\.0\.0\.1:1/system"
    ):
        domains.list_domains(down)


def test_libvirt_errors_are_sorted_by_code() -> None:
    from vmdash.virt.errors import InvalidInput, translate

    conn = libvirt.open(TESTNODE_URI)
    try:
        with pytest.raises(libvirt.libvirtError) as raised:
            conn.defineXML("<domain><name>x</name>")  # not well-formed
        err = translate(raised.value, "Cannot define VM 'x'")
        assert isinstance(err, InvalidInput)
        assert str(err).startswith("Cannot define VM 'x': ")
        with pytest.raises(libvirt.libvirtError) as raised:
            conn.lookupByName("db").destroy()
        assert isinstance(translate(raised.value, ""), InvalidState)
    finally:
        conn.close()


SECRET_VM = """<domain type='test'>
  <name>vmdash-t-secret</name>
  <metadata>
    <app1:foo xmlns:app1="http://app1.org/app1/">fooish</app1:foo>
  </metadata>
  <memory unit='MiB'>64</memory>
  <os><type>hvm</type></os>
  <devices><graphics type='vnc' passwd='s3cret'/></devices>
</domain>"""


def _libvirt_xml(name: str, flags: int = 0) -> str:
    from vmdash.virt.connection import pool

    return str(pool().get(LAB.uri).lookupByName(name).XMLDesc(flags))


def test_detail_knows_a_vnc_password_is_set_but_never_holds_it() -> None:
    domains.define(LAB, SECRET_VM)
    d = domains.get_detail(LAB, "vmdash-t-secret")
    assert [(g.type, g.has_password) for g in d.graphics] == [("vnc", True)]
    assert "s3cret" not in repr(d)  # every field of the dataclass, the XML tab's text too
    assert not domains.get_detail(LAB, "web1").graphics[0].has_password


def test_an_edit_changes_only_its_nodes_and_keeps_the_foreign_metadata() -> None:
    domains.define(LAB, SECRET_VM)

    def grow(doc: DomainXML) -> None:
        doc.memory_kib = 128 * 1024
        doc.title = "Grown"

    diff = domains.edit(LAB, "vmdash-t-secret", grow)
    assert "+  <memory unit='KiB'>131072</memory>" in diff and "+  <title>Grown</title>" in diff
    assert "s3cret" not in diff
    after = DomainXML.parse(_libvirt_xml("vmdash-t-secret", libvirt.VIR_DOMAIN_XML_SECURE))
    assert (after.memory_kib, after.title) == (128 * 1024, "Grown")
    assert after.graphics[0].passwd == "s3cret"  # read back with SECURE: not lost
    assert '<app1:foo xmlns:app1="http://app1.org/app1/">fooish</app1:foo>' in after.tostring()


def test_an_edit_that_changes_nothing_defines_nothing() -> None:
    before = _libvirt_xml("web1", libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert domains.edit(LAB, "web1", lambda doc: setattr(doc, "vcpus", doc.vcpus)) == ""
    assert _libvirt_xml("web1", libvirt.VIR_DOMAIN_XML_INACTIVE) == before


def test_an_edit_libvirts_schema_refuses_is_invalid_input_and_changes_nothing() -> None:
    def unknown(doc: DomainXML) -> None:
        doc.node.append(etree.Element("no-such-element"))

    with pytest.raises(InvalidInput, match="Cannot change VM 'web1'"):
        domains.edit(LAB, "web1", unknown)
    assert "no-such-element" not in _libvirt_xml("web1")


def test_define_returns_the_ref_and_the_diff_of_a_document() -> None:
    doc = DomainXML.parse(SECRET_VM)
    doc.vcpus = 2
    ref, diff = domains.define(LAB, doc)
    assert ref.name == "vmdash-t-secret" and len(ref.uuid) == 36
    assert "+  <vcpu>2</vcpu>" in diff
    assert domains.get_summary(LAB, "vmdash-t-secret").vcpus == 2


def test_an_operation_returns_the_fresh_row_with_its_title() -> None:
    row = domains.run_op(LAB, "web1", Op.PAUSE)
    assert row.state == DomainState.PAUSED and row.title == "Front web server"
    assert row.ref.uuid == "11111111-0000-4000-8000-000000000001"


@pytest.mark.parametrize("name", ["a\x00b", "", "new\nline", "tab\there", "x" * 256, "\ud800"])
def test_a_name_no_vm_can_have_is_not_found_before_libvirt_is_asked(name: str) -> None:
    with pytest.raises(NotFound, match="There is no VM named"):
        domains.get_detail(LAB, name)
    with pytest.raises(NotFound):
        domains.run_op(LAB, name, Op.START)
    with pytest.raises(NotFound):
        domains.get_summary(LAB, name)


def test_name_checks_accept_what_libvirt_accepts() -> None:
    assert check_name("VM", WEIRD_NAME) == WEIRD_NAME
    assert check_name("VM", "ü" * 127) and name_problem("ü" * 128) is not None
    assert name_problem("a\x00b") == "a name cannot contain control characters"
