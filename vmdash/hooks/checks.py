"""What no libvirt event says, checked now and then by the events process.

- pool.full: a pool whose allocation is at or above a hook's threshold, once
  until it falls below again (then the next rise is a new occurrence);
- grant.expiring: a grant that ends within a day, once per end time;
- login.failures: a run of failed logins (one django-axes attempt record,
  by user name and address) that reached a hook's threshold, once per run.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from vmdash.access.models import Grant
from vmdash.hooks.kinds import Kind
from vmdash.hooks.models import Delivery, Occurrence
from vmdash.hooks.queue import enqueue, first_time, hooks_for
from vmdash.hooks.sender import as_request
from vmdash.virt.errors import VirtError
from vmdash.virt.refs import HostRef
from vmdash.virt.storage import PoolSummary, list_pools

log = logging.getLogger(__name__)

GRANT_NOTICE = timedelta(days=1)
FORGET_AFTER = timedelta(days=30)  # what was sent once, and the delivery log


def check_pools(host: HostRef, pools: list[PoolSummary]) -> int:
    """Queue pool.full for pools at or above each hook's threshold; how many queued."""
    queued = 0
    for hook in hooks_for(Kind.POOL_FULL):
        for pool in pools:
            key = f"pool-full:{host.slug}:{pool.uuid}"
            if pool.active and pool.capacity and pool.used_percent >= hook.pool_threshold:
                if first_time(hook, key):
                    data = {
                        "host": host.slug,
                        "pool": pool.name,
                        "uuid": pool.uuid,
                        "used_percent": pool.used_percent,
                        "threshold": hook.pool_threshold,
                        "capacity": pool.capacity,
                        "allocation": pool.allocation,
                    }
                    queued += len(enqueue(Kind.POOL_FULL, data, [hook]))
            else:
                Occurrence.objects.filter(hook=hook, key=key).delete()  # armed again
    return queued


def check_grants() -> int:
    now = timezone.now()
    ending = Grant.objects.filter(expires_at__gt=now, expires_at__lte=now + GRANT_NOTICE)
    queued = 0
    for hook in hooks_for(Kind.GRANT_EXPIRING):
        for grant in ending.select_related("user", "group", "role"):
            assert grant.expires_at is not None
            if not first_time(hook, f"grant:{grant.pk}:{grant.expires_at.timestamp():.0f}"):
                continue
            data = {
                "grant": grant.pk,
                "role": str(grant.role),
                "user": grant.user.get_username() if grant.user else None,
                "group": grant.group.name if grant.group else None,
                "where": str(grant.where),
                "expires_at": grant.expires_at.isoformat(),
            }
            queued += len(enqueue(Kind.GRANT_EXPIRING, data, [hook]))
    return queued


def check_logins() -> int:
    """axes keeps one record per user name and address, counting failures
    until a success resets it (a new record, a new id: a new run)."""
    recent = AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - timedelta(days=1))
    queued = 0
    for hook in hooks_for(Kind.LOGIN_FAILURES):
        for run in recent.filter(failures_since_start__gte=hook.login_threshold):
            if not first_time(hook, f"login:{run.pk}"):
                continue
            data = {
                "username": run.username,
                "ip_address": run.ip_address,
                "failures": run.failures_since_start,
                "threshold": hook.login_threshold,
                "last_at": run.attempt_time.isoformat(),
            }
            queued += len(enqueue(Kind.LOGIN_FAILURES, data, [hook]))
    return queued


def forget_old() -> int:
    """Occurrences of ended grants and old login runs (host and pool ones stay
    until their condition ends), and deliveries done or given up long ago."""
    cutoff = timezone.now() - FORGET_AFTER
    old = Occurrence.objects.filter(created_at__lt=cutoff)
    once, _kinds = (
        old.filter(key__startswith="grant:") | old.filter(key__startswith="login:")
    ).delete()
    logged, _kinds = (
        Delivery.objects.exclude(state=Delivery.State.PENDING)
        .filter(created_at__lt=cutoff)
        .delete()
    )
    return once + logged


def check_site() -> None:
    check_grants()
    check_logins()
    forget_old()


def check_host(host: HostRef) -> None:
    if not hooks_for(Kind.POOL_FULL):
        return
    try:
        pools = list_pools(host)
    except VirtError as err:  # the host's outage is its own event
        log.info("hooks: cannot read the pools of %s (%s)", host.slug, err)
        return
    check_pools(host, pools)


async def check_while_publishing(service: Any) -> None:
    """The events service's companion: the checks, every VMDASH_HOOK_CHECK_INTERVAL s."""
    every = float(settings.VMDASH_HOOK_CHECK_INTERVAL)
    if every <= 0:
        return
    while True:
        await asyncio.sleep(every)
        hosts = [w.host for w in service.watchers.values() if w.connected.is_set()]
        try:
            await asyncio.to_thread(as_request, check_site)
            for host in hosts:
                await asyncio.to_thread(as_request, check_host, host)
        except DatabaseError as err:
            log.warning("hooks: the checks could not read the database (%s)", err)
        except Exception:  # a bug in one check must not end the others
            log.exception("hooks: the checks failed")
