"""Hosts at start-up: from VMDASH_HOSTS, else the local hypervisor, else a demo."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.text import slugify

from vmdash.models import Host
from vmdash.virt.connection import probe
from vmdash.virt.errors import InvalidInput, VirtError
from vmdash.virt.uris import DEMO_URI, check_uri

log = logging.getLogger(__name__)
LOCAL_URI = "qemu:///system"


def parse_hosts(spec: str) -> list[tuple[str, str]]:
    """'local=qemu:///system,lab=qemu+ssh://root@lab/system' -> [(slug, uri), ...]

    Every URI passes the one rule (vmdash/virt/uris.py); the first that does not
    stops the start with ImproperlyConfigured naming its entry.
    """
    pairs = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        slug, sep, uri = item.partition("=")
        if not sep or not slugify(slug) or not uri.strip():
            raise ImproperlyConfigured(
                f"VMDASH_HOSTS: {item!r} is not 'name=uri' (e.g. local=qemu:///system)"
            )
        try:
            checked = check_uri(uri, allow_demo=True)
        except InvalidInput as err:
            raise ImproperlyConfigured(f"VMDASH_HOSTS: {slug.strip()!r}: {err}") from None
        pairs.append((slugify(slug), checked))
    return pairs


def sync_hosts() -> list[str]:
    """Make the database hold the configured hosts; returns lines to print."""
    said = []
    if settings.VMDASH_HOSTS:
        for slug, uri in parse_hosts(settings.VMDASH_HOSTS):
            host, created = Host.objects.update_or_create(
                slug=slug, defaults={"uri": uri, "enabled": True}
            )
            said.append(f"host {host.slug}: {uri}{' (added)' if created else ''}")
        return said
    if Host.objects.exists():
        return said
    try:
        probe(LOCAL_URI)
    except VirtError as err:
        Host.objects.create(slug="demo", name="Demo (libvirt test driver)", uri=DEMO_URI)
        said.append(
            f"libvirtd does not answer on {LOCAL_URI} ({err}); added the demo host {DEMO_URI}"
        )
    else:
        Host.objects.create(slug="local", name="This machine", uri=LOCAL_URI)
        said.append(f"added the local hypervisor {LOCAL_URI} as host 'local'")
    return said
