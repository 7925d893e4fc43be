"""The stats app's part of the live layer.

Its sampler runs beside the events service (stats/sampler.py); the regions
below are the parts of pages that draw its numbers, so each tick's values
reach only the pages that show them (vmdash/live/ticks.py):

domain-chart  a VM's charts     stats/_charts.html     (data-host, data-uuid)
host-chart    a host's charts   stats/_charts.html     (data-host)
domain-load   a VM's load bars  domains/list.html#row  (data-host, data-uuid)
"""

from __future__ import annotations

from stats import sampler  # noqa: F401  (registers the companion)
from vmdash.live.regions import SeriesRegion, register

register(SeriesRegion(name="domain-chart"))
register(SeriesRegion(name="host-chart", kind=None))
register(SeriesRegion(name="domain-load"))
