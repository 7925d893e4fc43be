"""What vmdash remembers about storage that libvirt does not keep.

The ISO library is a vmdash preference, not a property of the pool: pool XML
has no <metadata> element (unlike domains and networks), and libvirt drops
unknown elements on define. So it lives here, by the pool's UUID: a pool
that is deleted and made again under the same name is not the library until
someone says so again.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class IsoLibrary(models.Model):
    """The one pool per host that holds installation media."""

    host = models.SlugField(_("host"), unique=True)
    pool_uuid = models.CharField(_("pool UUID"), max_length=36)

    class Meta:
        verbose_name = _("ISO library")
        verbose_name_plural = _("ISO libraries")

    def __str__(self) -> str:
        return f"{self.host}: {self.pool_uuid}"


class UploadClaim(models.Model):
    """One upload at a time into a volume, across every web worker (they share the
    database, not their memory). The worker that streams refreshes `beat`; a claim
    whose worker died stops beating and is taken over after CLAIM_STALE_S."""

    host = models.SlugField(_("host"))
    pool = models.CharField(_("pool"), max_length=255)
    volume = models.CharField(_("volume"), max_length=255)
    owner = models.CharField(_("owner"), max_length=64)  # a random token per upload
    beat = models.DateTimeField(_("last sign of life"))

    class Meta:
        verbose_name = _("upload claim")
        constraints = [
            models.UniqueConstraint(fields=["host", "pool", "volume"], name="one_upload_per_volume")
        ]

    def __str__(self) -> str:
        return f"{self.host}/{self.pool}/{self.volume}"
