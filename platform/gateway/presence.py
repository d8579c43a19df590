"""Presence, kept cheap: one Redis hash of current statuses, a per-user count of open
sessions, and changes fanned out on the ephemeral stream (never written to PostgreSQL)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import text

if TYPE_CHECKING:
    from .hub import GatewayHub

STATUSES = ("online", "idle", "dnd", "invisible", "offline")


def _keys(hub: GatewayHub) -> tuple[str, str]:
    return f"{hub.prefix}gw:presence", f"{hub.prefix}gw:online"


def _public(status: str) -> str:
    return "offline" if status == "invisible" else status


async def presences_of(hub: GatewayHub, user_ids: list[int]) -> list[dict[str, Any]]:
    if not user_ids:
        return []
    states, _ = _keys(hub)
    raw = await hub.redis.hmget(states, [str(u) for u in user_ids])
    out = []
    for uid, value in zip(user_ids, raw):
        if value is None:
            continue
        record = orjson.loads(value)
        status = _public(record["status"])
        if status != "offline":
            out.append({"user": {"id": str(uid)}, "status": status, "activities": record.get("activities", []),
                        "client_status": {"desktop": status}})
    return out


async def set_presence(hub: GatewayHub, user_id: int, status: str, activities: list[Any], *, connected: int = 0) -> None:
    """Records the status and announces it to the guilds the user is in. `connected` is +1 on
    a new session and -1 when one ends; the last session ending makes the user offline."""
    states, online = _keys(hub)
    if connected:
        count = await hub.redis.hincrby(online, str(user_id), connected)
        if count <= 0:
            await hub.redis.hdel(online, str(user_id))
            status, activities = "offline", []
        elif connected < 0:
            return  # another session of this user is still open
    previous = await hub.redis.hget(states, str(user_id))
    record = {"status": status, "activities": activities[:5], "since": int(time.time() * 1000)}
    await hub.redis.hset(states, str(user_id), orjson.dumps(record))
    if previous is not None and _public(orjson.loads(previous)["status"]) == _public(status) and not activities:
        return
    async with hub.platform.read() as conn:
        guild_ids = (await conn.execute(text("SELECT guild_id FROM members WHERE user_id = :u"), {"u": user_id})).scalars().all()
    if guild_ids:
        public = _public(status)
        await hub.publish_ephemeral({"type": "PRESENCE_UPDATE", "guild_ids": [str(g) for g in guild_ids], "data": {
            "user": {"id": str(user_id)}, "status": public, "activities": activities[:5] if public != "offline" else [],
            "client_status": {"desktop": public} if public != "offline" else {}}})
