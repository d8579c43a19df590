"""The log store's handler (core/logstore.py) against the real Redis: `flush` returns only
once the records queued before it are in the stream, not merely taken off the queue."""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any

import pytest
from redis import Redis
from redis.client import Pipeline

from townsquare.platform.core.logstore import StoreHandler, stream_key


def test_flush_waits_until_the_batch_is_written(services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"ts:test:logstore:{secrets.token_hex(4)}:"
    handler = StoreHandler(services.redis_url, prefix)
    written = Pipeline.execute
    release = threading.Event()

    def held(pipe: Pipeline, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is handler._thread:  # only this handler's shipper is held back
            release.wait(30)
        return written(pipe, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", held)
    redis = Redis.from_url(services.redis_url)
    try:
        handler.handle(logging.LogRecord("townsquare.test.logstore", logging.WARNING, __file__, 1, "held back", None, None))
        assert handler.flush(timeout=0.5) is False  # the shipper has the record but cannot write it yet
        release.set()
        assert handler.flush(timeout=30) is True
        assert redis.xlen(stream_key(prefix)) == 1  # right after flush, no polling
    finally:
        release.set()
        redis.delete(stream_key(prefix))
        redis.close()
