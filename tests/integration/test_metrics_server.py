"""GET /metrics of the real server has figures before anyone opens a page.

The events service and its sampler start with `vmdash_run` (embedded mode),
not with the first WebSocket: a Prometheus scrape is often the only client.
The host is libvirt's test driver (tests/data/testnode.xml: web1 runs).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TESTNODE_URI
from tests.servers import Vmdash, start_vmdash

TOKEN = "integration-metrics-token"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Vmdash]:
    srv = start_vmdash(tmp_path, hosts=f"lab={TESTNODE_URI}", VMDASH_METRICS_TOKEN=TOKEN,
                       VMDASH_STATS_INTERVAL="1")  # fmt: skip
    yield srv
    srv.stop()


def scrape(srv: Vmdash, token: str) -> tuple[int, str]:
    request = urllib.request.Request(
        srv.url + "/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_a_scrape_gets_every_running_vm_without_any_page_open(server: Vmdash) -> None:
    assert scrape(server, "wrong")[0] == 401
    deadline, body = time.monotonic() + 20, ""
    while time.monotonic() < deadline:
        status, body = scrape(server, TOKEN)
        assert status == 200
        if 'vmdash_vm_cpu_percent{host="lab",name="web1"' in body:
            break
        time.sleep(0.5)
    assert 'vmdash_vm_cpu_percent{host="lab",name="web1"' in body, body[-2000:]
    assert 'vmdash_host_up{host="lab"} 1' in body
