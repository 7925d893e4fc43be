"""The messages the events service publishes, and the groups it publishes to.

Every message is a plain dict (msgpack-able for channels-redis) of type
`live.event`. It names the object and the change; it carries no state to
show: a consumer re-reads the object before rendering anything.

Groups (channel-layer group names allow letters, digits, '-', '_' and '.'):

    vmdash.all                 every message; one recorder per web process
    vmdash.h.<host>            everything about one host (VMs, networks, pools, status)
    vmdash.s.<host>            the host's status only (up = resync, down)
    vmdash.<d|n|p>.<host>.<uuid>  one VM, network or storage pool
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from vmdash.virt.events import Event, HostStatus, ObjectKind

ALL = "vmdash.all"
MESSAGE_TYPE = "live.event"

_KIND_LETTER = {ObjectKind.DOMAIN: "d", ObjectKind.NETWORK: "n", ObjectKind.POOL: "p"}


class LiveMessage(TypedDict):
    type: str  # MESSAGE_TYPE
    id: str  # "<epoch>:<host>:<seq>", unique per deployment
    epoch: str  # changes when the events service restarts
    seq: int  # per host, +1 for every message about that host
    host: str
    kind: Literal["domain", "network", "pool", "host"]
    change: str  # a virt.events.Change value, or "up" / "down" for kind "host"
    uuid: str
    name: str
    detail: str
    info: str
    at: float  # when libvirt's callback ran (time.time())
    sent: NotRequired[float]  # when the service published it


def host_group(host: str) -> str:
    return f"vmdash.h.{host}"


def status_group(host: str) -> str:
    return f"vmdash.s.{host}"


def object_group(host: str, kind: ObjectKind | str, uuid: str) -> str:
    return f"vmdash.{_KIND_LETTER[ObjectKind(kind)]}.{host}.{uuid}"


def to_message(event: Event, epoch: str, seq: int) -> LiveMessage:
    if isinstance(event, HostStatus):
        return LiveMessage(
            type=MESSAGE_TYPE,
            id=f"{epoch}:{event.host}:{seq}",
            epoch=epoch,
            seq=seq,
            host=event.host,
            kind="host",
            change="up" if event.up else "down",
            uuid="",
            name="",
            detail=event.message,
            info="",
            at=event.at,
        )
    return LiveMessage(
        type=MESSAGE_TYPE,
        id=f"{epoch}:{event.host}:{seq}",
        epoch=epoch,
        seq=seq,
        host=event.host,
        kind=event.kind.value,
        change=event.change.value,
        uuid=event.uuid,
        name=event.name,
        detail=event.detail,
        info=event.info,
        at=event.at,
    )


def groups_for(message: LiveMessage) -> list[str]:
    """Where one message goes: the recorder, its host, and its object or status group."""
    host = message["host"]
    if message["kind"] == "host":
        return [ALL, host_group(host), status_group(host)]
    return [ALL, host_group(host), object_group(host, message["kind"], message["uuid"])]
