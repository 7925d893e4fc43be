"""A real OpenLDAP server (Debian's slapd) with a small directory of its own.

Each test gets a fresh slapd on a free loopback port, its database in a temp
directory, loaded with slapadd from the LDIF below before it starts:

    dc=vmdash,dc=test
      ou=people: alice.ldap, bob.ldap (inetOrgPerson, with passwords)
      ou=groups: vmdash-admins (bob.ldap), vmdash-ops (alice.ldap) as groupOfNames
      ou=posix: vmdash-posix-ops (alice.ldap) as posixGroup, for VMDASH_LDAP_GROUP_TYPE

`Slapd.admin()` is a python-ldap connection as the directory's root, for tests
that change the directory (take someone out of a group, delete an entry).
slapd missing is a failure, not a skip: the setup script installs it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap
import pytest

from tests.servers import free_port

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMAS = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")

SUFFIX = "dc=vmdash,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "directory-root-pw-1"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
POSIX_GROUPS = f"ou=posix,{SUFFIX}"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PW = "reader-pw-1"
# groupOfNames needs a member: this one keeps a group whose people all left.
NOBODY = f"cn=nobody,{SUFFIX}"
PASSWORDS = {"alice.ldap": "alice-ldap-pw-1", "bob.ldap": "bob-ldap-pw-1"}

SLAPD_CONF = """\
include {schemas}/core.schema
include {schemas}/cosine.schema
include {schemas}/inetorgperson.schema
include {schemas}/nis.schema
{tls}pidfile {run}/slapd.pid
argsfile {run}/slapd.args
modulepath {modules}
moduleload back_mdb
database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {db}
# Passwords: only for binding. Everything else: readable by bound users.
access to attrs=userPassword by anonymous auth by self read by * none
access to * by users read by anonymous read
"""


def ssha(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def directory_ldif() -> str:
    people = "".join(
        f"""
dn: uid={uid},{PEOPLE}
objectClass: inetOrgPerson
uid: {uid}
cn: {uid.split(".")[0].title()} Ldap
givenName: {uid.split(".")[0].title()}
sn: Ldap
mail: {uid}@vmdash.test
userPassword: {ssha(pw)}
"""
        for uid, pw in PASSWORDS.items()
    )
    return f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: vmdash
o: vmdash tests

dn: {READER_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: {ssha(READER_PW)}

dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: {GROUPS}
objectClass: organizationalUnit
ou: groups
{people}
dn: cn=vmdash-admins,{GROUPS}
objectClass: groupOfNames
cn: vmdash-admins
member: {NOBODY}
member: uid=bob.ldap,{PEOPLE}

dn: cn=vmdash-ops,{GROUPS}
objectClass: groupOfNames
cn: vmdash-ops
member: {NOBODY}
member: uid=alice.ldap,{PEOPLE}

dn: {POSIX_GROUPS}
objectClass: organizationalUnit
ou: posix

dn: cn=vmdash-posix-ops,{POSIX_GROUPS}
objectClass: posixGroup
cn: vmdash-posix-ops
gidNumber: 5000
memberUid: alice.ldap
"""


@dataclass
class Slapd:
    uri: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def admin(self) -> Any:
        conn = ldap.initialize(self.uri)
        conn.simple_bind_s(ROOT_DN, ROOT_PW)
        return conn

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_ca_and_server_cert(root: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 it signed: (ca.pem, cert.pem, key.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    paths = root / "ca.pem", root / "cert.pem", root / "key.pem"
    pem = serialization.Encoding.PEM
    paths[0].write_bytes(
        cert("vmdash test CA", ca_key, "vmdash test CA", ca_key, True).public_bytes(pem)
    )
    paths[1].write_bytes(cert("127.0.0.1", key, "vmdash test CA", ca_key, False).public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def start_slapd(root: Path, *, tls: bool = False) -> Slapd:
    """slapd on a free port; with tls, StartTLS offered with a certificate of root/ca.pem."""
    for tool in (SLAPD, SLAPADD):
        if not tool.exists():
            pytest.fail(
                f"{tool} is missing: install Debian's slapd and ldap-utils "
                "(scripts/ensure-system-packages)",
                pytrace=False,
            )
    db, run = root / "db", root / "run"
    db.mkdir()
    run.mkdir()
    tls_conf = ""
    if tls:
        ca, cert, key = make_ca_and_server_cert(root)
        tls_conf = (
            f"TLSCACertificateFile {ca}\nTLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n"
        )
    conf = root / "slapd.conf"
    conf.write_text(
        SLAPD_CONF.format(
            schemas=SCHEMAS,
            modules=MODULES,
            run=run,
            suffix=SUFFIX,
            root_dn=ROOT_DN,
            root_pw=ROOT_PW,
            db=db,
            tls=tls_conf,
        )
    )
    ldif = root / "directory.ldif"
    ldif.write_text(directory_ldif())
    loaded = subprocess.run(
        [SLAPADD, "-f", conf, "-l", ldif], capture_output=True, text=True, check=False
    )
    if loaded.returncode != 0:
        pytest.fail(f"slapadd failed:\n{loaded.stderr}", pytrace=False)
    port = free_port()
    log = root / "slapd.log"
    with log.open("w") as out:
        # -d 0: stay in the foreground (ours to stop), log nothing but errors.
        proc = subprocess.Popen(
            [SLAPD, "-d", "0", "-f", conf, "-h", f"ldap://127.0.0.1:{port}/"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    srv = Slapd(f"ldap://127.0.0.1:{port}", port, proc, log)
    _wait_answers(srv)
    return srv


def _wait_answers(srv: Slapd, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", srv.port), timeout=1):
                return
        except OSError:
            if srv.proc.poll() is not None or time.monotonic() > deadline:
                srv.stop()
                pytest.fail(f"slapd did not start:\n{srv.log.read_text()}", pytrace=False)
            time.sleep(0.05)


@pytest.fixture
def slapd(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Slapd]:
    """This test's slapd; `@pytest.mark.parametrize("slapd", ["tls"], indirect=True)`
    makes it offer StartTLS with a certificate of tmp_path/ca.pem."""
    srv = start_slapd(tmp_path, tls=getattr(request, "param", "") == "tls")
    try:
        yield srv
    finally:
        srv.stop()


def ldap_env(srv: Slapd, **extra: str) -> dict[str, str]:
    """VMDASH_LDAP_* for this directory: a bind account, groupOfNames groups."""
    return {
        "VMDASH_LDAP_URI": srv.uri,
        "VMDASH_LDAP_BIND_DN": READER_DN,
        "VMDASH_LDAP_BIND_PASSWORD": READER_PW,
        "VMDASH_LDAP_USER_SEARCH": PEOPLE,
        "VMDASH_LDAP_GROUP_SEARCH": GROUPS,
        "VMDASH_LDAP_SUPERUSER_GROUP": f"cn=vmdash-admins,{GROUPS}",
        **extra,
    }


Configure = Callable[..., None]


@pytest.fixture
def configure(slapd: Slapd, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Configure:
    """configure(**VMDASH_LDAP_*): this test's settings as settings.py makes them.

    The variables are ldap_env(slapd) changed by the keywords ("" unsets one);
    the AUTH_LDAP_* settings come from vmdash.ldap.ldap_settings(), the
    backends in settings.py's order (tests/ldap/test_ldap_server.py checks
    that order in a real server).
    """
    from vmdash.ldap import ldap_settings

    def apply(**extra: str) -> None:
        for name, value in ldap_env(slapd, **extra).items():
            monkeypatch.setenv(name, value)
        for name, value in ldap_settings().items():
            setattr(settings, name, value)
        settings.AUTHENTICATION_BACKENDS = [
            "axes.backends.AxesStandaloneBackend",
            "vmdash.ldap.Backend",
            "django.contrib.auth.backends.ModelBackend",
        ]

    return apply


@pytest.fixture
def ldap_login(slapd: Slapd, configure: Configure) -> Slapd:
    """LDAP login against this test's slapd, configured as ldap_env() says."""
    configure()
    return slapd
