"""The storage pages' live regions (vmdash/live/regions.py routes pool events to them).

pool-row   pool-<uuid>   storage/pools.html#row   a pool's row on the pools page:
                                                  state, space, autostart, volume count
"""

from __future__ import annotations

from typing import Any

from storage.models import IsoLibrary
from vmdash.live.regions import ObjectRegion, register, registry
from vmdash.policy import Action
from vmdash.virt.events import ObjectKind
from vmdash.virt.refs import HostRef, PoolRef
from vmdash.virt.storage import PoolSummary, read_pool


def row_context(host: HostRef, p: PoolSummary, may_manage: bool) -> dict[str, Any]:
    library = IsoLibrary.objects.filter(host=host.slug).values_list("pool_uuid", flat=True)
    return {"p": p, "host": host, "can_manage": may_manage, "library_uuid": next(iter(library), "")}


registry().ref_maker(ObjectKind.POOL, PoolRef)
register(
    ObjectRegion(
        name="pool-row",
        element_id="pool-{uuid}",
        partial="storage/pools.html#row",
        read=read_pool,
        context=row_context,
        kind=ObjectKind.POOL,
        act=Action.MANAGE_STORAGE,
        tag="tr",
    )
)
