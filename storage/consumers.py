"""Uploads into a storage volume over a WebSocket, streamed through libvirt.

Why a WebSocket and not an HTTP POST: Daphne writes a request body to a
temporary file on the web host before the view sees it, and a multi-GB image
must reach the hypervisor without landing on the web host's disk or in its
memory. Here the browser sends the file in binary frames of one chunk each;
every chunk is written to libvirt (virStreamSend, on the host's connection,
so a qemu+ssh host works like the local one) before it is acknowledged, and
the browser keeps at most WINDOW chunks unacknowledged: the server never
holds more than WINDOW chunks of the file.

Protocol (text frames are JSON):
  browser → {"type": "start", "volume": name, "size": bytes, "new": true|false}
  server  → {"type": "ready", "window": WINDOW, "chunk": CHUNK}   or "error"
  browser → binary chunks ... ; server → {"type": "ack", "sent": bytes} per chunk
  server  → {"type": "done", "volume": name}  once every byte is written
  browser → {"type": "cancel"}  (server → {"type": "cancelled"})
A cancel, a dropped connection or a logout aborts the stream and removes the
volume if this upload created it. One audit entry per upload, with the outcome.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from storage import claims
from vmdash import door, revoke
from vmdash.audit import Actor, Outcome, record
from vmdash.policy import Action
from vmdash.virt import storage as virt
from vmdash.virt.errors import InvalidInput, InvalidState, VirtError
from vmdash.virt.refs import HostRef, PoolRef, VolumeRef

CHUNK = 1 << 20
WINDOW = 4
CLOSE_DONE = 4000
CLOSE_REFUSED = 4409


_LEFTOVER = {
    virt.Leftover.NONE: "",
    virt.Leftover.REMOVED: gettext_lazy("The half-written volume '%(name)s' was removed."),
    virt.Leftover.LEFT: gettext_lazy(
        "The half-written volume '%(name)s' could not be removed: delete it by hand."
    ),
}


class Refused(Exception):
    pass


def _authorize(
    scope: dict[str, Any], host: str, pool_name: str, volume: str, new: bool
) -> tuple[HostRef, PoolRef | VolumeRef]:
    """The door: MANAGE_STORAGE on the pool (a new volume) or on the volume (over it).

    A script's API token (people/tokens.py TokenScope) brings its own, bounded Who."""
    who = scope.get("vmdash_who") or door.load_who(scope.get("user"))
    if not who.active:
        raise Refused(_("Log in to upload."))
    try:
        if new:
            return door.pool(who, host, pool_name, Action.MANAGE_STORAGE)
        return door.volume(who, host, pool_name, volume, Action.MANAGE_STORAGE)
    except (Http404, PermissionDenied) as err:
        record(
            Actor.of_scope(scope),
            "volume-upload",
            PoolRef(host, pool_name),
            Outcome.DENIED,
            f"upload into {volume!r}: {err}" if volume else f"upload: {err}",
        )
        raise Refused(_("No such pool or volume, or you may not upload into it.")) from None


class UploadConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    upload: virt.Upload | None = None
    group: str | None = None
    ended = False
    claim: str | None = None  # storage/claims.py: this upload holds the volume
    beaten = 0.0

    async def connect(self) -> None:
        await self.accept()
        kwargs = self.scope["url_route"]["kwargs"]
        self.host_slug, self.pool_name = str(kwargs["host"]), str(kwargs["name"])
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(_("Log in to upload."))
            return
        try:  # the pool, at once: a socket nobody may use is not left open
            await database_sync_to_async(_authorize)(
                self.scope, self.host_slug, self.pool_name, "", True
            )
        except Refused as err:
            await self._refuse(str(err))
            return
        self.group = revoke.user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.started = time.monotonic()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if bytes_data is not None:
            await self._chunk(bytes_data)
            return
        try:
            message = json.loads(text_data or "")
        except ValueError:
            await self._refuse(_("The upload sent a message vmdash does not read."), "refused")
            return
        if message.get("type") == "start" and self.upload is None:
            await self._start(message)
        elif message.get("type") == "cancel":
            await self._end(Outcome.ERROR, _("cancelled"), {"type": "cancelled"})

    async def _start(self, message: dict[str, Any]) -> None:
        name, new = str(message.get("volume", "")), bool(message.get("new", True))
        try:
            size = int(message.get("size", 0))
            host, _ref = await database_sync_to_async(_authorize)(
                self.scope, self.host_slug, self.pool_name, name, new
            )
            if new and (problem := virt.volume_name_problem(name)):
                raise InvalidInput(_("The volume name cannot be used: %(why)s.") % {"why": problem})
            upload = virt.Upload(host, self.pool_name, name, size, new)
            await self._claim(name)
            try:
                await asyncio.to_thread(upload.open)
            except VirtError:
                await self._unclaim()
                raise
        except (Refused, VirtError, ValueError) as err:
            if not isinstance(err, Refused):
                await self._audit(
                    VolumeRef(self.host_slug, self.pool_name, name), Outcome.ERROR, str(err)
                )
            await self._refuse(str(err), "denied" if isinstance(err, Refused) else "refused")
            return
        self.upload, self.started = upload, time.monotonic()
        self.beaten = self.started
        await self.send(json.dumps({"type": "ready", "window": WINDOW, "chunk": CHUNK}))

    async def _chunk(self, data: bytes) -> None:
        upload = self.upload
        if upload is None or self.ended:
            await self._refuse(_("Send the start message first."), "refused")
            return
        try:
            sent = await asyncio.to_thread(upload.send, data)
            if sent == upload.size:
                await asyncio.to_thread(upload.finish)
                await self._end(Outcome.OK, "", {"type": "done", "volume": upload.name})
                return
        except VirtError as err:
            await self._end(Outcome.ERROR, str(err), {"type": "error", "message": str(err)})
            return
        if time.monotonic() - self.beaten > claims.BEAT_EVERY_S and self.claim:
            self.beaten = time.monotonic()
            await database_sync_to_async(claims.beat)(self.claim)
        await self.send(json.dumps({"type": "ack", "sent": sent}))

    async def _claim(self, name: str) -> None:
        """The volume for this upload alone, across web workers (storage/claims.py)."""
        self.claim = await database_sync_to_async(claims.claim)(
            self.host_slug, self.pool_name, name
        )
        if self.claim is None:
            raise InvalidState(
                _("Volume '%(name)s' is being uploaded already; wait for it to end.")
                % {"name": name}
            )

    async def _unclaim(self) -> None:
        if self.claim is not None:
            await database_sync_to_async(claims.release)(self.claim)
            self.claim = None

    async def _end(self, outcome: str, why: str, reply: dict[str, Any]) -> None:
        """Once per upload: abort unless it finished, audit, tell the page, close."""
        if self.ended:
            return
        self.ended = True
        upload = self.upload
        if upload is not None:
            if outcome != Outcome.OK:
                left = await asyncio.to_thread(upload.abort)
                if left != virt.Leftover.NONE:  # say what became of the volume
                    said = str(_LEFTOVER[left]) % {"name": upload.name}
                    why = f"{why}; {said}"
                    reply = {
                        **reply,
                        "message": " ".join(filter(None, [reply.get("message"), said])),
                    }
            await self._unclaim()
            took = time.monotonic() - self.started
            what = f"{upload.sent} of {upload.size} bytes in {took:.1f} s"
            await self._audit(upload.ref or VolumeRef(self.host_slug, self.pool_name, upload.name),
                              outcome, f"{why}: {what}" if why else what)  # fmt: skip
        try:
            await self.send(json.dumps(reply))
            await self.close(CLOSE_DONE if outcome == Outcome.OK else CLOSE_REFUSED)
        except RuntimeError:
            pass  # the socket is gone already

    async def _audit(self, ref: VolumeRef, outcome: str, message: str) -> None:
        await database_sync_to_async(record)(
            Actor.of_scope(self.scope), "volume-upload", ref, outcome, message
        )

    async def _refuse(self, message: str, reason: str = "denied") -> None:
        self.ended = True
        await self.send(json.dumps({"type": "error", "reason": reason, "message": message}))
        await self.close(CLOSE_REFUSED)

    async def disconnect(self, code: int) -> None:
        if self.upload is not None and not self.ended:
            await self._end(Outcome.ERROR, _("the connection dropped"), {"type": "error"})
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def vmdash_revoked(self, message: dict[str, Any]) -> None:
        session: Any = self.scope.get("session")
        if revoke.is_revoked_for(message, session.session_key if session is not None else None):
            await self._end(
                Outcome.ERROR,
                _("the session ended"),
                {"type": "error", "message": _("Your session ended.")},
            )
