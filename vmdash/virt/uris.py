"""The one rule for host URIs: which libvirt URIs vmdash may ever open.

libvirt's remote driver does what a URI says before it speaks to anyone:
`command=`, `netcat=` and `proxy=` name programs it runs as its transport,
`socket=` and `pkipath=` name local files, the user part becomes an
argument of ssh. Opening a URI someone typed into a form is running their
program as the user vmdash runs as. So a URI is allowed, never filtered:
known drivers and transports, a plain user and host name, /system or
/session, and a few harmless parameters. Every entrance (form, admin,
VMDASH_HOSTS, the model, the connection pool) asks `check_uri`.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from vmdash.virt.errors import InvalidInput

DEMO_URI = "test:///default"
SCHEMES = ("qemu", "qemu+ssh", "qemu+tls", "qemu+tcp", "qemu+libssh2", "qemu+unix")
_NEEDS_HOST = {"qemu+ssh", "qemu+tls", "qemu+tcp", "qemu+libssh2"}
PATHS = ("/system", "/session")
_BOOL_PARAMS = ("no_verify", "no_tty")
PARAMS = (*_BOOL_PARAMS, "keyfile")

_SHAPE = re.compile(
    r"^(?P<scheme>[a-z0-9+]+)://(?:(?P<user>[^@/?]*)@)?(?P<host>\[[^\]/?]*\]|[^:/?]*)"
    r"(?::(?P<port>[^/?]*))?(?P<path>/[^?]*)?(?:\?(?P<query>.*))?$",
    re.DOTALL,
)
_USER = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$")
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_KEYPATH = re.compile(r"^/[A-Za-z0-9._/-]+$")
_TEST_PATH = re.compile(r"^/[A-Za-z0-9._/-]+\.xml$")


def _t(message: str) -> str:
    """gettext when Django runs (pages); the text itself for the benchmarks."""
    from django.conf import settings

    if not settings.configured:
        return message
    from django.utils.translation import gettext

    return gettext(message)


def _refuse(message: str, **values: object) -> InvalidInput:
    return InvalidInput(_t(message) % values)


def _setting(name: str) -> str:
    from django.conf import settings

    return str(getattr(settings, name, "") or "") if settings.configured else ""


def check_uri(uri: str, *, allow_demo: bool = False) -> str:
    """`uri` written the one way vmdash stores it; raises InvalidInput naming the refused part.

    `allow_demo` admits the demo host `test:///default`. Other test-driver
    URIs are admitted only for `.xml` worlds inside VMDASH_TEST_DRIVER_DIR.
    """
    uri = uri.strip()
    if not uri.isprintable() or any(c in uri for c in " %#\\"):
        raise _refuse(
            "The URI contains spaces, %% escapes or control characters; write it plainly, "
            "e.g. qemu+ssh://root@lab1/system."
        )
    if uri.startswith("test:"):
        return _check_test(uri, allow_demo)
    m = _SHAPE.match(uri)
    if m is None:
        raise _refuse(
            "This is not a libvirt URI vmdash accepts. Examples: qemu:///system, "
            "qemu+ssh://root@lab1/system, qemu+tls://lab1.example.org/system."
        )
    scheme = m["scheme"]
    if scheme not in SCHEMES:
        raise _refuse(
            "The driver or transport '%(scheme)s' is not allowed; use one of %(allowed)s.",
            scheme=scheme,
            allowed=", ".join(SCHEMES),
        )
    user, host, port = (
        _check_user(m["user"]),
        _check_host(scheme, m["host"]),
        _check_port(m["port"]),
    )
    path = m["path"] or ""
    if path not in PATHS:
        raise _refuse(
            "The path '%(path)s' is not allowed; use /system (or /session).", path=path or "(none)"
        )
    query = _check_query(m["query"])
    authority = f"{user}@{host}" if user else host
    if port:
        authority += f":{port}"
    return f"{scheme}://{authority}{path}" + (f"?{query}" if query else "")


def _check_test(uri: str, allow_demo: bool) -> str:
    if uri == DEMO_URI:
        if allow_demo:
            return uri
        raise _refuse("The demo host test:///default is added by vmdash itself, not here.")
    world = _test_world(uri)
    if world is None:
        raise _refuse(
            "libvirt's test driver reads the file the URI names; vmdash does not open "
            "test:// URIs. Use qemu:///system, qemu+ssh://user@host/system or similar."
        )
    return f"test://{world}"


def _test_world(uri: str) -> str | None:
    """The fixture world a test:///path.xml URI names, if it lies in the allowed directory."""
    root = _setting("VMDASH_TEST_DRIVER_DIR")
    path = uri[len("test://") :]
    if not root or not _TEST_PATH.match(path):
        return None
    resolved = Path(path).resolve()
    return str(resolved) if resolved.is_relative_to(Path(root).resolve()) else None


def _check_user(user: str | None) -> str:
    if user is None:
        return ""
    if ":" in user:  # never echo it: the rest is a password
        raise _refuse("A password in the URI is not allowed; let the host accept an SSH key.")
    if not _USER.match(user):
        raise _refuse(
            "The user name '%(user)s' is not allowed; use letters, digits, '.', '_' and '-' "
            "(not first).",
            user=user,
        )
    return user


def _check_host(scheme: str, host: str) -> str:
    if scheme == "qemu+unix" and host:
        raise _refuse("qemu+unix:// is the local socket: leave the host out (qemu+unix:///system).")
    if not host:
        if scheme in _NEEDS_HOST:
            raise _refuse(
                "%(scheme)s:// needs a host name, e.g. %(scheme)s://lab1/system.", scheme=scheme
            )
        return ""
    if host.startswith("[") and host.endswith("]"):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1])}]"
        except ValueError:
            raise _refuse("'%(host)s' is not an IPv6 address.", host=host) from None
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise _refuse(
            "The host '%(host)s' is not a host name or IP address vmdash accepts.", host=host
        )
    return host.lower()


def _check_port(port: str | None) -> str:
    if port is None:
        return ""
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _refuse("The port '%(port)s' is not a number from 1 to 65535.", port=port)
    return str(int(port))


def _check_query(query: str | None) -> str:
    if not query:
        return ""
    seen: dict[str, str] = {}
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if name not in PARAMS:
            raise _refuse(
                "The URI parameter '%(name)s' is not allowed (it can make libvirt run programs "
                "or read files); allowed: %(allowed)s.",
                name=name,
                allowed=", ".join(PARAMS),
            )
        if name in seen:
            raise _refuse("The URI parameter '%(name)s' is given twice.", name=name)
        if name in _BOOL_PARAMS and value not in ("0", "1"):
            raise _refuse("The URI parameter '%(name)s' takes 0 or 1.", name=name)
        if name == "keyfile":
            value = _check_keyfile(value if sep else "")
        seen[name] = value
    return "&".join(f"{k}={v}" for k, v in seen.items())


def _check_keyfile(value: str) -> str:
    root = _setting("VMDASH_SSH_KEY_DIR")
    if not root:
        raise _refuse("keyfile= is not allowed: VMDASH_SSH_KEY_DIR is not set.")
    inside = Path(root).resolve()
    if _KEYPATH.match(value):
        resolved = Path(value).resolve()
        if resolved.is_relative_to(inside) and resolved != inside:
            return str(resolved)
    raise _refuse(
        "keyfile= must name a key file inside %(dir)s (VMDASH_SSH_KEY_DIR).", dir=str(inside)
    )


def redact(uri: str) -> str:
    """`uri` for the audit trail and logs: a password in its user part replaced, cut short."""
    shown = re.sub(r"(//[^/@:?]*):[^/@?]*@", r"\1:***@", uri)
    return "".join(c if c.isprintable() else "?" for c in shown)[:300]
