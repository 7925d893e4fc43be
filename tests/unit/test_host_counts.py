"""A count is information: who sees only some VMs of a host gets counts of those only.

dora may see one VM (web1) of host lab, which has three: the overview's totals
say one VM, the host card and the host page show no host-wide counts, and her
events socket is refused the host-wide card. erin (Operator on the whole
host) and the superuser see the host's own counts.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from tests.unit.test_grants import dora, erin, grant, logged_in, person  # noqa: F401
from vmdash.door import load_who
from vmdash.live.regions import HostRegion, registry
from vmdash.models import Host

pytestmark = pytest.mark.django_db


def total_vms(html: str) -> int:
    """The overview's big counts, summed, as a person reads them."""
    block = re.search(r'<ul class="counts big" id="state-totals".*?</ul>', html, re.S)
    assert block is not None
    return sum(int(n) for n in re.findall(r"</span> (\d+)</a>", block.group(0)))


def test_a_viewer_of_one_vm_counts_one_vm_and_sees_no_host_totals(
    dora: User,  # noqa: F811
) -> None:
    overview = logged_in(dora).get("/").content.decode()
    assert total_vms(overview) == 1
    assert 'data-live="host-card-partial"' in overview
    assert 'data-live="host-card"' not in overview
    page = logged_in(dora).get("/hosts/lab/").content.decode()
    assert 'data-live="host-facts-partial"' in page
    assert "Those you may see" in page


def test_who_sees_the_whole_host_gets_its_counts(
    erin: User,  # noqa: F811
    alice: User,
) -> None:
    for user in (erin, alice):
        overview = logged_in(user).get("/").content.decode()
        assert total_vms(overview) == 3
        assert 'data-live="host-card"' in overview


def test_a_no_access_on_one_vm_makes_a_host_grant_count_only_what_it_leaves(lab: Host) -> None:
    hank = person("hank")
    grant("operator", user=hank, scope="host", host="lab")
    grant("no-access", user=hank, scope="vm", host="lab",
          object_uuid="11111111-0000-4000-8000-000000000002", object_name="db")  # fmt: skip
    assert total_vms(logged_in(hank).get("/").content.decode()) == 2


def test_the_host_wide_live_card_is_refused_to_who_sees_only_some_vms(
    dora: User,  # noqa: F811
    erin: User,  # noqa: F811
    lab: Host,
) -> None:
    # The page names the region it subscribes to, so the server must check:
    # the consumer skips a host region whose may_see says no.
    for name in ("host-card", "host-facts"):
        region = registry().get(name)
        assert isinstance(region, HostRegion) and region.may_see is not None
        assert not region.may_see(load_who(dora), lab.ref)
        assert region.may_see(load_who(erin), lab.ref)
