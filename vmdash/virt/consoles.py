"""Consoles: where a VM's VNC display can be reached, and its serial console.

The graphical side only *reads*: virDomainGetXMLDesc(VIR_DOMAIN_XML_SECURE)
gives the VNC listen address, port and password of the running VM, which the
console tickets carry to the proxy. The serial side opens a virStream with
virDomainOpenConsole and pumps it on libvirt's event loop thread (see
connection.ensure_event_loop), never on an asyncio loop.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import libvirt
from lxml import etree

from vmdash.virt import xml
from vmdash.virt.connection import ensure_event_loop, is_remote, pool
from vmdash.virt.domains import lookup
from vmdash.virt.errors import InvalidState
from vmdash.virt.refs import HostRef

log = logging.getLogger(__name__)


class ConsoleUnavailable(InvalidState):
    """The console cannot be opened now; `reason` says why, for the page:

    not-running, no-graphics, unsupported-graphics, loopback-only, no-serial, busy.
    """

    def __init__(self, message: str, *, reason: str, code: int | None = None) -> None:
        super().__init__(message, code=code)
        self.reason = reason


@dataclass(frozen=True)
class VncTarget:
    """Where the console proxy connects for one running VM's VNC display."""

    uuid: str
    name: str
    domain_id: int  # libvirt's id of this run of the VM: a restart changes it
    host: str  # address or host name to connect to; "" when `socket` is set
    port: int
    socket: str = ""  # unix socket path (listen type='socket', local hosts only)
    password: str = field(default="", repr=False)


_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


def _is_loopback(address: str) -> bool:
    if address in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def _remote_hostname(uri: str) -> str:
    return urlsplit(uri).hostname or ""


def _connect_address(host: HostRef, name: str, listen: str) -> str:
    """The address the proxy (on this machine) uses to reach a VNC `listen` address."""
    if not is_remote(host.uri):
        if listen in _WILDCARDS:
            return "::1" if listen in ("::", "[::]") else "127.0.0.1"
        return listen.strip("[]")
    remote = _remote_hostname(host.uri)
    if _is_loopback(listen):
        raise ConsoleUnavailable(
            f"The display of VM '{name}' listens only on the loopback address ({listen}) of "
            f"host '{host.label}', which the console proxy on this machine cannot reach. "
            f"Change the VM's VNC listen address to an address of {remote or 'that host'} "
            "(or 0.0.0.0) and restart the VM, and let this machine reach that host's "
            "VNC ports (5900 and up) through its firewall.",
            reason="loopback-only",
        )
    if listen in _WILDCARDS:
        if not remote:
            raise ConsoleUnavailable(
                f"Cannot tell the address of host '{host.label}' from its URI {host.uri}.",
                reason="loopback-only",
            )
        return remote
    return listen.strip("[]")


def _vnc_target(host: HostRef, dom: libvirt.virDomain) -> VncTarget:
    name = str(dom.name())
    root = xml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE))
    graphics = root.findall("devices/graphics")
    vnc = next((g for g in graphics if g.get("type") == "vnc"), None)
    if vnc is None:
        if graphics:
            kinds = ", ".join(sorted({(g.get("type") or "?").upper() for g in graphics}))
            raise ConsoleUnavailable(
                f"VM '{name}' has a {kinds} display; the browser console speaks VNC only. "
                "Add a VNC graphics device to the VM to use this tab.",
                reason="unsupported-graphics",
            )
        raise ConsoleUnavailable(
            f"VM '{name}' has no graphical display: add a VNC graphics device to see its "
            "screen, or use its serial console.",
            reason="no-graphics",
        )
    if not dom.isActive():
        raise ConsoleUnavailable(
            f"VM '{name}' is not running: start it to see its screen.", reason="not-running"
        )
    listen_node = vnc.find("listen")
    listen_type = listen_node.get("type", "address") if listen_node is not None else "address"
    password = vnc.get("passwd") or ""
    uuid, domain_id = str(dom.UUIDString()), int(dom.ID())
    if listen_type == "socket":
        path = (listen_node.get("socket") if listen_node is not None else "") or vnc.get("socket")
        if is_remote(host.uri) or not path:
            raise ConsoleUnavailable(
                f"The display of VM '{name}' listens on a unix socket on host "
                f"'{host.label}', which the console proxy cannot reach. Give the VM a VNC "
                "listen address instead.",
                reason="loopback-only",
            )
        return VncTarget(uuid, name, domain_id, host="", port=0, socket=path, password=password)
    if listen_type == "none":
        raise ConsoleUnavailable(
            f"The VNC display of VM '{name}' listens nowhere (listen type 'none').",
            reason="no-graphics",
        )
    port_text = vnc.get("port", "-1")
    port = int(port_text) if port_text.lstrip("-").isdigit() else -1
    if port <= 0:
        raise ConsoleUnavailable(
            f"The VNC display of VM '{name}' has no port yet.", reason="no-graphics"
        )
    listen = vnc.get("listen") or xml.attr(vnc, "listen", "address")
    address = _connect_address(host, name, listen)
    return VncTarget(uuid, name, domain_id, host=address, port=port, password=password)


def vnc_target(host: HostRef, name: str) -> VncTarget:
    """Where the proxy reaches VM `name`'s VNC display, with its password.

    virDomainGetXMLDesc(VIR_DOMAIN_XML_SECURE) on the live VM; raises
    ConsoleUnavailable (not running, no VNC, unreachable listen address),
    NotFound, HostUnavailable.
    """
    return pool().call(
        host.uri,
        lambda conn: _vnc_target(host, lookup(conn, host, name)),
        f"Cannot read the display of VM '{name}'",
    )


def same_run(host: HostRef, uuid: str, domain_id: int) -> bool:
    """Is the VM `uuid` still running as the same QEMU process (same domain id)?

    One virDomainLookupByUUIDString (the id comes with it: -1 when shut off).
    A VM stopped and started again has another id and may hold another VM's
    old VNC port, so a ticket issued for the earlier run must not reach it.
    Raises HostUnavailable.
    """

    def check(conn: libvirt.virConnect) -> bool:
        try:
            return int(conn.lookupByUUIDString(uuid).ID()) == domain_id
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise

    return pool().call(host.uri, check, "Cannot check the VM behind a console ticket")


def quiet_errors() -> None:
    """Stop libvirt printing errors on stderr in a process that never opens the pool."""
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


# --- serial console -------------------------------------------------------------------------

_STREAM_EVENTS = (
    libvirt.VIR_STREAM_EVENT_READABLE
    | libvirt.VIR_STREAM_EVENT_ERROR
    | libvirt.VIR_STREAM_EVENT_HANGUP
)


class SerialConsole:
    """One open serial console stream (virDomainOpenConsole on a non-blocking virStream).

    Incoming bytes are read on libvirt's event loop thread and handed to
    `on_data`; `on_close(reason)` is called once when the stream ends:
    "eof" (the VM stopped or its console closed) or "error" (another client
    forced the console away, or the connection to the host was lost).
    Both callbacks run on the event loop thread and must not block.
    """

    def __init__(
        self,
        stream: libvirt.virStream,
        on_data: Callable[[bytes], None],
        on_close: Callable[[str], None],
    ) -> None:
        self._stream = stream
        self._on_data = on_data
        self._on_close = on_close
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._closed = False
        self._watching_writable = False

    def _start(self) -> None:
        self._stream.eventAddCallback(_STREAM_EVENTS, self._event, None)

    def _event(self, stream: libvirt.virStream, events: int, _opaque: object) -> None:
        reason = ""
        with self._lock:
            if self._closed:
                return
            try:
                if events & libvirt.VIR_STREAM_EVENT_WRITABLE:
                    self._flush()
                if events & libvirt.VIR_STREAM_EVENT_READABLE:
                    while True:
                        data = stream.recv(64 * 1024)
                        if isinstance(data, int):  # -2: nothing more now
                            break
                        if not data:
                            reason = "eof"
                            break
                        self._on_data(bytes(data))
                if not reason and events & (
                    libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP
                ):
                    reason = "eof" if events & libvirt.VIR_STREAM_EVENT_HANGUP else "error"
            except libvirt.libvirtError as err:
                log.info("serial console stream failed: %s", err.get_error_message())
                reason = "error"
            if reason:
                self._shutdown()
        if reason:
            self._on_close(reason)

    def _flush(self) -> None:
        """Send what is pending; caller holds the lock. Watch for writability if stuck."""
        while self._pending:
            sent = self._stream.send(bytes(self._pending[: 64 * 1024]))
            if sent == -2:
                break
            del self._pending[:sent]
        want = bool(self._pending)
        if want != self._watching_writable:
            events = _STREAM_EVENTS | (libvirt.VIR_STREAM_EVENT_WRITABLE if want else 0)
            self._stream.eventUpdateCallback(events)
            self._watching_writable = want

    def write(self, data: bytes) -> None:
        """Send keyboard input (virStreamSend, non-blocking; queued when the stream is full).

        Quick, but a libvirt call: call it from a worker thread, not an asyncio loop.
        """
        reason = ""
        with self._lock:
            if self._closed:
                return
            self._pending += data
            try:
                self._flush()
            except libvirt.libvirtError as err:
                log.info("serial console write failed: %s", err.get_error_message())
                reason = "error"
                self._shutdown()
        if reason:
            self._on_close(reason)

    def _shutdown(self) -> None:
        self._closed = True
        for step in (self._stream.eventRemoveCallback, self._stream.abort):
            try:
                step()
            except libvirt.libvirtError:
                pass

    def close(self) -> None:
        """Detach from the console (virStreamAbort); `on_close` is not called."""
        with self._lock:
            if not self._closed:
                self._shutdown()


def _has_serial(root: etree._Element) -> bool:
    return root.find("devices/console") is not None or root.find("devices/serial") is not None


def open_serial(
    host: HostRef,
    name: str,
    *,
    force: bool,
    on_data: Callable[[bytes], None],
    on_close: Callable[[str], None],
) -> SerialConsole:
    """Attach to VM `name`'s first console (virDomainOpenConsole).

    Without `force`, VIR_DOMAIN_CONSOLE_SAFE makes it fail with
    ConsoleUnavailable(reason="busy") while someone else holds the console;
    with `force` (VIR_DOMAIN_CONSOLE_FORCE) it takes the console over and the
    other client's stream ends with an error. Also raises ConsoleUnavailable
    (not-running, no-serial), NotFound, HostUnavailable, OperationFailed.
    """
    ensure_event_loop()

    def attach(conn: libvirt.virConnect) -> SerialConsole:
        dom = lookup(conn, host, name)
        root = xml.parse(dom.XMLDesc(0))
        if not _has_serial(root):
            raise ConsoleUnavailable(
                f"VM '{name}' has no serial console: add a serial port (type pty) to its "
                "devices to use this tab, or use its graphical console.",
                reason="no-serial",
            )
        if not dom.isActive():
            raise ConsoleUnavailable(
                f"VM '{name}' is not running: start it to use its serial console.",
                reason="not-running",
            )
        stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        flags = libvirt.VIR_DOMAIN_CONSOLE_SAFE
        if force:
            flags |= libvirt.VIR_DOMAIN_CONSOLE_FORCE
        try:
            dom.openConsole(None, stream, flags)
        except libvirt.libvirtError as err:
            try:
                stream.abort()
            except libvirt.libvirtError:
                pass
            text = err.get_error_message() or ""
            if "Active console session" in text:
                raise ConsoleUnavailable(
                    f"Someone else is connected to the serial console of VM '{name}'.",
                    reason="busy",
                    code=err.get_error_code(),
                ) from None
            raise
        console = SerialConsole(stream, on_data, on_close)
        console._start()
        return console

    return pool().call(host.uri, attach, f"Cannot open the serial console of VM '{name}'")
