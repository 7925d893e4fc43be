"""The network pages' live regions (vmdash/live/regions.py routes events to them).

    network-row     net-<uuid>       networks/list.html#row       a row of a host's list
    network-header  net-head-<uuid>  networks/detail.html#header  a network's page
                                     (networks/_gone.html once it is deleted)
    network-list-refresh  net-refresh-<host>  networks/_refresh.html  a host's list:
                                     has the browser load the table again

Rows and headers are re-read by UUID when libvirt reports the network defined,
undefined, started or stopped; the variant with buttons is for those who may
manage networks. A network defined elsewhere (virsh net-define) has no row
yet: any change on the host (a network or VM defined, undefined, started,
stopped) sends the list the refresh, which carries nothing but "load the
table again": the browser's own request renders it, through the door, with
that person's rows and buttons. libvirt 9.0 sends no event for DHCP leases.
"""

from __future__ import annotations

from vmdash.live.regions import HostRegion, ObjectRegion, register, registry
from vmdash.policy import Action
from vmdash.virt.events import ObjectKind
from vmdash.virt.networks import read_network
from vmdash.virt.refs import NetworkRef

registry().ref_maker(ObjectKind.NETWORK, NetworkRef)
register(
    ObjectRegion(
        name="network-row",
        element_id="net-{uuid}",
        partial="networks/list.html#row",
        read=read_network,
        context=lambda host, n, may_act: {"host": host, "n": n, "can_manage": may_act},
        kind=ObjectKind.NETWORK,
        act=Action.MANAGE_NETWORKS,
        tag="tr",
    )
)
register(
    ObjectRegion(
        name="network-header",
        element_id="net-head-{uuid}",
        partial="networks/detail.html#header",
        read=read_network,
        context=lambda host, n, may_act: {"host": host, "n": n, "can_manage": may_act},
        kind=ObjectKind.NETWORK,
        act=Action.MANAGE_NETWORKS,
        gone="networks/_gone.html",
        tag="section",
    )
)
register(
    HostRegion(
        name="network-list-refresh",
        element_id="net-refresh-{host}",
        partial="networks/_refresh.html",
        read=lambda host: None,  # nothing to read: the browser reads the table itself
        context=lambda host, _nothing: {"host": host, "pushed": True},
    )
)
