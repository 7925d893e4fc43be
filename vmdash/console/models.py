"""Console tickets (what the proxy may open) and console sessions (who is connected).

Neither mirrors libvirt: a ticket is a short-lived permission slip, a session
is a fact about a person's connection, kept for presence and the audit trail.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ConsoleTicket(models.Model):
    """A single-use right for one user to open one VM's VNC display through the proxy.

    The browser holds only a signed reference to the row (see tickets.py); the
    row holds the target, which the proxy resolves and nothing else can steer.
    """

    nonce = models.CharField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    session_hash = models.CharField(max_length=64, blank=True)
    host = models.CharField(max_length=50)  # host slug
    vm_name = models.CharField(max_length=255)
    vm_uuid = models.CharField(max_length=36)
    domain_id = models.IntegerField()  # libvirt's id of the VM's current run
    target_host = models.CharField(max_length=255, blank=True)
    target_port = models.IntegerField(default=0)
    target_socket = models.CharField(max_length=500, blank=True)
    # The VNC password, for the proxy to answer the VNC challenge itself; wiped
    # when the ticket is used and never sent to the browser.
    password = models.CharField(max_length=255, blank=True)
    view_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
    used_from = models.GenericIPAddressField(null=True, blank=True)

    def __str__(self) -> str:
        return f"ticket {self.pk} for {self.user_id} on {self.host}/{self.vm_name}"


class ConsoleSession(models.Model):
    """One open console connection: a row per connection, ended on disconnect."""

    class Kind(models.TextChoices):
        GRAPHICAL = "vnc", _("graphical console")
        SERIAL = "serial", _("serial console")

    kind = models.CharField(max_length=10, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150)
    host = models.CharField(max_length=50)
    vm_name = models.CharField(max_length=255)
    vm_uuid = models.CharField(max_length=36, blank=True)
    view_only = models.BooleanField(default=False)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=100, blank=True)
    # The process that holds the connection ("machine:pid:start time", see
    # sessions.owner_id): when it is gone, the session is over even if nobody
    # said so (a killed web process or proxy).
    owner = models.CharField(max_length=150, blank=True)

    class Meta:
        indexes = [models.Index(fields=["host", "vm_name", "ended_at"])]
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{self.username} on {self.host}/{self.vm_name} ({self.kind})"

    @property
    def duration(self) -> timedelta:
        return (self.ended_at or timezone.now()) - self.started_at
