"""DATABASE_URL: what it turns into, and the sentences a wrong one gets.

The commands' start checks run as a person would start them: `manage.py`
in a process of its own, pointed at a port where nothing listens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.servers import free_port
from vmdash.env import database, without_password

SQLITE = {"ENGINE": "django.db.backends.sqlite3", "NAME": "x.sqlite3"}
REPO = Path(__file__).resolve().parents[2]


def parsed(monkeypatch: pytest.MonkeyPatch, url: str) -> dict[str, object]:
    monkeypatch.setenv("DATABASE_URL", url)
    return database("DATABASE_URL", SQLITE)


def test_unset_or_empty_keeps_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert database("DATABASE_URL", SQLITE) is SQLITE
    assert parsed(monkeypatch, "  ") is SQLITE


def test_a_postgresql_url_names_every_part(monkeypatch: pytest.MonkeyPatch) -> None:
    db = parsed(
        monkeypatch, "postgresql://vm%40dash:p%2Fw@db.example.org:6432/vmdash?sslmode=require"
    )
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("vmdash", "vm@dash", "p/w")
    assert (db["HOST"], db["PORT"]) == ("db.example.org", "6432")
    assert db["OPTIONS"] == {"sslmode": "require", "connect_timeout": "5"}


def test_a_socket_directory_and_the_short_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    db = parsed(monkeypatch, "postgres:///vmdash?host=/run/postgresql")
    assert (db["HOST"], db["PORT"], db["USER"], db["NAME"]) == ("/run/postgresql", "", "", "vmdash")
    assert db["OPTIONS"] == {"connect_timeout": "5"}


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://u:secret@h/db", "use postgresql://"),
        ("postgresql://u:secret@h:port/db", "the port is not a number"),
        ("postgresql://u:secret@h:5432/", "name one database"),
        ("postgresql://u:secret@h:5432/a/b", "name one database"),
    ],
)
def test_a_wrong_url_is_refused_by_name_without_its_password(
    monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as refused:
        parsed(monkeypatch, url)
    assert str(refused.value).startswith("DATABASE_URL=")
    assert says in str(refused.value)
    assert "secret" not in str(refused.value)


def test_passwords_are_hidden_in_what_is_printed() -> None:
    assert without_password("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0"
    assert without_password("postgresql://u:s3cret@h/db") == "postgresql://u:***@h/db"
    assert without_password("redis://h:6379/0") == "redis://h:6379/0"


def start(command: str, **env: str) -> tuple[int, str]:
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "vmdash.settings", **env}
    done = subprocess.run(
        [sys.executable, "manage.py", command],
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("command", ["vmdash_run", "vmdash_events", "vmdash_console_proxy"])
def test_a_database_that_is_down_stops_each_command_with_one_line(
    command: str, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there
    code, out = start(
        command,
        DATABASE_URL=f"postgresql://vmdash:pw-xyz@127.0.0.1:{port}/vmdash",
        VMDASH_DATA_DIR=str(tmp_path),
    )
    assert code == 1, out
    assert f"the database does not answer (DATABASE_URL: postgresql at 127.0.0.1:{port}" in out
    assert "pw-xyz" not in out
    assert "Traceback" not in out


@pytest.mark.parametrize("command", ["vmdash_run", "vmdash_events"])
def test_a_redis_that_is_down_stops_the_command_with_one_line(command: str, tmp_path: Path) -> None:
    port = free_port()
    code, out = start(
        command,
        REDIS_URL=f"redis://:pw-xyz@127.0.0.1:{port}/0",
        VMDASH_DATA_DIR=str(tmp_path),
        VMDASH_DB_PATH=str(tmp_path / "db.sqlite3"),
    )
    assert code == 1, out
    assert f"Redis does not answer (REDIS_URL=redis://:***@127.0.0.1:{port}/0)" in out
    assert "pw-xyz" not in out
    assert "Traceback" not in out


def test_a_malformed_url_stops_manage_py_naming_the_variable(tmp_path: Path) -> None:
    bad = "postgresql://u:pw@h:x/db"
    code, out = start("check", DATABASE_URL=bad, VMDASH_DATA_DIR=str(tmp_path))
    assert code != 0
    assert "DATABASE_URL='postgresql://u:***@h:x/db': the port is not a number" in out
