"""Full-text search over messages (PostgreSQL tsvector + GIN), in the shape of Discord's guild
message search, limited to channels the searcher can read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from ..core.errors import InvalidFormBody
from ..core.permissions import P
from .access import channel_access, guild_access, visible_channels
from .context import Platform
from .messages import check_readable, load_messages


@dataclass
class SearchQuery:
    content: str | None = None
    author_ids: list[int] = field(default_factory=list)
    channel_ids: list[int] = field(default_factory=list)
    mentions: list[int] = field(default_factory=list)
    has: list[str] = field(default_factory=list)  # "file", "image", "link", "embed"
    pinned: bool | None = None
    min_id: int | None = None
    max_id: int | None = None
    sort_order: str = "desc"
    offset: int = 0
    limit: int = 25


def _filters(q: SearchQuery, params: dict[str, Any]) -> list[str]:
    if q.content and "\x00" in q.content:
        raise InvalidFormBody.field("content", "BASE_TYPE_BAD_CHARACTER", "Text may not contain NUL characters.")
    where = ["m.channel_id = ANY(:readable)"]
    if q.content:
        where.append("m.search_vector @@ websearch_to_tsquery('simple', :content)")
        params["content"] = q.content
    if q.author_ids:
        where.append("m.author_id = ANY(:authors)")
        params["authors"] = q.author_ids
    if q.mentions:
        where.append("m.mentions && CAST(:mentions AS bigint[])")
        params["mentions"] = q.mentions
    if "file" in q.has:
        where.append("m.has_attachments")
    if "image" in q.has:
        where.append("EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id AND a.content_type LIKE 'image/%')")
    if "link" in q.has:
        where.append("m.content ~ 'https?://'")
    if "embed" in q.has:
        where.append("jsonb_array_length(m.embeds) > 0")
    if q.pinned is not None:
        where.append("m.pinned_at IS NOT NULL" if q.pinned else "m.pinned_at IS NULL")
    if q.min_id is not None:
        where.append("m.id > :min_id")
        params["min_id"] = q.min_id
    if q.max_id is not None:
        where.append("m.id < :max_id")
        params["max_id"] = q.max_id
    return where


async def _run(platform: Platform, conn: Any, user_id: int, readable: list[int], q: SearchQuery) -> dict[str, Any]:
    params: dict[str, Any] = {"readable": readable}
    where = " AND ".join(_filters(q, params))
    total = (await conn.execute(text(f"SELECT count(*) FROM (SELECT 1 FROM messages m WHERE {where} LIMIT 10000) x"), params)).scalar_one()
    order = "ASC" if q.sort_order == "asc" else "DESC"
    messages = await load_messages(conn, f"{where} AND m.id IN (SELECT m.id FROM messages m WHERE {where} ORDER BY m.id {order} "
                                          f"LIMIT :page OFFSET :offset)", {**params, "page": q.limit, "offset": q.offset},
                                   me=user_id, base_url=platform.settings.base_url, order=order, limit=q.limit)
    for m in messages:
        m["hit"] = True
    return {"doing_deep_historical_index": False, "total_results": total, "messages": [[m] for m in messages],
            "threads": [], "members": [], "analytics_id": None}


async def search_guild(platform: Platform, user_id: int, guild_id: int, q: SearchQuery) -> dict[str, Any]:
    async with platform.read() as conn:
        access = await guild_access(conn, user_id, guild_id)
        rows = await visible_channels(conn, access, user_id, needed=int(P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY))
        readable = [r.id for r, _ in rows]
        if q.channel_ids:
            readable = [c for c in readable if c in set(q.channel_ids)]
        return await _run(platform, conn, user_id, readable, q)


async def search_channel(platform: Platform, user_id: int, channel_id: int, q: SearchQuery) -> dict[str, Any]:
    """Discord's DM search route; works on any channel the user can read."""
    async with platform.read() as conn:
        access = await channel_access(conn, user_id, channel_id)
        check_readable(access)
        return await _run(platform, conn, user_id, [channel_id], q)


