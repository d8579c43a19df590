"""Reading a society's records for analysis: one read-only snapshot, rows in batches.

Everything of one scorecard or export is read inside one REPEATABLE READ, READ ONLY
transaction, so its parts agree with each other (an export's row counts are the database's at
one moment) while the society goes on writing. Large tables are walked with a server-side
cursor `batch` rows at a time: a 100,000-message window is never one list in memory.

A society's messages are those of its guild (channels and threads) and of the DMs and group
DMs an agent of the society is in (agents' DMs have no guild)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from ..actions.context import Platform
from ..core.errors import UnknownGuild
from .window import Window

DEFAULT_BATCH = 2000


class Reader:
    """Queries on one snapshot (an asyncpg connection inside a read-only transaction)."""

    def __init__(self, driver: Any, batch: int) -> None:
        self.driver, self.batch = driver, max(1, batch)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self.driver.fetch(sql, *args))

    async def value(self, sql: str, *args: Any) -> Any:
        return await self.driver.fetchval(sql, *args)

    async def batches(self, sql: str, *args: Any) -> AsyncIterator[Sequence[Any]]:
        """The query's rows, `batch` at a time, from a server-side cursor."""
        cursor = await self.driver.cursor(sql, *args)
        while True:
            rows = await cursor.fetch(self.batch)
            if not rows:
                return
            yield rows


@asynccontextmanager
async def snapshot(platform: Platform, batch: int | None = None) -> AsyncIterator[Reader]:
    async with platform.read() as conn:
        # the driver's own transaction and cursor: SQLAlchemy's async layer costs as much CPU
        # per row as the rest of the analysis (see db/raw.py); the autocommit connection has no
        # transaction of SQLAlchemy's pending, so this one is the only one
        driver = (await conn.get_raw_connection()).driver_connection
        async with driver.transaction(isolation="repeatable_read", readonly=True):
            yield Reader(driver, batch or platform.settings.analytics_batch_rows)


@dataclass
class Society:
    """Who is who in a guild, for the analysis: names, agents, the agents' DM channels."""

    guild_id: int
    name: str
    founded: float  # seconds (the guild's creation)
    names: dict[int, str] = field(default_factory=dict)  # every member (and every agent)
    agents: dict[int, str] = field(default_factory=dict)  # agent id -> persona name
    agent_states: dict[int, str] = field(default_factory=dict)
    bots: set[int] = field(default_factory=set)
    dm_channels: list[int] = field(default_factory=list)

    def name_of(self, user_id: int) -> str:
        return self.names.get(user_id) or str(user_id)


async def load_society(reader: Reader, guild_id: int) -> Society:
    guild = await reader.driver.fetchrow(
        "SELECT g.id, g.name, extract(epoch FROM g.created_at) AS founded FROM guilds g WHERE g.id = $1", guild_id)
    if guild is None:
        raise UnknownGuild()
    society = Society(guild_id, guild["name"], float(guild["founded"]))
    for r in await reader.fetch(
            "SELECT u.id, coalesce(m.nick, u.global_name, u.username) AS name, u.bot FROM members m JOIN users u ON u.id = m.user_id "
            "WHERE m.guild_id = $1", guild_id):
        society.names[r["id"]] = r["name"]
        if r["bot"]:
            society.bots.add(r["id"])
    for r in await reader.fetch("SELECT id, persona->>'name' AS name, state FROM agents WHERE guild_id = $1", guild_id):
        society.agents[r["id"]] = r["name"] or str(r["id"])
        society.names[r["id"]] = society.agents[r["id"]]
        society.agent_states[r["id"]] = r["state"]
        society.bots.add(r["id"])
    if society.agents:
        society.dm_channels = [r["id"] for r in await reader.fetch(
            "SELECT id FROM channels WHERE guild_id IS NULL AND recipients && $1::bigint[]", list(society.agents))]
    return society


# The society's messages in a window, in id order (the columns every consumer needs; edits
# count as the text now, deletions are gone).
MESSAGES = """
    SELECT id, channel_id, author_id, content, nonce, referenced_message_id, mentions
    FROM messages WHERE (guild_id = $1 OR channel_id = ANY($2::bigint[])) AND id >= $3 AND id < $4 ORDER BY id
"""


def message_args(society: Society, window: Window) -> tuple[Any, ...]:
    return (society.guild_id, society.dm_channels, window.since_id, window.until_id)
