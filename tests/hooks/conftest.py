from __future__ import annotations

from typing import Any

import pytest

from tests.events.conftest import deployment  # noqa: F401 - fixture
from tests.hooks.receiver import receiver  # noqa: F401 - fixture


@pytest.fixture(autouse=True)
def _quick_retries(settings: Any) -> None:
    """Retries after 0.05, 0.1, 0.2 s ...: the tests wait for backoff, briefly."""
    settings.VMDASH_HOOK_RETRY_BASE = 0.05
    settings.VMDASH_HOOK_RETRY_CAP = 0.4
    settings.VMDASH_HOOK_TIMEOUT = 2
    settings.VMDASH_HOOK_POLL = 0.2
