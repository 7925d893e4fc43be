"""What a serving command checks before it serves: the database and Redis answer.

A deployment whose PostgreSQL or Redis is down (or misnamed) learns it in one
line that names the variable and where it points, at start, instead of from
pages that fail at their first request or consumers that retry forever.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError

from vmdash.env import without_password


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def database_answers() -> None:
    from django.db import DatabaseError, connections

    db = connections["default"]
    if db.vendor == "sqlite":
        where = f"SQLite file {db.settings_dict['NAME']} (VMDASH_DB_PATH)"
    else:
        host = db.settings_dict["HOST"] or "localhost"
        port = db.settings_dict["PORT"] or "5432"
        where = f"DATABASE_URL: {db.vendor} at {host}:{port}, database {db.settings_dict['NAME']}"
    try:
        db.ensure_connection()
    except DatabaseError as err:
        raise CommandError(f"the database does not answer ({where}): {_first_line(err)}") from err
    finally:
        db.close()  # the serving threads open their own


def redis_answers() -> None:
    if not settings.REDIS_URL:
        return
    import redis
    from redis.exceptions import RedisError

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except RedisError as err:
        shown = without_password(settings.REDIS_URL)
        why = _first_line(err)
        raise CommandError(f"Redis does not answer (REDIS_URL={shown}): {why}") from err
    finally:
        client.close()


def services_answer() -> None:
    database_answers()
    redis_answers()
