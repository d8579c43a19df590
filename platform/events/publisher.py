"""Publishes the event log to a Redis stream in a commit-safe order.

Writers insert event rows inside their own transaction (`xid` defaults to the writer's
`pg_current_xact_id()`) and NOTIFY the publisher in the same transaction, so nothing is
announced before commit. The publisher gives each event a dense `position` and XADDs it with
stream id `<position>-1`.

Why positions never skip an event that commits late: an event is only taken when its writer's
xid is below `pg_snapshot_xmin(pg_current_snapshot())`, i.e. when every transaction that could
still commit with an xid at or below it has finished. Events are taken in (xid, id) order, so
any event that becomes visible later has a larger xid than everything already positioned.

Every server process runs a publisher, but only the leader publishes: the one holding a
PostgreSQL session advisory lock (one per schema) on its own connection. It keeps the last
position in memory, wakes on NOTIFY (commits of any process) or on a short poll, and positions
and fetches a batch in one statement. If its connection dies the lock goes with it and another
process (or this one, reconnecting) takes over; a new leader first re-adds from PostgreSQL what
the stream lacks (a leader that died between its commit and its XADD, or a Redis that lost data).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

BATCH = 500

_TAKE = """
WITH next AS (
    SELECT id, row_number() OVER (ORDER BY xid, id) AS n FROM (
        SELECT id, xid FROM events
        WHERE position IS NULL AND xid < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY xid, id LIMIT $2) s
)
UPDATE events e SET position = $1 + next.n FROM next WHERE e.id = next.id
RETURNING e.position, e.type, e.guild_id, e.channel_id, e.user_ids, e.data, e.created_at
"""
_SINCE = ("SELECT position, type, guild_id, channel_id, user_ids, data, created_at FROM events "
          "WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3")


def lock_key(schema: str | None) -> int:
    """The advisory lock of one event log: one per schema, so that separate installations
    (or test sessions) sharing a database do not wait for each other."""
    return 0x7473_6576_0000_0000 | zlib.crc32((schema or "public").encode())


def notify_channel(schema: str | None) -> str:
    return f"ts_events_{zlib.crc32((schema or 'public').encode()):x}"


def stream_key(prefix: str) -> str:
    return f"{prefix}events"


def encode_entry(position: int, row: Any) -> dict[str, bytes]:
    """One stream entry; the format is documented in docs/events.md."""
    data = row["data"]
    envelope = {
        "position": position,
        "type": row["type"],
        "guild_id": str(row["guild_id"]) if row["guild_id"] is not None else None,
        "channel_id": str(row["channel_id"]) if row["channel_id"] is not None else None,
        "user_ids": [str(u) for u in row["user_ids"]] if row["user_ids"] else None,
        "created_at": row["created_at"].isoformat(),
        "data": orjson.loads(data) if isinstance(data, str) else data,
    }
    return {"type": row["type"].encode(), "event": orjson.dumps(envelope)}


def decode_entry(fields: dict[bytes, bytes]) -> dict[str, Any]:
    return orjson.loads(fields[b"event"])


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class EventPublisher:
    def __init__(self, database_url: str, redis: Redis, *, prefix: str, maxlen: int, poll_seconds: float,
                 schema: str | None = None) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._schema = schema
        self._redis = redis
        self._key = stream_key(prefix)
        self._maxlen = maxlen
        self._poll = poll_seconds
        self._lock = lock_key(schema)
        self._channel = notify_channel(schema)
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self.leader = False
        self.last_position = 0
        self.published = 0
        self.cycles = 0  # publish rounds run while leader (tests watch it)

    def wake(self) -> None:
        """Called after a local commit that wrote events: publish now, not at the next poll
        (a standby ignores it: the leader hears the commit's NOTIFY)."""
        if self.leader:
            self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-publisher")

    async def stop(self) -> None:
        """A leader publishes what committed before shutdown, then lets go of its lock. Only
        the publisher's own task ever touches its connection."""
        self._stopping = True
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - stuck or failed: cut it off
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task
            self._task = None
        await self._close()

    async def _close(self) -> None:
        self.leader = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
            self._conn = None

    async def _connect(self) -> asyncpg.Connection:
        settings = {"application_name": "townsquare-publisher", "jit": "off"}
        if self._schema:
            settings["search_path"] = self._schema
        return await asyncpg.connect(self._dsn, server_settings=settings)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                self._conn = await self._connect()
                while not await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock):
                    if self._stopping:
                        return
                    self._wake.clear()  # local commits wake a leader; a standby just waits its turn
                    await self._sleep(max(self._poll * 4, 0.5))
                await self._conn.add_listener(self._channel, self._on_notify)
                self.last_position = await self._conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
                self.leader = True
                await self._repair_stream()
                while True:
                    await self._sleep(self._poll)
                    self._wake.clear()
                    await self._publish()
                    if self._stopping:
                        return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event publisher failed; reconnecting")
                await self._close()
                await asyncio.sleep(0.5)

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        """Until woken (a commit, a NOTIFY, stop()) or `seconds` pass."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _publish(self) -> int:
        """Positions and publishes every event that is safe to publish; returns how many."""
        assert self._conn is not None
        total = 0
        self.cycles += 1
        while True:
            rows = sorted(await self._conn.fetch(_TAKE, self.last_position, BATCH), key=lambda r: r["position"])
            if not rows:
                return total
            await self._xadd((r["position"], r) for r in rows)
            self.last_position = rows[-1]["position"]
            total += len(rows)
            self.published += len(rows)
            if len(rows) < BATCH:
                return total

    async def _xadd(self, entries: Any) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for position, row in entries:
            pipe.xadd(self._key, encode_entry(position, row), id=f"{position}-1", maxlen=self._maxlen, approximate=True)
        await pipe.execute()

    async def _repair_stream(self) -> None:
        """Re-adds positions that PostgreSQL has but the stream lacks."""
        assert self._conn is not None
        top = await self._redis.xrevrange(self._key, count=1)
        in_stream = int(top[0][0].split(b"-")[0]) if top else 0
        after = max(in_stream, self.last_position - self._maxlen)  # older history is replayed from PostgreSQL
        while after < self.last_position:
            rows = await self._conn.fetch(_SINCE, after, self.last_position, BATCH)
            if not rows:
                break
            try:
                await self._xadd((r["position"], r) for r in rows)
            except ResponseError:
                log.warning("event stream is ahead of the database (restored backup?)")
                return
            after = rows[-1]["position"]
