"""The field layer's primitives: typed reads, in-place writes, removal, output style."""

from __future__ import annotations

import pytest

from vmdash.virt import xml
from vmdash.virt.errors import InvalidInput
from vmdash.virt.xml.domain import DomainXML


def test_an_absent_or_unreadable_value_reads_as_none() -> None:
    doc = DomainXML.parse("<domain><vcpu>many</vcpu></domain>")
    assert doc.vcpus is None and doc.name is None and doc.memory_kib is None
    assert len(doc.disks) == 0 and list(doc.graphics) == []


def test_memory_is_read_in_kib_whatever_the_unit_and_written_in_it_when_it_fits() -> None:
    doc = DomainXML.parse(
        "<domain><memory unit='GiB'>2</memory><currentMemory>5</currentMemory></domain>"
    )
    assert (doc.memory_kib, doc.current_memory_kib) == (2 * 1024**2, 5)
    doc.memory_kib = 3 * 1024**2
    doc.current_memory_kib = 1536
    assert doc.tostring() == (
        "<domain><memory unit='GiB'>3</memory>"
        "<currentMemory unit='KiB'>1536</currentMemory></domain>"
    )


def test_none_removes_the_node_and_a_flag_removes_its_element() -> None:
    doc = DomainXML.parse(
        "<domain>\n  <title>t</title>\n  <features>\n    <acpi/>\n  </features>\n</domain>"
    )
    doc.title = None
    doc.acpi = False
    assert doc.tostring() == "<domain>\n  <features/>\n</domain>"


def test_created_elements_go_where_libvirt_puts_them_even_in_a_one_line_document() -> None:
    doc = DomainXML.parse("<domain><name>x</name><devices/></domain>")
    doc.uuid = "u"
    doc.kernel = "/k"
    doc.os_type = "hvm"
    assert doc.tostring() == (
        "<domain><name>x</name><uuid>u</uuid>"
        "<os><type>hvm</type><kernel>/k</kernel></os><devices/></domain>"
    )


def test_output_is_in_libvirts_style_and_keeps_other_tools_metadata_as_written() -> None:
    text = (
        '<domain type="test"><name>it\'s "x"</name>'
        '<metadata><a:b xmlns:a="urn:a" c="it\'s">"q"</a:b></metadata></domain>'
    )
    assert xml.tostring(xml.parse(text)) == (
        "<domain type='test'><name>it&apos;s &quot;x&quot;</name>"
        '<metadata><a:b xmlns:a="urn:a" c="it\'s">"q"</a:b></metadata></domain>'
    )


def test_malformed_xml_and_the_wrong_root_are_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        DomainXML.parse("<domain><name>x</domain>")
    with pytest.raises(InvalidInput, match="describes a <network>"):
        DomainXML.parse("<network/>")


def test_the_password_is_hidden_in_text_for_people() -> None:
    assert xml.hide_secrets("<graphics type='vnc' passwd='s3cret'/>") == (
        "<graphics type='vnc' passwd='(hidden)'/>"
    )
