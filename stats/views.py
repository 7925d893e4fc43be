"""Graph data for a VM and a host, and `GET /metrics` for Prometheus.

Both read the sampler's history (stats/history.py): no libvirt call is made
here, so a scrape or a chart costs the same at 1 VM and at 1000.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from stats.history import FIELDS, HOST_KEY, Values
from stats.sampler import interval
from stats.shared import reader as history
from vmdash import door
from vmdash.policy import Action, Who, can
from vmdash.virt.domains import known_ref

RANGES = {"10m": 600, "1h": 3600, "24h": 86400}


def series(host: str, key: str, range_name: str) -> dict[str, object]:
    seconds = RANGES.get(range_name, RANGES["10m"])
    points = history().window(host, key, seconds)
    return {
        "fields": FIELDS,
        "interval": interval(),
        "range": seconds,
        "down": history().down.get(host, ""),
        "points": [[round(at, 1), *(_num(v) for v in values)] for at, values in points],
    }


def _num(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@require_GET
def domain_stats(request: HttpRequest, host: str, name: str) -> JsonResponse:
    _, ref = door.domain(door.who(request), host, name, Action.VIEW)
    return JsonResponse(series(ref.host, ref.uuid, request.GET.get("range", "10m")))


@require_GET
def host_stats(request: HttpRequest, host: str) -> JsonResponse:
    ref = door.host(door.who(request), host, Action.VIEW)
    return JsonResponse(series(ref.slug, HOST_KEY, request.GET.get("range", "10m")))


TOP = 10
TOP_COLUMNS = {"cpu": _("CPU"), "memory": _("Memory"), "disk": _("Disk"), "net": _("Network")}


def _top_rows(who: Who, host: str) -> list[dict[str, Any]]:
    """The VMs of `host` sampled in the last few ticks (running) that `who` may see."""
    recent = time.time() - 3 * max(interval(), 1)
    rows: list[dict[str, Any]] = []
    for slug, key, name, at, values in history().latest():
        if slug != host or key == HOST_KEY or at < recent:
            continue
        if not can(who, Action.VIEW, known_ref(host, name, key)):
            continue
        cpu, used, _total, rd, wr, _iops, rx, tx = values
        rows.append({
            "uuid": key, "name": name, "cpu": cpu, "memory": used,
            "disk": None if rd is None or wr is None else rd + wr,
            "net": None if rx is None or tx is None else rx + tx,
        })  # fmt: skip
    return rows


@require_GET
def host_top(request: HttpRequest, host: str) -> HttpResponse:
    """Which VM is eating the host: the busiest ones this person may see, by a column."""
    who = door.who(request)
    ref = door.host(who, host, Action.VIEW)
    by = request.GET.get("by", "")
    by = by if by in TOP_COLUMNS else "cpu"
    rows = _top_rows(who, ref.slug)
    rows.sort(key=lambda r: -float(r[by] or 0))
    columns = [(key, label) for key, label in TOP_COLUMNS.items()]
    context = {"host": ref, "rows": rows[:TOP], "shown": len(rows), "by": by, "columns": columns,
               "down": history().down.get(ref.slug, "")}  # fmt: skip
    return render(request, "stats/top.html", context)


# Prometheus: one gauge per field; VMs labelled by host, name and UUID.
METRICS = {
    "cpu": ("cpu_percent", "CPU use in percent of the VM's vCPUs (of the host's CPUs)"),
    "memory_used": ("memory_used_bytes", "Memory in use"),
    "memory_total": ("memory_bytes", "Memory the VM has now (the host's total)"),
    "disk_read": ("disk_read_bytes_per_second", "Disk reads"),
    "disk_write": ("disk_write_bytes_per_second", "Disk writes"),
    "disk_iops": ("disk_requests_per_second", "Disk requests, reads and writes"),
    "net_rx": ("network_receive_bytes_per_second", "Network bytes received"),
    "net_tx": ("network_transmit_bytes_per_second", "Network bytes sent"),
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _lines(rows: Iterable[tuple[str, str, str, float, Values]]) -> list[str]:
    rows = sorted(rows)
    out: list[str] = []
    for i, field in enumerate(FIELDS):
        metric, helptext = METRICS[field]
        for kind in ("vm", "host"):
            full = f"vmdash_{kind}_{metric}"
            out += [f"# HELP {full} {helptext}.", f"# TYPE {full} gauge"]
            for host, key, name, at, values in rows:
                value = values[i]
                if value is None or math.isnan(value) or (kind == "host") != (key == HOST_KEY):
                    continue
                labels = f'host="{_label(host)}"'
                if key != HOST_KEY:
                    labels += f',name="{_label(name)}",uuid="{key}"'
                out.append(f"{full}{{{labels}}} {value:.6g} {int(at * 1000)}")
    down = history().down
    seen = sorted({row[0] for row in rows} | set(down))
    out += ["# HELP vmdash_host_up Whether the last read of the host answered.",
            "# TYPE vmdash_host_up gauge"]  # fmt: skip
    out += [f'vmdash_host_up{{host="{_label(h)}"}} {0 if h in down else 1}' for h in seen]
    return out


def _bearer_ok(request: HttpRequest, token: str) -> bool:
    sent = request.headers.get("Authorization", "")
    scheme, _, value = sent.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)


@login_not_required
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; a machine's door: the bearer token, not a login."""
    token = getattr(settings, "VMDASH_METRICS_TOKEN", "")
    if not token:
        raise Http404("GET /metrics is off: set VMDASH_METRICS_TOKEN")
    if not _bearer_ok(request, token):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="vmdash metrics"'
        return response
    body = "\n".join(_lines(history().latest())) + "\n"
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
