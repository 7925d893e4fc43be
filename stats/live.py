"""The stats app's part of the live layer: its sampler runs beside the events service."""

from __future__ import annotations

from stats import sampler  # noqa: F401  (registers the companion)
