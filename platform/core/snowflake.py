"""Discord-style snowflake ids: 42 bits of milliseconds since the Townsquare epoch, 5 bits of
worker, 5 bits of process, 12 bits of increment."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone

EPOCH_MS = 1_420_070_400_000  # Discord's epoch, so ids look and sort like Discord's
MAX_SNOWFLAKE = (1 << 63) - 1


class SnowflakeGenerator:
    def __init__(self, worker_id: int | None = None, process_id: int | None = None) -> None:
        self._worker = (worker_id if worker_id is not None else (os.getpid() >> 5)) & 0x1F
        self._process = (process_id if process_id is not None else os.getpid()) & 0x1F
        self._lock = threading.Lock()
        self._last_ms = -1
        self._increment = 0

    def next(self) -> int:
        with self._lock:
            now = int(time.time() * 1000)
            if now <= self._last_ms:
                # same millisecond (or the clock stepped back): keep ids strictly increasing
                now = self._last_ms
                self._increment = (self._increment + 1) & 0xFFF
                if self._increment == 0:
                    now += 1
            else:
                self._increment = 0
            self._last_ms = now
            return ((now - EPOCH_MS) << 22) | (self._worker << 17) | (self._process << 12) | self._increment


_generator = SnowflakeGenerator()


def new_id() -> int:
    return _generator.next()


def snowflake_time(snowflake: int) -> datetime:
    return datetime.fromtimestamp(((snowflake >> 22) + EPOCH_MS) / 1000, tz=timezone.utc)


def snowflake_from_time(moment: datetime) -> int:
    """The smallest snowflake at `moment`; used for date-range filters."""
    return max(0, int(moment.timestamp() * 1000) - EPOCH_MS) << 22
