"""The production deployment of docs/deploy.md, for real, on this machine.

Debian's PostgreSQL and redis-server on free loopback ports in temporary
directories, nginx with `deploy/nginx/vmdash.conf` (only its addresses, ports
and file paths rewritten), and vmdash's processes started with the command
lines of `deploy/systemd/*.service` and the variables of
`deploy/vmdash.env.example`: two web workers, one events process, one console
proxy, on the real libvirtd. Nothing is mocked and nothing skips: a missing
package fails the test with the apt line.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.browser.conftest import ADMIN, REPO, browser, free_port  # noqa: F401 - fixture
from tests.events.conftest import Deployment, VmdashProcess, new_deployment, redis_server

DEPLOY = REPO / "deploy"
SITE = DEPLOY / "nginx" / "vmdash.conf"
UNITS = DEPLOY / "systemd"
ENV_EXAMPLE = DEPLOY / "vmdash.env.example"
DB_PASSWORD = "deploy-test-db-pw"
METRICS_TOKEN = "deploy-test-metrics-token"


def apt_hint(what: str, package: str) -> str:
    return f"{what} is missing: apt-get install {package} (scripts/ensure-system-packages)"


# PostgreSQL ---------------------------------------------------------------


def _pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    if not versions:
        pytest.fail(apt_hint("PostgreSQL", "postgresql"), pytrace=False)
    return versions[-1].parent


def _as_postgres(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
        **kwargs,  # type: ignore[call-overload]
    )


@dataclass
class Postgres:
    """A PostgreSQL cluster of its own that can be stopped and started again."""

    url: str  # the DATABASE_URL of its database `vmdash`
    bindir: Path
    data: Path
    log: Path
    options: str

    def start(self) -> None:
        _as_postgres(
            self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-o", self.options,
            "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        _as_postgres(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")


@contextlib.contextmanager
def postgresql_server() -> Iterator[Postgres]:
    """A PostgreSQL cluster of its own (initdb in a temporary directory owned
    by the postgres user, TCP on a free loopback port, password login)."""
    bindir = _pg_bin()
    top = Path(tempfile.mkdtemp(prefix="vmdash-pg-"))
    shutil.chown(top, "postgres", "postgres")
    data, pwfile = top / "data", top / "pw"
    pwfile.write_text(DB_PASSWORD)
    shutil.chown(pwfile, "postgres", "postgres")
    port = free_port()
    try:
        _as_postgres(
            bindir / "initdb", "-D", data, "-U", "vmdash", f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {top} -c fsync=off"
        base = f"postgresql://vmdash:{DB_PASSWORD}@127.0.0.1:{port}"
        server = Postgres(f"{base}/vmdash", bindir, data, top / "log", options)
        server.start()
        import psycopg

        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE vmdash")
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                _as_postgres(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(top, ignore_errors=True)


# nginx --------------------------------------------------------------------


def self_signed(directory: Path) -> None:
    """vmdash.pem / vmdash.key for 127.0.0.1 (the browser is told to accept it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (directory / "vmdash.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "vmdash.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def site_for_test(text: str, directory: Path, webs: list[int], console: int, https: int) -> str:
    """deploy/nginx/vmdash.conf with this run's ports and paths. Each rewrite
    must match: a site file changed beyond them fails here, not silently."""
    rewrites = [
        (r"server 127\.0\.0\.1:8001 ", f"server 127.0.0.1:{webs[0]} ", 1),
        (r"server 127\.0\.0\.1:8002 ", f"server 127.0.0.1:{webs[1]} ", 1),
        (r"server 127\.0\.0\.1:6080;", f"server 127.0.0.1:{console};", 1),
        (r"\n *listen \[::\]:\d+[^\n]*;", "", 2),  # no IPv6 needed on loopback
        (r"listen 80;", f"listen 127.0.0.1:{free_port()};", 1),
        (r"listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;", 1),
        (r"/etc/ssl/vmdash/", f"{directory}/", 2),
        (r"/var/log/nginx/", f"{directory}/", 2),
    ]
    for pattern, replacement, count in rewrites:
        text, found = re.subn(pattern, replacement, text)
        assert found == count, f"{SITE}: {pattern!r} found {found} times, expected {count}"
    return text


NGINX_CONF = """\
daemon off;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/vmdash.conf;
}}
"""


@contextlib.contextmanager
def nginx_server(directory: Path, webs: list[int], console: int) -> Iterator[int]:
    """nginx with the deploy site on a free port; the HTTPS port."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        pytest.fail(apt_hint("nginx", "nginx-light"), pytrace=False)
    self_signed(directory)
    https = free_port()
    (directory / "vmdash.conf").write_text(
        site_for_test(SITE.read_text(), directory, webs, console, https)
    )
    (directory / "nginx.conf").write_text(NGINX_CONF.format(d=directory))
    test = subprocess.run([binary, "-t", "-c", directory / "nginx.conf"], capture_output=True)
    assert test.returncode == 0, test.stderr.decode()
    proc = subprocess.Popen(
        [binary, "-c", directory / "nginx.conf"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(https, proc, "nginx")
        yield https
    finally:
        proc.terminate()
        proc.wait(10)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what} did not listen on {port}", pytrace=False)
            time.sleep(0.1)


# vmdash, as the units start it ----------------------------------------------


def unit_command(unit: str, instance: str = "") -> list[str]:
    """The manage.py arguments of a unit's ExecStart (%i: the instance)."""
    text = (UNITS / unit).read_text()
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart=").replace("%i", instance))
    return argv[argv.index("manage.py") + 1 :]


def example_env() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


@dataclass
class Stack:
    url: str  # https://127.0.0.1:PORT, through nginx
    deployment: Deployment
    webs: dict[int, VmdashProcess]  # by port
    events: VmdashProcess
    console: VmdashProcess
    directory: Path
    database: Postgres

    def worker_sockets(self) -> dict[int, set[str]]:
        """Per web worker, nginx's open TCP connections to it (by nginx's local
        address). nginx keeps no idle connections to its upstreams (no
        `keepalive` in the site), so these are the WebSockets it relays."""
        out = subprocess.run(
            ["ss", "-Htn", "state", "established"], capture_output=True, text=True, check=True
        ).stdout
        found: dict[int, set[str]] = {port: set() for port in self.webs}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 4:
                continue
            local, peer = parts[-2], parts[-1]
            for port in self.webs:
                if peer == f"127.0.0.1:{port}":
                    found[port].add(local)
        return found

    def access_log(self) -> list[str]:
        path = self.directory / "vmdash.access.log"
        return path.read_text().splitlines() if path.exists() else []

    def kill_web(self, port: int) -> None:
        proc = self.webs[port].proc
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def restart_web(self, port: int) -> None:
        self.webs[port].proc = None
        self.webs[port].start()
        wait_web(self.webs[port], port)


def fetch_all(url: str, **headers: str) -> tuple[int, dict[str, str], str]:
    """GET through nginx (its self-signed certificate accepted): the status,
    the headers and the body; an error status is returned, not raised."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            body = response.read().decode()
            return int(response.status), dict(response.headers.items()), body
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read().decode()


def fetch_headers(url: str) -> tuple[int, dict[str, str]]:
    status, headers, _ = fetch_all(url)
    return status, headers


def fetch(url: str) -> int:
    return fetch_headers(url)[0]


def wait_web(process: VmdashProcess, port: int) -> None:
    assert process.proc is not None
    wait_for_port(port, process.proc, f"web worker {port}:\n{process.log.read_text()}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, system_conn: object) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("vmdash-deploy")
    web_ports, console_port = [free_port(), free_port()], free_port()
    with (
        postgresql_server() as database,
        redis_server(directory) as redis_url,
        nginx_server(directory, web_ports, console_port) as https,
    ):
        url = f"https://127.0.0.1:{https}"
        env = example_env()
        ours = {
            "DATABASE_URL": database.url,
            "REDIS_URL": redis_url,
            "VMDASH_SECRET_KEY": "deploy-test-" + "k" * 50,
            "VMDASH_DATA_DIR": str(directory / "data"),
            "VMDASH_ALLOWED_HOSTS": "127.0.0.1",
            "VMDASH_CSRF_TRUSTED_ORIGINS": url,
            "VMDASH_CONSOLE_PUBLIC_URL": f"wss://127.0.0.1:{https}/websockify",
            "VMDASH_CONSOLE_PROXY_PORT": str(console_port),
            "VMDASH_METRICS_TOKEN": METRICS_TOKEN,
        }
        assert set(ours) <= set(env), f"{ENV_EXAMPLE} lacks {set(ours) - set(env)}"
        env.update(ours)
        env["VMDASH_CONSOLE_PROXY"] = "1"  # new_deployment turns it off for its other users
        deployment = new_deployment(directory / "data", **env)
        events = VmdashProcess(
            unit_command("vmdash-events.service"), deployment.env, directory / "events.log"
        )
        console = VmdashProcess(
            unit_command("vmdash-console-proxy.service"),
            deployment.env,
            directory / "console.log",
        )
        webs = {
            port: VmdashProcess(
                unit_command("vmdash-web@.service", str(port)),
                deployment.env,
                directory / f"web-{port}.log",
            )
            for port in web_ports
        }
        processes = [events, console, *webs.values()]
        deployment.processes.extend(processes)
        try:
            for process in processes:
                process.start()
            assert console.proc is not None
            wait_for_port(console_port, console.proc, f"console proxy:\n{console.log.read_text()}")
            for port, web in webs.items():
                wait_web(web, port)
            yield Stack(url, deployment, webs, events, console, directory, database)
        finally:
            for process in processes:
                process.stop()
