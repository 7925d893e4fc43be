"""Typed readers for settings that come from the environment.

Each reader fails loudly on a value it cannot understand, naming the variable,
instead of silently falling back to a default.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no)")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None


def envfloat(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None


def envlist(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def secret_key(data_dir: Path) -> str:
    """VMDASH_SECRET_KEY, else a key generated once and kept in the data dir."""
    from_env = os.environ.get("VMDASH_SECRET_KEY")
    if from_env:
        return from_env
    path = data_dir / "secret_key"
    if not path.exists():
        # Written aside and linked into place: processes starting at once
        # (test workers, web workers) all read the one key that won.
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, aside = tempfile.mkstemp(dir=data_dir, prefix=".secret_key.")
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(aside)
    return path.read_text().strip()


def without_password(raw: str) -> str:
    """The URL as it may be printed: the password replaced by ***."""
    url = urlsplit(raw)
    if url.password is None:
        return raw
    userinfo = f"{url.username or ''}:***@"
    netloc = userinfo + url.netloc.rpartition("@")[2]
    return urlunsplit(url._replace(netloc=netloc))


def database(name: str, sqlite: dict[str, Any]) -> dict[str, Any]:
    """The database from the URL in `name` (DATABASE_URL), else `sqlite`.

    `postgresql://USER:PASSWORD@HOST:PORT/NAME?sslmode=require` (also
    `postgres://`); a Unix socket directory as `?host=/run/postgresql`, so
    `postgresql:///vmdash?host=/run/postgresql` logs in as the system user.
    Other query parameters go to libpq as they are (sslmode, connect_timeout).
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return sqlite
    shown = without_password(raw)
    url = urlsplit(raw)
    if url.scheme not in ("postgresql", "postgres"):
        raise ImproperlyConfigured(
            f"{name}={shown!r}: use postgresql://user:password@host:port/name "
            "(or leave it unset for SQLite)"
        )
    try:
        port = url.port
    except ValueError:
        raise ImproperlyConfigured(f"{name}={shown!r}: the port is not a number") from None
    db_name = unquote(url.path.lstrip("/"))
    if not db_name or "/" in db_name:
        raise ImproperlyConfigured(f"{name}={shown!r}: name one database after the host (…/vmdash)")
    options = dict(parse_qsl(url.query, keep_blank_values=True))
    host = options.pop("host", "") or unquote(url.hostname or "")
    options.setdefault("connect_timeout", "5")  # a database that is down: an answer in seconds
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": db_name,
        "USER": unquote(url.username or ""),
        "PASSWORD": unquote(url.password or ""),
        "HOST": host,
        "PORT": str(port or ""),
        "OPTIONS": options,
        # One connection per request (Django's default): web workers run sync
        # views in threads, and a health-checked reuse would only save ~1 ms
        # on loopback.
        "CONN_MAX_AGE": 0,
        "TEST": {"NAME": f"test_{db_name}"},
    }
