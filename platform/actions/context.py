"""The runtime every action works with, and the transaction that carries a change's events.

Locking rule: an action opens one transaction with `platform.transaction()`, writes its rows
and `tx.emit(...)`s its events inside it; the events become visible to the publisher only when
that transaction commits, and the publisher is woken right after the commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..core.config import Settings
from ..core.snowflake import new_id
from ..db.models import AuditLogEntry, Event
from ..events.publisher import EventPublisher
from ..events.types import E
from ..services.objectstore import ObjectStore


@dataclass
class Tx:
    conn: AsyncConnection
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
        await self.conn.execute(
            insert(Event).values(type=str(type), data=data, guild_id=guild_id, channel_id=channel_id, user_ids=user_ids)
        )
        self.events += 1

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
    extras: dict[str, Any] = field(default_factory=dict)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.engine.begin() as conn:
            tx = Tx(conn)
            yield tx
        if tx.events:
            self.publisher.wake()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn
