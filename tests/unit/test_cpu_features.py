"""CPU features (<cpu><feature policy name>) from the Hardware tab: what the
definition holds after (read from libvirt), the refusals, and that a kept
feature is changed in place. On libvirt's test driver and the sample XML."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from django.test import Client

from tests.conftest import TESTNODE_URI, audit_entries
from vmdash.models import Host
from vmdash.virt import cpu
from vmdash.virt.connection import pool
from vmdash.virt.xml.domain import DomainXML

pytestmark = pytest.mark.django_db
URL = "/hosts/lab/domains/web1/hardware/cpu/features/"
SAMPLE = Path(__file__).parent.parent / "data" / "xml" / "qemu-guest.in.xml"


def features() -> list[tuple[str | None, str | None]]:
    dom = pool().get(TESTNODE_URI).lookupByName("web1")
    doc = DomainXML.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return [(f.name, f.policy) for f in doc.cpu_features]


def post(client: Client, *rows: tuple[str, str]) -> str:
    data: dict[str, str] = {}
    for i, (name, policy) in enumerate(rows):
        data[f"feature-{i}-name"], data[f"feature-{i}-policy"] = name, policy
    return client.post(URL, data, follow=True).content.decode()


def test_features_need_a_mode_or_model_first(as_alice: Client, lab: Host) -> None:
    page = post(as_alice, ("avx2", "require"))
    assert "CPU features need a CPU mode other than custom, or a model" in page
    assert features() == []


def host_model(client: Client) -> None:
    client.post("/hosts/lab/domains/web1/hardware/cpu/", {"mode": "host-model"})


def test_features_land_in_the_definition_and_go_again(as_alice: Client, lab: Host) -> None:
    host_model(as_alice)
    page = post(as_alice, ("avx2", "require"), ("svm", "disable"), ("", "require"))
    assert "It applies when the VM next starts." in page
    assert features() == [("avx2", "require"), ("svm", "disable")]  # libvirt's definition
    post(as_alice, ("avx2", "forbid"))
    assert features() == [("avx2", "forbid")]
    post(as_alice)
    assert features() == []
    assert audit_entries().filter(action="vm-cpu-features", outcome="ok").count() == 3


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([("AVX 2", "require")], "is not a CPU feature name"),
        ([("avx2", "require"), ("avx2", "disable")], "Feature avx2 is listed twice."),
        ([("avx2", "maybe")], "Choose a policy"),
    ],
)
def test_what_cannot_be_is_refused(
    as_alice: Client, lab: Host, rows: list[tuple[str, str]], reason: str
) -> None:
    # (the view lower-cases names: "AVX 2" is refused for its space)
    assert reason in post(as_alice, *rows)
    assert features() == []
    assert audit_entries().get(action="vm-cpu-features").outcome == "error"


def test_a_kept_feature_changes_in_place_and_others_stay_in_order() -> None:
    doc = DomainXML.parse(
        "<domain type='kvm'><name>x</name><cpu mode='host-model'><model fallback='allow'/>"
        "<feature policy='require' name='a'/><feature policy='disable' name='b'/>"
        "<numa><cell id='0' cpus='0' memory='1024'/></numa></cpu></domain>"
    )
    cpu._edit_features(doc, [("b", "require"), ("c", "optional")])
    text = doc.tostring()
    assert "name='a'" not in text
    assert text.index("name='b'") < text.index("name='c'") < text.index("<numa>")
    assert "<model fallback='allow'/>" in text


def test_the_page_offers_the_hosts_features_and_bob_may_not(
    as_alice: Client, as_bob: Client, lab: Host
) -> None:
    page = as_alice.get("/hosts/lab/domains/web1/hardware/").content.decode()
    assert 'id="cpu-features-form"' in page
    assert as_bob.post(URL, {"feature-0-name": "avx2"}).status_code == 404
    assert features() == []


def test_the_sample_keeps_everything_else() -> None:
    doc = DomainXML.parse(SAMPLE.read_text())
    before = [(f.name, f.policy) for f in doc.cpu_features]
    cpu._edit_features(doc, [*before, ("pdpe1gb", "require")])
    assert [(f.name, f.policy) for f in doc.cpu_features] == [*before, ("pdpe1gb", "require")]
