"""The console tests' real server, proxy and guests, as one instance per session.

They are a plugin of the root conftest (not fixtures of tests/console/conftest.py)
because tests/security uses them too: a session fixture defined in two places
runs twice, and the second guest_maker's sweep removed the first one's guests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.console.conftest import (
    ALICE,
    BOB,
    CAROL,
    PREFIX,
    ConsoleGuest,
    ConsoleServer,
    define_guest,
    start_server,
    stop_server,
    undefine_guest,
)
from tests.realhost import fresh_conn, remove_domain


@pytest.fixture(scope="session")
def console_server(
    tmp_path_factory: pytest.TempPathFactory, system_conn: object
) -> Iterator[ConsoleServer]:
    srv = start_server(tmp_path_factory.mktemp("vmdash-console"))
    try:
        srv.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User\n"
            f"User.objects.create_superuser({ALICE[0]!r}, password={ALICE[1]!r})\n"
            f"User.objects.create_user({BOB[0]!r}, password={BOB[1]!r})\n"
            f"User.objects.create_superuser({CAROL[0]!r}, password={CAROL[1]!r})\n",
        )
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="session")
def guest_maker(
    system_conn: libvirt.virConnect, guest_files: Path
) -> Iterator[Callable[..., ConsoleGuest]]:
    """Define console test guests (vmdash-tc-con-...); leftovers and all made removed."""
    for dom in fresh_conn().listAllDomains():
        if dom.name().startswith(PREFIX):
            remove_domain(dom)
    made: list[ConsoleGuest] = []

    def make(suffix: str, **kwargs: Any) -> ConsoleGuest:
        guest = define_guest(guest_files, suffix, **kwargs)
        made.append(guest)
        return guest

    yield make
    for guest in made:
        undefine_guest(guest)


@pytest.fixture(scope="session")
def guest_a(guest_maker: Callable[..., ConsoleGuest]) -> ConsoleGuest:
    """A running guest with VNC and a serial console, shared by the console tests."""
    guest = guest_maker("a")
    guest.start()
    return guest


@pytest.fixture
def running_a(guest_a: ConsoleGuest) -> ConsoleGuest:
    """guest_a, started again if a test stopped it."""
    guest_a.start()
    return guest_a
