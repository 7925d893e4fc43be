"""schemathesis against the running server (`manage.py vmdash_run` on libvirt's
test driver): property-based calls of every operation, generated from the
server's own /api/schema/, find no 500 and no answer the schema does not
describe (status, content type, headers, body).

Not checked: "positive data acceptance" (the API refuses with 400 what the
schema cannot say, e.g. XML that is not well-formed, or a delete whose
`confirm` is not the VM's name) and "negative data rejection" (pydantic
takes a number of seconds for a date, which the schema calls a date-time).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_door import operations
from tests.servers import Vmdash, start_vmdash

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])  # fmt: skip
MAKE_TOKEN = """
from django.contrib.auth.models import User
from people import tokens
from people.models import ApiToken
user = User.objects.get_or_create(username={user!r}, defaults={{"is_superuser": {su}}})[0]
print(tokens.issue(ApiToken(user=user, name="schemathesis")))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vmdash]:
    srv = start_vmdash(tmp_path_factory.mktemp("vmdash-api"), hosts="demo=test:///default",
                       VMDASH_API_RATE="100000/min")  # fmt: skip
    yield srv
    srv.stop()


def token(srv: Vmdash, user: str, superuser: bool) -> str:
    out = srv.manage("shell", "-v", "0", "-c", MAKE_TOKEN.format(user=user, su=superuser))
    return out.strip().splitlines()[-1]


def schemathesis(
    srv: Vmdash, raw: str, examples: int, cwd: Path
) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [str(exe), "run", f"{srv.url}/api/schema/", "--url", srv.url,
         "-H", f"Authorization: Bearer {raw}", "--checks", CHECKS,
         "--max-examples", str(examples), "--workers", "1", "--no-color"],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("user", "superuser", "examples"), [("root", True, 12), ("nobody", False, 5)]
)
def test_no_500_and_nothing_the_schema_does_not_describe(
    server: Vmdash, user: str, superuser: bool, examples: int, tmp_path: Path
) -> None:
    run = schemathesis(server, token(server, user, superuser), examples, tmp_path)
    tail = (run.stdout + run.stderr)[-6000:]
    assert run.returncode == 0, tail
    every = len(operations())
    assert f"Tested: {every}" in run.stdout, tail  # every operation was called
    log = server.log.read_text()
    assert "Internal Server Error" not in log and "Traceback" not in log, log[-4000:]


def cli(srv: Vmdash, raw: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed vmdash-cli entry point, as a script would run it."""
    exe = Path(sys.executable).with_name("vmdash-cli")
    env = {"PATH": "/usr/bin:/bin", "VMDASH_URL": srv.url, "VMDASH_TOKEN": raw}
    return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def quiet_server(tmp_path: Path) -> Iterator[Vmdash]:
    """A server of its own: schemathesis leaves odd VMs on the other one's test driver."""
    srv = start_vmdash(tmp_path / "vmdash", hosts="demo=test:///default")
    yield srv
    srv.stop()


def test_the_cli_lists_starts_stops_and_gives_the_console_url(quiet_server: Vmdash) -> None:
    server = quiet_server
    raw = token(server, "cli-user", True)
    listed = cli(server, raw, "list", "--host", "demo")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["HOST", "NAME", "STATE", "VCPUS", "MEMORY"]
    names = {r.split()[1]: r.split()[2] for r in rows}
    assert set(names) == {"test"}  # the test driver's one VM
    vm = "test"
    as_json = json.loads(cli(server, raw, "list", "--json").stdout)
    assert {r["name"] for r in as_json} == set(names)

    state = names[vm]
    if state != "running":
        assert cli(server, raw, "start", f"demo/{vm}").returncode == 0
    stopped = cli(server, raw, "stop", "--force", f"demo/{vm}")
    assert stopped.returncode == 0, stopped.stderr
    assert "Force off: done" in stopped.stdout
    after = {r["name"]: r["state"] for r in json.loads(cli(server, raw, "list", "--json").stdout)}
    assert after[vm] == "shutoff"  # what the server's libvirt reports now
    started = cli(server, raw, "start", f"demo/{vm}")
    assert started.returncode == 0 and "Start: done" in started.stdout

    console = cli(server, raw, "console", f"demo/{vm}")
    assert console.stdout.strip() == f"{server.url}/hosts/demo/domains/{vm}/console/"

    refused = cli(server, raw, "start", "demo/no-such-vm")
    assert refused.returncode == 1
    assert "404: There is no VM 'no-such-vm' on host 'demo'." in refused.stderr
    assert cli(server, "vmd_wrong_token", "list").returncode == 1
    assert cli(server, raw, "start", "no-slash").returncode != 0
