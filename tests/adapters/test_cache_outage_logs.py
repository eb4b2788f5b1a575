"""A Redis outage met while releasing a cache lock is one WARNING line, never a traceback.

Found in an attack run (gunicorn, Redis stopped for 15 s): the release logged redis-py's
three chained tracebacks at WARNING, where every other Redis failure logs one line; an
expected outage should not look like a crash in the host's logs.
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from decentro_adapters.cache.redis_cache import RedisCache


class _CutPipeline:
    """A pipeline whose round trip meets a Redis that went away."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        raise redis.exceptions.ConnectionError("Connection refused")


def test_a_lock_release_during_an_outage_logs_one_line_without_traceback(redis_url: str, redis_prefix: str,
                                                                           caplog: Any, monkeypatch: Any) -> None:
    with RedisCache(redis_url, prefix=redis_prefix) as cache:
        client = cache._client
        real_pipeline = client.pipeline
        with caplog.at_level(logging.WARNING):
            with cache.lock("k", timeout=5.0):
                monkeypatch.setattr(client, "pipeline", lambda *a, **k: _CutPipeline(real_pipeline(*a, **k)))
        released = [r for r in caplog.records if "release a cache lock" in r.getMessage()]
        assert len(released) == 1 and released[0].levelno == logging.WARNING
        assert released[0].exc_info is None and "ConnectionError" in released[0].getMessage()
