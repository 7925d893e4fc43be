"""The host-URI attacks through the real server (Daphne, as `make run` serves it).

tests/security/test_host_uris.py tries every entrance in-process; this one
sends the same attacks as a logged-in admin's browser would, through the
Add-host form of a running vmdash, with a canary that must never appear.
"""

from __future__ import annotations

import html
from pathlib import Path

from tests.security.conftest import ADMIN, Browserless, query
from tests.security.test_host_uris import attacks
from tests.servers import Vmdash


def test_no_attack_uri_sent_to_the_real_server_runs_anything_or_shows_a_file(
    vmdash_demo: Vmdash, tmp_path: Path
) -> None:
    sign = tmp_path / "canary"
    script = tmp_path / "payload"
    script.write_text(f"#!/bin/sh\ntouch {sign}\n")
    script.chmod(0o755)
    secret = (vmdash_demo.data / "secret_key").read_text().strip()
    admin = Browserless(vmdash_demo)
    assert admin.login(*ADMIN) == 302
    # The real server's own secret key, not only the test process's.
    tries = [*attacks(script), (f"test://{vmdash_demo.data}/secret_key", "test driver")]
    for n, (uri, named) in enumerate(tries):
        status, _headers, body = admin.request(
            "/hosts/add/", {"slug": f"attack{n}", "name": "", "uri": uri, "enabled": "on"}
        )
        page = html.unescape(body)
        assert status == 400, (uri, status)
        assert named in page, (uri, named)
        assert secret not in page and "root:" not in page
    assert not sign.exists(), "libvirt ran the payload"
    hosts = query(vmdash_demo, "SELECT slug FROM vmdash_host WHERE slug LIKE 'attack%'")
    assert hosts == []
    refused = query(
        vmdash_demo,
        "SELECT outcome FROM vmdash_auditentry WHERE action='host-add' AND username=?",
        ADMIN[0],
    )
    assert len(refused) == len(tries) and {r["outcome"] for r in refused} == {"denied"}
