"""The sampler's history in Redis, so that every web worker serves it.

With REDIS_URL the sampler runs in the one events process and the pages are
served by other processes: the sampler writes each new point here, in one
pipeline per host per tick, and the views read from here. Without Redis the
sampler and the views share one process and read stats/history.py directly.

Keys (all under `vmdash:stats:`, expiring a day after their last write):
    fine:{host}:{key}     list of points of the last ten minutes
    coarse:{host}:{key}   list of one-minute means, a day of them
    latest:{host}         hash key -> [name, at, values] (top VMs, /metrics)
    down                  hash host -> why its last read failed
A point is JSON `[at, v1, …, v8]` (FIELDS order, null for unknown).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from stats.history import DAY, FINE_SECONDS, Put, Values

log = logging.getLogger(__name__)
PREFIX = "vmdash:stats:"
KEEP = DAY + 3600  # seconds a key outlives its last write


def _point(at: float, values: Values) -> str:
    return json.dumps([round(at, 3), *values], separators=(",", ":"))


def _unpoint(raw: bytes) -> tuple[float, Values]:
    at, *values = json.loads(raw)
    return float(at), tuple(values)


class SharedHistory:
    """Writer (in the sampling process) and reader (in every web worker)."""

    def __init__(self, url: str, interval: float) -> None:
        import redis

        self.client: Any = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
        self.fine_len = int(FINE_SECONDS / max(interval, 0.5)) + 2

    # writing --------------------------------------------------------------

    def write(self, host: str, puts: Iterable[Put]) -> None:
        pipe = self.client.pipeline(transaction=False)
        latest: dict[str, str] = {}
        for put in puts:
            fine = f"{PREFIX}fine:{host}:{put.key}"
            pipe.rpush(fine, _point(put.at, put.values))
            pipe.ltrim(fine, -self.fine_len, -1)
            pipe.expire(fine, KEEP)
            if put.rolled is not None:
                coarse = f"{PREFIX}coarse:{host}:{put.key}"
                pipe.rpush(coarse, _point(*put.rolled))
                pipe.ltrim(coarse, -(DAY // 60), -1)
                pipe.expire(coarse, KEEP)
            latest[put.key] = json.dumps([put.name, put.at, put.values], separators=(",", ":"))
        if latest:
            pipe.hset(f"{PREFIX}latest:{host}", mapping=latest)
            pipe.expire(f"{PREFIX}latest:{host}", KEEP)
        pipe.hdel(f"{PREFIX}down", host)
        pipe.execute()

    def failed(self, host: str, why: str) -> None:
        self.client.hset(f"{PREFIX}down", host, why)

    def forget(self, host: str, keys: Iterable[str]) -> None:
        """Objects not seen for a day leave the latest values too."""
        gone = list(keys)
        if gone:
            self.client.hdel(f"{PREFIX}latest:{host}", *gone)

    # reading (what stats/views.py asks of a history) ------------------------

    def window(self, host: str, key: str, seconds: float) -> list[tuple[float, Values]]:
        from redis.exceptions import RedisError

        start = time.time() - seconds
        try:
            fine = [_unpoint(p) for p in self.client.lrange(f"{PREFIX}fine:{host}:{key}", 0, -1)]
            if seconds <= FINE_SECONDS:
                return [p for p in fine if p[0] >= start]
            raw = self.client.lrange(f"{PREFIX}coarse:{host}:{key}", 0, -1)
        except RedisError as err:
            log.warning("stats: Redis does not answer (%s); no history shown", err)
            return []
        first_fine = fine[0][0] if fine else time.time()
        older = [p for p in map(_unpoint, raw) if start <= p[0] < first_fine]
        return older + fine

    def latest(self) -> list[tuple[str, str, str, float, Values]]:
        from redis.exceptions import RedisError

        rows: list[tuple[str, str, str, float, Values]] = []
        try:
            names = list(self.client.scan_iter(match=f"{PREFIX}latest:*", count=1000))
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(name)
            tables = pipe.execute()
        except RedisError as err:
            log.warning("stats: Redis does not answer (%s); no latest values", err)
            return []
        for name, table in zip(names, tables, strict=True):
            host = name.decode().removeprefix(f"{PREFIX}latest:")
            for key, raw in table.items():
                vm_name, at, values = json.loads(raw)
                rows.append((host, key.decode(), vm_name, float(at), tuple(values)))
        return rows

    def latest_of(self, host: str, keys: set[str] | None = None) -> dict[str, tuple[float, Values]]:
        from redis.exceptions import RedisError

        name = f"{PREFIX}latest:{host}"
        try:
            if keys is None:
                table = {k.decode(): v for k, v in self.client.hgetall(name).items()}
            else:
                wanted = sorted(keys)
                got = self.client.hmget(name, wanted) if wanted else []
                table = dict(zip(wanted, got, strict=True))
        except RedisError as err:
            log.warning("stats: Redis does not answer (%s); no latest values", err)
            return {}
        out: dict[str, tuple[float, Values]] = {}
        for key, raw in table.items():
            if raw is not None:
                _name, at, values = json.loads(raw)
                out[key] = (float(at), tuple(values))
        return out

    @property
    def down(self) -> Mapping[str, str]:
        from redis.exceptions import RedisError

        try:
            table = self.client.hgetall(f"{PREFIX}down")
        except RedisError:
            return {}
        return {k.decode(): v.decode() for k, v in table.items()}

    def clear(self) -> None:
        for name in self.client.scan_iter(match=f"{PREFIX}*", count=1000):
            self.client.delete(name)


_shared: dict[str, SharedHistory] = {}
_lock = threading.Lock()


def shared(url: str, interval: float) -> SharedHistory:
    with _lock:
        if url not in _shared:
            _shared[url] = SharedHistory(url, interval)
        return _shared[url]


def reader() -> Any:
    """Where the views read the history: Redis when configured, else this
    process's own (the embedded sampler's)."""
    from django.conf import settings

    from stats.history import history

    if settings.REDIS_URL:
        return shared(settings.REDIS_URL, float(getattr(settings, "VMDASH_STATS_INTERVAL", 2.0)))
    return history()
