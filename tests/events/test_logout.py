"""The events socket closes within seconds of a logout or a deactivation
(issue 7 §3); the tests live in tests/security/test_events_logout.py with
the other attacks on a real server, and run here too with the live tests."""

from __future__ import annotations

from tests.security.conftest import person, vmdash_demo  # noqa: F401 - fixtures
from tests.security.test_events_logout import (  # noqa: F401 - collected here too
    test_a_logout_closes_the_events_socket_within_seconds,
    test_deactivating_an_account_closes_its_events_socket_within_seconds,
)
