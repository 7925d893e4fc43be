"""What the VM pages keep that libvirt forgets: the events it reported.

libvirt tells what happens to a VM at the moment it happens and keeps no
history; the timeline (domains/timeline.py) needs one. A row is a fact
("libvirt said STOPPED/shutdown at 10:04"), never a VM's state: the state is
always read from libvirt. Rows are written once by the events sink and only
removed by age (VMDASH_TIMELINE_DAYS).
"""

from __future__ import annotations

from typing import Any

from django.db import models


class DomainEvent(models.Model):
    """One libvirt event seen for one VM (by host and UUID: a rename keeps its history)."""

    at = models.DateTimeField()
    host = models.CharField(max_length=50)
    uuid = models.CharField(max_length=36)
    name = models.CharField(max_length=255)  # the VM's name when it happened
    change = models.CharField(max_length=30)  # vmdash.virt.events.Change
    detail = models.CharField(max_length=30, blank=True)  # "shutdown", "destroyed", ...
    info = models.CharField(max_length=100, blank=True)  # device alias, metadata type

    class Meta:
        indexes = [models.Index(fields=["host", "uuid", "at"], name="domains_event_vm_at")]
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.host}/{self.name} {self.change} {self.detail}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:  # a record of what libvirt said is not edited
            raise ValueError("A recorded libvirt event cannot be changed.")
        super().save(*args, **kwargs)


class DomainVersion(models.Model):
    """One definition of one VM as vmdash saw it (domains/versions.py).

    Made by vmdash (username and reason) or seen after a change made outside
    it (username "": libvirt's DEFINED event, or the first look at a VM).
    The XML is libvirt's inactive definition without secrets (no graphics
    passwords: a revert keeps the current ones). Kept after the VM is gone.
    """

    at = models.DateTimeField()
    host = models.CharField(max_length=50)
    uuid = models.CharField(max_length=36)
    name = models.CharField(max_length=255)  # the VM's name in this definition
    xml = models.TextField()
    digest = models.CharField(max_length=64)  # sha256 of xml (domains/versions.py digest)
    username = models.CharField(max_length=150, blank=True)  # "" = outside vmdash
    reason = models.CharField(max_length=255, blank=True)  # "memory and vCPUs", "XML edited"

    class Meta:
        indexes = [models.Index(fields=["host", "uuid", "at"], name="domains_version_vm_at")]
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        who = self.username or "outside vmdash"
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.host}/{self.name} by {who}"
