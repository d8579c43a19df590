"""Publishes the event log to a Redis stream in a commit-safe order.

Writers insert event rows inside their own transaction (`xid` defaults to the writer's
`pg_current_xact_id()`); nothing is published before commit. The publisher assigns each event a
dense `position` and XADDs it with stream id `<position>-1`.

Why positions never skip an event that commits late: an event is only taken when its writer's
xid is below `pg_snapshot_xmin(pg_current_snapshot())`, i.e. when every transaction that could
still commit with an xid at or below it has finished. Events are taken in (xid, id) order, so
any event that becomes visible later has a larger xid than everything already positioned.

Several server instances may run a publisher: a PostgreSQL session advisory lock makes one
publish at a time, and it holds the lock across both the position UPDATE and the XADD so the
stream stays in position order. If a publisher died between the two, the next one re-adds the
missing positions from PostgreSQL before publishing new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
import logging
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

def lock_key(schema: str | None) -> int:
    """The advisory lock of one event log: one per schema, so that separate installations
    (or test sessions) sharing a database do not wait for each other."""
    return 0x7473_6576_0000_0000 | zlib.crc32((schema or "public").encode())
BATCH = 500

_TAKE = text(
    """
    SELECT id, type, guild_id, channel_id, user_ids, data, created_at FROM events
    WHERE position IS NULL AND xid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY xid, id LIMIT :limit
    """
)
_LAST_POSITION = text("SELECT coalesce(max(position), 0) FROM events")
_ASSIGN = text(
    """
    UPDATE events SET position = v.position
    FROM unnest(CAST(:ids AS bigint[]), CAST(:positions AS bigint[])) AS v(id, position)
    WHERE events.id = v.id
    """
)
_SINCE = text(
    "SELECT id, type, guild_id, channel_id, user_ids, data, created_at, position FROM events "
    "WHERE position > :after AND position <= :upto ORDER BY position LIMIT :limit"
)


def stream_key(prefix: str) -> str:
    return f"{prefix}events"


def encode_entry(position: int, row: Any) -> dict[str, bytes]:
    """One stream entry; the format is documented in docs/events.md."""
    envelope = {
        "position": position,
        "type": row.type,
        "guild_id": str(row.guild_id) if row.guild_id is not None else None,
        "channel_id": str(row.channel_id) if row.channel_id is not None else None,
        "user_ids": [str(u) for u in row.user_ids] if row.user_ids else None,
        "created_at": row.created_at.isoformat(),
        "data": row.data,
    }
    return {"type": row.type.encode(), "event": orjson.dumps(envelope)}


def decode_entry(fields: dict[bytes, bytes]) -> dict[str, Any]:
    return orjson.loads(fields[b"event"])


class EventPublisher:
    def __init__(self, engine: AsyncEngine, redis: Redis, *, prefix: str, maxlen: int, poll_seconds: float,
                 schema: str | None = None) -> None:
        """`engine` is the publisher's own (one connection): its lock session and its queries
        stay apart from the request pool."""
        self._engine = engine
        self._lock = lock_key(schema)
        self._redis = redis
        self._key = stream_key(prefix)
        self._maxlen = maxlen
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def wake(self) -> None:
        """Called after a commit that wrote events: publish now instead of at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-publisher")

    async def stop(self) -> None:
        """Stops the loop, publishes what committed before shutdown, closes the engine."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.publish_pending()
        await self._engine.dispose()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
            self._wake.clear()
            try:
                await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event publish failed; retrying")
                await asyncio.sleep(min(self._poll, 1.0))

    async def publish_pending(self) -> int:
        """Positions and publishes every event that is safe to publish; returns how many."""
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self._lock})
            await conn.commit()
            try:
                total = await self._publish_locked(conn)
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.rollback()
                raise
            finally:
                try:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._lock})
                    await conn.commit()
                except Exception:  # noqa: BLE001 - a dead session releases its lock when closed
                    await conn.invalidate()
        self.published += total
        return total

    async def _publish_locked(self, conn: Any) -> int:
        total = 0
        last = (await conn.execute(_LAST_POSITION)).scalar_one()
        await self._repair_stream(conn, last)
        while True:
            rows = (await conn.execute(_TAKE, {"limit": BATCH})).all()
            if not rows:
                await conn.commit()
                return total
            positions = list(range(last + 1, last + 1 + len(rows)))
            await conn.execute(_ASSIGN, {"ids": [r.id for r in rows], "positions": positions})
            await conn.commit()
            await self._xadd(zip(positions, rows))
            last = positions[-1]
            total += len(rows)
            if len(rows) < BATCH:
                return total

    async def _xadd(self, entries: Any) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for position, row in entries:
            pipe.xadd(self._key, encode_entry(position, row), id=f"{position}-1", maxlen=self._maxlen, approximate=True)
        await pipe.execute()

    async def _repair_stream(self, conn: Any, last_position: int) -> None:
        """Re-adds positions that PostgreSQL has but the stream lacks (a publisher died
        between commit and XADD, or Redis lost its data)."""
        top = await self._redis.xrevrange(self._key, count=1)
        in_stream = int(top[0][0].split(b"-")[0]) if top else 0
        if in_stream >= last_position:
            return
        # After a Redis data loss only the recent window is worth re-adding; older history is
        # served from PostgreSQL by the consumers' replay.
        after = max(in_stream, last_position - self._maxlen)
        while after < last_position:
            rows = (await conn.execute(_SINCE, {"after": after, "upto": last_position, "limit": BATCH})).all()
            if not rows:
                break
            try:
                await self._xadd((r.position, r) for r in rows)
            except ResponseError:
                log.warning("event stream is ahead of the database (restored backup?)")
                return
            after = rows[-1].position
        await conn.commit()
