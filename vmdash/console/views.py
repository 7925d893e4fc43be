"""Console pages (graphical, pop-out, serial), console tickets, presence."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

import vmdash.virt.domains as virt_domains
from vmdash import door, policy
from vmdash.audit import Actor, Outcome, record
from vmdash.console import sessions, tickets
from vmdash.policy import Action
from vmdash.virt import consoles
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import DomainRef, HostRef


def _console_access(request: HttpRequest, host: str, name: str) -> tuple[HostRef, DomainRef, bool]:
    """The VM and whether this user's console is view-only; 404 / 403 like every door.

    A user with Action.CONSOLE may choose view-only; one with only
    Action.CONSOLE_VIEW_ONLY always gets it; anyone else is refused.
    """
    try:
        return door.console(door.who(request), host, name)
    except PermissionDenied:
        if request.method == "GET":  # refused POSTs are recorded by AuditDeniedMiddleware
            record(
                Actor.of_request(request),
                "console-denied",
                DomainRef(host, name),
                Outcome.DENIED,
                "no console rights",
            )
        raise


def proxy_url(request: HttpRequest) -> str:
    """The console proxy's WebSocket URL as this browser reaches it."""
    if settings.VMDASH_CONSOLE_PUBLIC_URL:
        return str(settings.VMDASH_CONSOLE_PUBLIC_URL)
    scheme = "wss" if request.is_secure() else "ws"
    hostname, _port = split_domain_port(request.get_host())
    return f"{scheme}://{hostname}:{settings.VMDASH_CONSOLE_PROXY_PORT}/"


def proxy_answers(timeout: float = 0.5) -> bool:
    """Is the console proxy listening? (A TCP connect to its listen address.)"""
    host = settings.VMDASH_CONSOLE_PROXY_HOST
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        with socket.create_connection((host, settings.VMDASH_CONSOLE_PROXY_PORT), timeout):
            return True
    except OSError:
        return False


def _proxy_down_message() -> str:
    return _(
        "The console proxy does not answer on %(address)s. `make run` starts it "
        "(manage.py vmdash_console_proxy); ask the administrator to start it or check its log."
    ) % {"address": f"{settings.VMDASH_CONSOLE_PROXY_HOST}:{settings.VMDASH_CONSOLE_PROXY_PORT}"}


def _console_strings() -> dict[str, Any]:
    """What the console scripts say, translated (the pages carry it as JSON)."""
    return {
        "waiting": _("Waiting for the VM to start…"),
        "waitingMessage": _("The console opens again by itself when the VM runs."),
        "stoppedWaiting": _("Stopped waiting. Start the VM, then reconnect."),
        "sessionEnded": _("Your session ended: log in again."),
        # The status line of the serial console (static/js/console-serial.js).
        "labels": {
            "connecting": _("Connecting…"),
            "connected": _("Connected"),
            "connectedViewOnly": _("Connected (view only)"),
            "busy": _("Console busy"),
            "taken-over": _("Taken over"),
            "stopped": _("VM stopped"),
            "not-running": _("VM not running"),
            "no-serial": _("No serial console"),
            "denied": _("Access denied"),
            "closed": _("Disconnected"),
            "ended": _("Session ended"),
            "waiting": _("Waiting for the VM to start…"),
            "error": _("Error"),
        },
    }


def _page(request: HttpRequest, host: str, name: str, template: str, tab: str) -> HttpResponse:
    host_ref, _ref, view_only = _console_access(request, host, name)
    detail = virt_domains.get_detail(host_ref, name)
    context: dict[str, Any] = {
        "d": detail.summary,
        "detail": detail,
        "host": host_ref,
        "tab": tab,
        "can_operate": policy.can(door.who(request), Action.OPERATE, detail.ref),
        "forced_view_only": view_only,
        "has_vnc": any(g.type == "vnc" for g in detail.graphics),
        "has_graphics": bool(detail.graphics),
        "has_serial": bool(detail.serials),
        "console_strings": _console_strings(),
        "urls": {
            key: reverse(f"domain-console-{key}", args=[host, name])
            for key in ("ticket", "status", "viewers", "popout")
        }
        | {"serial_ws": f"/ws/hosts/{quote(host, safe='')}/domains/{quote(name, safe='')}/serial/"},
    }
    return render(request, template, context)


@require_GET
def console_page(request: HttpRequest, host: str, name: str) -> HttpResponse:
    return _page(request, host, name, "console/vnc.html", "console")


@require_GET
def console_popout(request: HttpRequest, host: str, name: str) -> HttpResponse:
    return _page(request, host, name, "console/popout.html", "console")


@require_GET
def serial_page(request: HttpRequest, host: str, name: str) -> HttpResponse:
    return _page(request, host, name, "console/serial.html", "serial")


def _refusal(state: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"state": state, "message": message}, status=status)


@require_POST
def console_ticket(request: HttpRequest, host: str, name: str) -> JsonResponse:
    """A fresh single-use ticket for the graphical console, as JSON for the page's script.

    The proxy is not probed here (a probe costs it a fork): when it is down, the
    page's connection fails at once and console_status says why.
    """
    host_ref, ref, forced_view_only = _console_access(request, host, name)
    view_only = forced_view_only or request.POST.get("view_only") == "1"
    try:
        target = consoles.vnc_target(host_ref, name)
    except consoles.ConsoleUnavailable as err:
        return _refusal(err.reason, str(err), err.status)
    except VirtError as err:
        return _refusal("error", str(err), err.status)
    ref = DomainRef(ref.host, ref.name, target.uuid)
    token = tickets.issue(request, target, ref, view_only=view_only)
    record(
        Actor.of_request(request, via="console"),
        "console-ticket",
        ref,
        Outcome.OK,
        "view only" if view_only else "",
    )
    url = proxy_url(request)
    sep = "&" if "?" in url else "?"
    return JsonResponse(
        {
            "state": "ok",
            "url": f"{url}{sep}token={token}",
            "view_only": view_only,
            "expires_in": settings.VMDASH_CONSOLE_TICKET_SECONDS,
        }
    )


@require_GET
def console_status(request: HttpRequest, host: str, name: str) -> JsonResponse:
    """Why a console connection may have failed or ended: VM state and proxy, as JSON."""
    host_ref, _ref, _view_only = _console_access(request, host, name)
    proxy = proxy_answers()
    answer: dict[str, Any] = {
        "proxy": proxy,
        "proxy_message": "" if proxy else _proxy_down_message(),
    }
    try:
        summary = virt_domains.get_summary(host_ref, name)
    except VirtError as err:
        return JsonResponse({**answer, "state": "error", "running": False, "message": str(err)})
    return JsonResponse(
        {
            **answer,
            "state": summary.state.value,
            "label": summary.state.label,
            "running": summary.state.is_active,
        }
    )


@require_GET
def console_viewers(request: HttpRequest, host: str, name: str) -> HttpResponse:
    """Who is connected to this VM's consoles right now (an htmx-polled partial)."""
    _host_ref, ref, _view_only = _console_access(request, host, name)
    return render(
        request,
        "console/_viewers.html",
        {"viewers": list(sessions.present(ref.host, ref.name)), "me": request.user.pk},
    )
