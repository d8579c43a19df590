"""The runtime every action works with, and the transaction that carries a change's events.

Locking rule: an action opens one transaction with `platform.transaction()`, writes its rows
and `tx.emit(...)`s its events inside it; the events become visible to the publisher only when
that transaction commits, and the publisher is woken right after the commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from redis.asyncio import Redis
import orjson
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..core.config import Settings
from ..core.snowflake import new_id
from ..db.models import AuditLogEntry
from ..events.publisher import EventPublisher, notify_channel
from ..events.types import E
from ..services.objectstore import ObjectStore
from .authcache import AuthCache


_EMIT = text(
    """
    WITH e AS (INSERT INTO events (type, data, guild_id, channel_id, user_ids)
               VALUES (:type, CAST(:data AS jsonb), :guild_id, :channel_id, :user_ids) RETURNING 1)
    SELECT pg_notify(:channel, '') FROM e
    """
)

_EMIT_MANY = text(
    """
    WITH e AS (INSERT INTO events (type, data, guild_id)
               SELECT :type, CAST(x.d AS jsonb), :guild_id FROM unnest(CAST(:datas AS text[])) WITH ORDINALITY AS x(d, n)
               ORDER BY x.n RETURNING 1)
    SELECT pg_notify(:channel, '') FROM (SELECT 1 FROM e LIMIT 1) AS one
    """
)


@dataclass
class Tx:
    conn: AsyncConnection
    notify_channel: str
    events: int = 0

    async def emit(
        self,
        type: E,
        data: dict[str, Any],
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        user_ids: list[int] | None = None,
    ) -> None:
        """Writes an event row in this transaction. `user_ids` restricts the audience (a DM's
        recipients, one user's own read state); otherwise the audience is whoever can view
        `channel_id` (or any member of `guild_id`)."""
        await self.conn.execute(_EMIT, {"type": str(type), "data": orjson.dumps(data).decode(), "guild_id": guild_id,
                                        "channel_id": channel_id, "user_ids": user_ids, "channel": self.notify_channel})
        self.events += 1  # the NOTIFY reaches the leading publisher at commit, whichever process it is

    async def emit_many(self, type: E, datas: list[dict[str, Any]], *, guild_id: int | None = None) -> None:
        """Many events of one type to one guild's members in one statement (a society seeded with
        thousands of agents): the same rows as `emit` once per item, in order."""
        if not datas:
            return
        await self.conn.execute(_EMIT_MANY, {"type": str(type), "datas": [orjson.dumps(d).decode() for d in datas],
                                             "guild_id": guild_id, "channel": self.notify_channel})
        self.events += len(datas)

    async def audit(
        self,
        *,
        guild_id: int | None,
        user_id: int | None,
        action_type: int,
        target_id: int | None = None,
        changes: list[dict[str, Any]] | None = None,
        options: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> None:
        await self.conn.execute(
            insert(AuditLogEntry).values(
                id=new_id(), guild_id=guild_id, user_id=user_id, action_type=action_type, target_id=target_id,
                changes=changes, options=options, reason=reason,
            )
        )


@dataclass
class Platform:
    settings: Settings
    engine: AsyncEngine
    redis: Redis
    store: ObjectStore
    publisher: EventPublisher
    auth_cache: AuthCache = field(default_factory=AuthCache)

    @cached_property
    def notify_channel(self) -> str:
        return notify_channel(self.settings.database_schema)

    @cached_property
    def memory(self) -> Any:
        """The agents' memory store (Chroma), opened on first use: `townsquare.agents.memory.remember.Memories`."""
        from ...agents.memory.remember import open_memories  # heavy (Chroma, the embedder): only when needed

        return open_memories(self.settings, self.engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.engine.begin() as conn:
            tx = Tx(conn, self.notify_channel)
            yield tx
        if tx.events:
            self.publisher.wake()

    async def delete_objects(self, keys: list[str]) -> None:
        """Best effort after commit: a file left behind is garbage, a row without its file is a bug."""
        for key in keys:
            try:
                await self.store.delete(key)
            except Exception:  # noqa: BLE001 - the row is gone already; never fail the request for this
                pass

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """Autocommit: a read costs one round trip, not BEGIN + query + ROLLBACK."""
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn
