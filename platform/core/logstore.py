"""The log store: every process's log records, readable by the dashboard's log viewer.

Townsquare runs as several processes (servers, agent workers, the rq worker), each logging to
its own stderr. So that an administrator can read them in one place, `setup_logging` installs a
`StoreHandler` in each: records at `log_store_level` and above are queued in memory and shipped
by a background thread to one capped Redis stream (`<prefix>logs`, trimmed to about
`log_store_max` entries). A stream, because its entry ids are timestamps: the viewer's time
filter is a range read, and paging back is `XREVRANGE` from the last id seen.

Logging never waits for Redis: the queue is bounded and records are dropped (and counted) when
it is full or Redis is away. User content is never logged at info level (see core/logging.py),
so storing info records is safe; access lines below WARNING are left out (one per request, they
would push everything else out of the capped stream).
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from typing import Any

import orjson

from .config import Settings

ACCESS_LOGGER = "townsquare.access"
LEVELS = ("debug", "info", "warning", "error", "critical")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_MAX_FIELD = 2000  # characters kept of a message or traceback


def stream_key(prefix: str) -> str:
    return f"{prefix}logs"


def process_name() -> str:
    """Which process a record came from: the command's role and its pid."""
    import sys

    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    role = args[0] if args else os.path.basename(sys.argv[0] or "python")
    return f"{role}[{os.getpid()}]"


class StoreHandler(logging.Handler):
    """Queues records; a daemon thread writes them to the Redis stream in batches."""

    def __init__(self, redis_url: str, prefix: str, *, level: int = logging.INFO, maxlen: int = 20_000,
                 capacity: int = 10_000) -> None:
        super().__init__(level)
        self.key = stream_key(prefix)
        self.maxlen = maxlen
        self.redis_url = redis_url
        self.dropped = 0
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=capacity)
        self._pending = 0  # records queued and not yet written (or given up): what flush waits for
        self._settled = threading.Condition()
        self._host = socket.gethostname()
        self._process = process_name()
        self._thread = threading.Thread(target=self._ship, name="townsquare-logstore", daemon=True)
        self._thread.start()

    def filter(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        if record.name == ACCESS_LOGGER and record.levelno < logging.WARNING:
            return False
        if record.name.startswith(("redis", "townsquare.logstore")):
            return False  # the shipper's own client must not feed itself
        return super().filter(record)

    def entry(self, record: logging.LogRecord) -> dict[str, Any]:
        from .logging import log_context  # late: core.logging installs this handler

        out: dict[str, Any] = {
            "ts": record.created, "level": record.levelname.lower(), "logger": record.name,
            "msg": record.getMessage()[:_MAX_FIELD], "process": self._process, "host": self._host,
        }
        fields = log_context()
        fields.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")})
        if fields:
            out["fields"] = fields
        if record.exc_info:
            out["exc"] = logging.Formatter().formatException(record.exc_info)[-_MAX_FIELD:]
        return out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = orjson.dumps(self.entry(record), default=str)
        except Exception:  # noqa: BLE001 - a log record must never break the caller
            self.handleError(record)
            return
        with self._settled:
            self._pending += 1  # before the put: the shipper may write it at once
        try:
            self._queue.put_nowait(data)
        except queue.Full:
            self.dropped += 1
            self._settle(1)

    def _ship(self) -> None:
        from redis import Redis

        client = Redis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=5)
        while True:
            batch = [self._queue.get()]
            while len(batch) < 500:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                pipe = client.pipeline(transaction=False)
                for data in batch:
                    pipe.xadd(self.key, {"d": data}, maxlen=self.maxlen, approximate=True)
                pipe.execute()
            except Exception:  # noqa: BLE001 - Redis away: these records are lost, logging goes on
                self.dropped += len(batch)
                time.sleep(1.0)
            finally:
                self._settle(len(batch))

    def _settle(self, count: int) -> None:
        with self._settled:
            self._pending -= count
            self._settled.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until every record emitted before the call is in the stream (or given up for
        lost), at most `timeout` seconds (tests; shutdown). True when nothing is left pending."""
        with self._settled:
            return self._settled.wait_for(lambda: self._pending <= 0, timeout)


def install(root: logging.Logger, settings: Settings) -> StoreHandler | None:
    """Adds the store's handler to `root` (called once per process by `setup_logging`).
    Without a Redis URL (a bare command-line tool) there is nowhere to ship to: nothing is added."""
    if not settings.redis_url or settings.log_store_max <= 0:
        return None
    handler = StoreHandler(settings.redis_url, settings.redis_prefix, level=logging.getLevelName(settings.log_store_level.upper()),
                           maxlen=settings.log_store_max)
    root.addHandler(handler)  # it sees what the process logs (LOG_LEVEL), from log_store_level up
    return handler


def decode(entry_id: bytes | str, fields: dict[bytes, bytes]) -> dict[str, Any]:
    record = orjson.loads(fields[b"d"])
    record["id"] = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return record
