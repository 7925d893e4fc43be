"""A grant that ends, or is taken back, closes the consoles it allowed within seconds.

The person is no superuser and not staff: a Console user grant on one VM is
all they have. Real server, real console proxy, real guest.
"""

from __future__ import annotations

import time

import pytest

from tests.console.conftest import ConsoleGuest, ConsoleServer, Web
from tests.realhost import wait_until
from tests.security.test_console_logout import (
    ENDS_WITHIN,
    close_entries,
    seconds_until_closed,
    serial,
    vnc,
)

pytestmark = pytest.mark.libvirtd


LASTS = 8.0  # seconds the grant lasts: long enough to open both consoles


def _person_with_a_console_grant(
    server: ConsoleServer, name: str, vm: ConsoleGuest, seconds: float | None
) -> Web:
    password = f"{name}-grant-pw-1"
    ends = f"timezone.now() + timedelta(seconds={seconds})" if seconds else "None"
    server.manage(
        "shell",
        "-c",
        "from datetime import timedelta\n"
        "from django.contrib.auth.models import User\n"
        "from django.utils import timezone\n"
        "from vmdash.access.models import Grant, Role\n"
        f"User.objects.filter(username={name!r}).delete()\n"
        f"u = User.objects.create_user({name!r}, password={password!r})\n"
        "Grant.objects.create(user=u, role=Role.objects.get(slug='console-user'),\n"
        f"    scope='vm', host='local', object_uuid={vm.dom().UUIDString()!r},\n"
        f"    object_name={vm.name!r}, expires_at={ends})\n",
    )
    return Web(server, name, password)


def test_an_ending_grant_closes_the_vnc_and_serial_consoles_it_allowed(
    console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    started = time.monotonic()
    web = _person_with_a_console_grant(console_server, "tess", running_a, LASTS)
    screen = vnc(web, running_a.name)
    term = serial(console_server, web, running_a.name)
    left = LASTS - (time.monotonic() - started)
    assert left > 0, "the consoles took longer to open than the grant lasts"
    took_vnc, _ = seconds_until_closed(screen, left + ENDS_WITHIN)
    took_serial, said = seconds_until_closed(term, left + ENDS_WITHIN)
    assert took_vnc < left + ENDS_WITHIN and took_serial < left + ENDS_WITHIN
    assert took_vnc > left - 1  # not before the grant ended
    assert said[-1]["state"] == "ended"
    wait_until(lambda: len(close_entries(console_server, "tess")) == 2, 10, "two console-close")


def test_taking_a_grant_back_closes_the_consoles_within_seconds(
    console_server: ConsoleServer, running_a: ConsoleGuest
) -> None:
    web = _person_with_a_console_grant(console_server, "uma", running_a, None)
    screen = vnc(web, running_a.name)
    term = serial(console_server, web, running_a.name)
    console_server.manage(
        "shell",
        "-c",
        "from vmdash.access.models import Grant\n"
        "Grant.objects.filter(user__username='uma').delete()\n",
    )
    took_vnc, _ = seconds_until_closed(screen, ENDS_WITHIN)
    took_serial, _said = seconds_until_closed(term, ENDS_WITHIN)
    assert took_vnc < ENDS_WITHIN and took_serial < ENDS_WITHIN
