"""The events process delivers: `manage.py vmdash_events` as its own process
(as with Redis, here on SQLite alone) posts what another process queued and
what libvirt told it, to a real receiver."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from tests.events.conftest import Deployment
from tests.hooks.receiver import Receiver
from tests.realhost import SYSTEM_URI, start_domain
from vmdash.virt.domains import set_tags
from vmdash.virt.refs import HostRef

pytestmark = pytest.mark.libvirtd

QUEUE_A_PING = """
from vmdash.hooks.models import Hook
from vmdash.hooks.queue import send_test
hook = Hook.objects.create(name="ops", url={url!r}, events=["vm.stopped"], vm_tag="evproc")
send_test(hook, "admin")
print("secret=" + hook.secret)
"""


def wait_for_log(process: Any, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not process.logged(text):
        assert process.proc.poll() is None, process.log.read_text()
        assert time.monotonic() < deadline, f"no {text!r} in:\n{process.log.read_text()}"
        time.sleep(0.1)


def test_the_events_process_delivers_what_others_queued_and_what_libvirt_said(
    deployment: Any, receiver: Receiver, make_guest: Any
) -> None:
    d: Deployment = deployment(VMDASH_HOOK_POLL="0.2", VMDASH_LOG_LEVEL="INFO")
    events = d.events()
    wait_for_log(events, "events: watching local")

    said = d.manage("shell", "-c", QUEUE_A_PING.format(url=receiver.url))
    secret = said.split("secret=")[1].split()[0]
    (ping,) = receiver.wait_for(1, 10)
    assert ping.json["event"] == "ping" and ping.signed_by(secret)

    guest = make_guest()  # tagged: other workers' guests stop meanwhile, unheard
    set_tags(HostRef("local", SYSTEM_URI), guest.name, {"evproc"})
    start_domain(guest.dom())
    subprocess.run(["virsh", "-c", SYSTEM_URI, "destroy", guest.name], check=True)
    stopped = receiver.wait_for(2, 10)[1]
    assert stopped.json["event"] == "vm.stopped" and stopped.signed_by(secret)
    assert (stopped.json["data"]["vm"], stopped.json["data"]["detail"]) == (guest.name, "destroyed")
