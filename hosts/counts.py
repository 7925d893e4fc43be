"""How many VMs of a host a person may know about, by state.

Someone who may see every VM of a host (vmdash.policy.sees_every_vm) gets
the host's own counts, one bulk call; anyone else gets the count of the VMs
they may see, from the VM list's bulk read: a host-wide count would tell
them about VMs they may not see.
"""

from __future__ import annotations

from vmdash import policy
from vmdash.policy import Action, Who
from vmdash.virt.domains import list_domains, state_counts
from vmdash.virt.enums import DomainState
from vmdash.virt.refs import HostRef


def counts_for(who: Who, host: HostRef) -> dict[DomainState, int]:
    """VMs by state that `who` may see on `host`; raises HostUnavailable."""
    if policy.sees_every_vm(who, host):
        return state_counts(host)
    counts: dict[DomainState, int] = {}
    for row in list_domains(host):
        if policy.can(who, Action.VIEW, row.ref):
            counts[row.state] = counts.get(row.state, 0) + 1
    return counts


def partial_hosts(who: Who, hosts: list[HostRef]) -> frozenset[str]:
    """The hosts of which `who` sees only some VMs: their pages show no host-wide counts."""
    return frozenset(h.slug for h in hosts if not policy.sees_every_vm(who, h))
