"""The serial console over a WebSocket: one libvirt console stream per connection.

Binary frames carry terminal bytes both ways; text frames from the server are
JSON status messages ({"type": "status", "state": ..., "message": ...}).
Query parameters: `force=1` takes the console over from whoever holds it;
`view_only=1` asks for a console without input.

The consumer joins the user's revocation group (vmdash/revoke.py): a logout,
deactivation or password change closes the console at once ("Your session
ended."), with its console-close audit entry.

libvirt work (opening, writing, closing the stream) runs in worker threads;
the stream's output arrives on libvirt's event loop thread and is handed to
this consumer's asyncio loop with call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

import vmdash.virt.domains as virt_domains
from vmdash import door, revoke
from vmdash.audit import Actor, Outcome, record
from vmdash.console import sessions
from vmdash.console.models import ConsoleSession
from vmdash.virt import consoles
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import DomainRef, HostRef

log = logging.getLogger(__name__)

# Close codes (4000-4999 are the application's): the page reads the status
# message sent just before; the code is for logs and tests.
CLOSE_DENIED = 4403
CLOSE_UNAVAILABLE = 4409
CLOSE_ENDED = 4000
CLOSE_REVOKED = 4001
CHECK_SECONDS = 2.0  # how often an open console asks whether its login still holds
HEARTBEAT = sessions.HEARTBEAT.total_seconds()
_CLOSED = object()  # queue marker: the stream ended (followed by the reason)


class Denied(Exception):
    pass


def _authorize(
    scope: dict[str, Any], host_slug: str, name: str, want_view_only: bool
) -> tuple[HostRef, DomainRef, bool]:
    """The door, as for the console pages: 404-worthy and 403-worthy both refuse."""
    who = door.load_who(scope.get("user"))
    if not who.active:
        raise Denied(_("Log in to use the serial console."))
    try:
        return door.console(who, host_slug, name, want_view_only)
    except Http404:
        raise Denied(_("No such VM, or you may not see it.")) from None
    except PermissionDenied:
        record(
            Actor.of_scope(scope),
            "console-denied",
            DomainRef(host_slug, name),
            Outcome.DENIED,
            "serial console: no console rights",
        )
        raise Denied(_("You may not open the console of this VM.")) from None


def _holders(host: str, name: str, exclude: int | None = None) -> list[ConsoleSession]:
    return [
        s
        for s in sessions.present(host, name).filter(kind=ConsoleSession.Kind.SERIAL)
        if s.pk != exclude
    ]


class SerialConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    console: consoles.SerialConsole | None = None
    session: ConsoleSession | None = None
    view_only = False
    pump: asyncio.Task[None] | None = None
    group: str | None = None

    async def connect(self) -> None:
        await self.accept()
        kwargs = self.scope["url_route"]["kwargs"]
        self.host_slug, self.vm_name = str(kwargs["host"]), str(kwargs["name"])
        query = parse_qs(self.scope.get("query_string", b"").decode())
        force = query.get("force") == ["1"]
        user = self.scope["user"]
        try:
            self.host_ref, self.ref, self.view_only = await database_sync_to_async(_authorize)(
                self.scope, self.host_slug, self.vm_name, query.get("view_only") == ["1"]
            )
        except Denied as err:
            await self.status("denied", str(err))
            await self.close(CLOSE_DENIED)
            return
        # Joined before the stream opens: a logout from now on closes this console.
        self.group = revoke.user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)

        loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

        def on_data(data: bytes) -> None:
            loop.call_soon_threadsafe(self.queue.put_nowait, data)

        def on_close(reason: str) -> None:
            loop.call_soon_threadsafe(self.queue.put_nowait, _CLOSED)
            loop.call_soon_threadsafe(self.queue.put_nowait, reason)

        try:
            self.console = await self._open(force, on_data, on_close)
        except consoles.ConsoleUnavailable as err:
            message = str(err)
            if err.reason == "busy":
                message = await self._busy_message()
            await self.status(err.reason, message)
            await self.close(CLOSE_UNAVAILABLE)
            return
        except VirtError as err:
            await self.status("error", str(err))
            await self.close(CLOSE_UNAVAILABLE)
            return

        client = self.scope.get("client") or [None]
        self.session = await database_sync_to_async(sessions.open_session)(
            kind=ConsoleSession.Kind.SERIAL,
            user=user,
            username=user.get_username(),
            host=self.host_slug,
            vm_name=self.vm_name,
            vm_uuid=self.ref.uuid,
            view_only=self.view_only,
            remote_addr=client[0],
        )
        if force:
            await database_sync_to_async(self._close_displaced)()
        await self.status(
            "connected",
            _("Connected (view only): you see the console but cannot type.")
            if self.view_only
            else _("Connected."),
            view_only=self.view_only,
        )
        self.pump = asyncio.create_task(self._pump())

    async def _open(
        self, force: bool, on_data: Callable[[bytes], None], on_close: Callable[[str], None]
    ) -> consoles.SerialConsole:
        """The stream; "busy" only if it stays busy. A stream of this console that
        vmdash just closed (a reload, a tab closed a moment ago) is released by
        libvirtd a little after its session ended: while no open session of ours
        holds it, look again for up to ~2.5 s before sending the person away."""
        for pause in (0.3, 0.7, 1.5, None):
            try:
                return await asyncio.to_thread(
                    consoles.open_serial,
                    self.host_ref,
                    self.vm_name,
                    force=force,
                    on_data=on_data,
                    on_close=on_close,
                )
            except consoles.ConsoleUnavailable as err:
                if err.reason != "busy" or pause is None:
                    raise
                if await database_sync_to_async(_holders)(self.host_slug, self.vm_name):
                    raise
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    def _close_displaced(self) -> None:
        """Sessions whose stream we just forced away; their consumers also close them."""
        assert self.session is not None
        for other in _holders(self.host_slug, self.vm_name, exclude=self.session.pk):
            sessions.close_session(other, f"taken over by {self.session.username}")

    async def _busy_message(self) -> str:
        holders = await database_sync_to_async(_holders)(self.host_slug, self.vm_name)
        if holders:
            who = ", ".join(
                f"{h.username} (since {timezone.localtime(h.started_at):%H:%M:%S})" for h in holders
            )
            return _(
                "The serial console is in use by %(who)s. Take it over to use it yourself."
            ) % {"who": who}
        return _(
            "The serial console is in use by a client outside vmdash (e.g. virsh console). "
            "Take it over to use it yourself."
        )

    async def status(self, state: str, message: str, **extra: Any) -> None:
        await self.send(
            text_data=json.dumps({"type": "status", "state": state, "message": message, **extra})
        )

    async def _pump(self) -> None:
        """Relay console output to the browser; notice the end of the stream."""
        touched = time.monotonic()
        while True:
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout=CHECK_SECONDS)
            except TimeoutError:
                # A logout in another process (or a deactivation written straight to
                # the database) sends no message here: ask again every CHECK_SECONDS.
                if not await database_sync_to_async(self._session_holds)():
                    await self._end_revoked()
                    return
                if self.session is not None and time.monotonic() - touched > HEARTBEAT:
                    touched = time.monotonic()
                    await database_sync_to_async(sessions.touch)(self.session)
                continue
            if item is _CLOSED:
                reason = await self.queue.get()
                await self._ended(str(reason))
                return
            chunks = [item]
            while not self.queue.empty() and len(chunks) < 64:
                peek = self.queue.get_nowait()
                if peek is _CLOSED:
                    await self.send(bytes_data=b"".join(chunks))
                    await self._ended(str(await self.queue.get()))
                    return
                chunks.append(peek)
            await self.send(bytes_data=b"".join(chunks))

    async def _ended(self, reason: str) -> None:
        """The stream ended under us: say why (VM stopped, taken over, lost)."""
        self.console = None
        state, message = await asyncio.to_thread(self._why_ended, reason)
        await self._close_session(message)
        await self.status(state, message)
        await self.close(CLOSE_ENDED)

    def _why_ended(self, reason: str) -> tuple[str, str]:
        """Stopped VM, taken over, or closed. Both a stopping VM (its console ends a
        moment before libvirt reports it off) and a take-over (whose session is
        recorded just after it opens) need a short second look."""
        mine = self.session.pk if self.session else None
        since = self.session.started_at if self.session else None
        failed: VirtError | None = None
        # A VM being destroyed holds libvirt's job for as long as its QEMU takes
        # to be reaped (1-2 s on a host whose init reaps slowly): a lookup in
        # that time may fail, and the next one says "shut off".
        for pause in (0, 0.3, 0.7, 1.5, 2.5):
            time.sleep(pause)
            try:
                summary = virt_domains.get_summary(self.host_ref, self.vm_name)
            except VirtError as err:
                failed = err
                continue
            failed = None
            if not summary.state.is_active:
                return (
                    "stopped",
                    _("The VM stopped (%(state)s).") % {"state": summary.state.label},
                )
            newer = [
                s
                for s in _holders(self.host_slug, self.vm_name, exclude=mine)
                if since is None or s.started_at >= since
            ]
            if newer:
                return "taken-over", _("%(user)s took over the serial console.") % {
                    "user": newer[-1].username
                }
        if failed is not None:
            return "error", _("The serial console closed: %(err)s") % {"err": failed}
        if reason == "error":
            return "taken-over", _("A client outside vmdash took over the serial console.")
        return "closed", _("The serial console closed.")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.console is None or self.view_only:
            return
        data = bytes_data if bytes_data is not None else (text_data or "").encode()
        if data:
            await asyncio.to_thread(self.console.write, data)

    def _session_key(self) -> str | None:
        session: Any = self.scope.get("session")
        return session.session_key if session is not None else None

    def _session_holds(self) -> bool:
        """Still logged in, and still allowed this console (a grant may have ended)?"""
        user = self.scope.get("user")
        key = self._session_key()
        who = door.load_who_id(user.pk if user is not None else None)
        if not door.console_allowed(who, self.ref, self.view_only):
            return False
        # A consumer without a session (tests' communicators) is checked by its user only.
        if key is None:
            return who.active
        return revoke.session_holds(user.pk if user is not None else None, key)

    async def vmdash_rights(self, message: dict[str, Any]) -> None:
        """A grant of this user was given, changed or taken back: ask again at once."""
        if not await database_sync_to_async(self._session_holds)():
            await self._end_revoked(_("Your access to this console ended."))

    async def vmdash_revoked(self, message: dict[str, Any]) -> None:
        """Logout, deactivation or password change: this console ends now."""
        if revoke.is_revoked_for(message, self._session_key()):
            await self._end_revoked()

    async def _end_revoked(self, why: str = "") -> None:
        if self.pump is not None and self.pump is not asyncio.current_task():
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
        self.pump = None
        if self.console is not None:
            console, self.console = self.console, None
            await asyncio.to_thread(console.close)
        await self._close_session("access ended" if why else "the user's session ended")
        await self.status("ended", why or _("Your session ended."))
        await self.close(CLOSE_REVOKED)

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
        if self.console is not None:
            console, self.console = self.console, None
            await asyncio.to_thread(console.close)
        await self._close_session("browser disconnected")

    async def _close_session(self, reason: str) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await database_sync_to_async(sessions.close_session)(session, reason)
