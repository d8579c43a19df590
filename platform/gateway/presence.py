"""Presence, kept cheap: one Redis hash of current statuses, a per-user count of open gateway
sessions, and changes fanned out on the ephemeral stream (never written to PostgreSQL).

Two writers share one code path, `write_presences`:
- the gateway, for people and bots with sessions: a record lives as long as its sessions;
- the agent worker, for agents (who act through REST and hold no session): a record is a
  *lease* with an `until` (ms) that the worker renews; one it stops renewing (a crashed worker,
  a deleted agent) reads as offline once it expires. A gateway session of the same user wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .hub import ephemeral_key

if TYPE_CHECKING:
    from .hub import GatewayHub

STATUSES = ("online", "idle", "dnd", "invisible", "offline")
MAX_ACTIVITIES = 5

Reader = Callable[[], AbstractAsyncContextManager[AsyncConnection]]

# One atomic step for a batch, so a lease never overwrites a session that opened meanwhile.
# KEYS: statuses hash, session counts hash, leases zset (user -> until ms).
# ARGV: now_ms, sweep (1: drop expired leases first), then per write: user, session delta,
# until ('' unless a lease), record ('' deletes: offline). Returns triples: user, previous, written.
_SCRIPT = """
local out = {}
if ARGV[2] == '1' then
  for _, uid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])) do
    local prev = redis.call('HGET', KEYS[1], uid)
    redis.call('HDEL', KEYS[1], uid)
    redis.call('ZREM', KEYS[3], uid)
    table.insert(out, uid); table.insert(out, prev or ''); table.insert(out, '')
  end
end
for i = 3, #ARGV, 4 do
  local uid, delta, lease, record = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local skip = false
  if delta ~= 0 then
    local count = redis.call('HINCRBY', KEYS[2], uid, delta)
    if count <= 0 then
      redis.call('HDEL', KEYS[2], uid)
      record = ''  -- the last session ended
    elseif delta < 0 then
      skip = true  -- another session of this user is still open
    end
  elseif lease ~= '' then
    skip = tonumber(redis.call('HGET', KEYS[2], uid) or '0') > 0  -- a live session wins over a lease
  end
  if not skip then
    local prev = redis.call('HGET', KEYS[1], uid)
    if record == '' then redis.call('HDEL', KEYS[1], uid) else redis.call('HSET', KEYS[1], uid, record) end
    if lease ~= '' and record ~= '' then redis.call('ZADD', KEYS[3], lease, uid) else redis.call('ZREM', KEYS[3], uid) end
    table.insert(out, uid); table.insert(out, prev or ''); table.insert(out, record)
  end
end
return out
"""


@dataclass(frozen=True, slots=True)
class PresenceWrite:
    user_id: int
    status: str
    activities: list[Any] = field(default_factory=list)
    until: int | None = None  # ms since the epoch: a lease (the agent worker); None: held by sessions
    sessions: int = 0  # +1 when a gateway session opens, -1 when one ends


def _keys(prefix: str) -> list[str]:
    return [f"{prefix}gw:presence", f"{prefix}gw:online", f"{prefix}gw:leases"]


def _public(status: str) -> str:
    return "offline" if status == "invisible" else status


def _now_ms() -> int:
    return int(time.time() * 1000)


def public_view(record: dict[str, Any] | None, now_ms: int | None) -> tuple[str, list[Any]]:
    """What others see: (status, activities). An expired lease is offline; `now_ms=None` ignores
    expiry (what clients were last told)."""
    if record is None or (now_ms is not None and record.get("until") is not None and record["until"] <= now_ms):
        return "offline", []
    status = _public(record["status"])
    return (status, record.get("activities") or []) if status != "offline" else ("offline", [])


def _decode(raw: bytes | str | None) -> dict[str, Any] | None:
    return orjson.loads(raw) if raw else None


def presence_object(user_id: int, status: str, activities: list[Any]) -> dict[str, Any]:
    return {"user": {"id": str(user_id)}, "status": status, "activities": activities,
            "client_status": {"desktop": status} if status != "offline" else {}}


async def presences_of(hub: GatewayHub, user_ids: list[int], *, now_ms: int | None = None) -> list[dict[str, Any]]:
    """The presences of those users who are not offline (expired leases are offline)."""
    if not user_ids:
        return []
    raw = await hub.redis.hmget(_keys(hub.prefix)[0], [str(u) for u in user_ids])
    now = _now_ms() if now_ms is None else now_ms
    out = []
    for uid, value in zip(user_ids, raw):
        status, activities = public_view(_decode(value), now)
        if status != "offline":
            out.append(presence_object(uid, status, activities))
    return out


async def write_presences(redis: Any, prefix: str, read: Reader, writes: Iterable[PresenceWrite], *,
                          now_ms: int | None = None, sweep: bool = False,
                          known_guilds: dict[int, list[str]] | None = None) -> list[dict[str, Any]]:
    """Records presences in one atomic Redis step (`sweep` also drops expired leases) and
    publishes a PRESENCE_UPDATE to the guilds of each user whose public status or activities
    changed; returns those updates. `read` opens a database connection for the users' guild
    ids, unless `known_guilds` has every changed user's."""
    now = _now_ms() if now_ms is None else now_ms
    args: list[Any] = [now, 1 if sweep else 0]
    for w in writes:
        record = b"" if w.status == "offline" else orjson.dumps(
            {"status": w.status, "activities": w.activities[:MAX_ACTIVITIES], "since": now,
             **({"until": w.until} if w.until is not None else {})})
        args += [w.user_id, w.sessions, "" if w.until is None else w.until, record]
    if len(args) == 2 and not sweep:
        return []
    reply = await redis.eval(_SCRIPT, 3, *_keys(prefix), *args)
    first: dict[int, dict[str, Any] | None] = {}
    final: dict[int, dict[str, Any] | None] = {}
    for i in range(0, len(reply), 3):
        uid = int(reply[i])
        first.setdefault(uid, _decode(reply[i + 1]))  # a swept then renewed lease: its state before both
        final[uid] = _decode(reply[i + 2])
    changed: dict[int, tuple[str, list[Any]]] = {}
    for uid, record in final.items():
        after = public_view(record, None)
        # compared with what connected clients were told and with what a client loading now saw
        if after != public_view(first[uid], None) or after != public_view(first[uid], now):
            changed[uid] = after
    if not changed:
        return []
    guilds: dict[int, list[str]] = {}
    if known_guilds is not None and all(uid in known_guilds for uid in changed):
        guilds = {uid: known_guilds[uid] for uid in changed if known_guilds[uid]}
    else:
        async with read() as conn:
            rows = (await conn.execute(text("SELECT user_id, guild_id FROM members WHERE user_id = ANY(:u)"),
                                       {"u": list(changed)})).all()
        for row in rows:
            guilds.setdefault(row.user_id, []).append(str(row.guild_id))
    updates = [presence_object(uid, status, activities) for uid, (status, activities) in changed.items() if uid in guilds]
    if updates:
        async with redis.pipeline(transaction=False) as pipe:
            for update in updates:
                env = {"type": "PRESENCE_UPDATE", "guild_ids": guilds[int(update["user"]["id"])], "data": update}
                pipe.xadd(ephemeral_key(prefix), {"event": orjson.dumps(env)}, maxlen=10_000, approximate=True)
            await pipe.execute()
    return updates


async def set_presence(hub: GatewayHub, user_id: int, status: str, activities: list[Any], *, connected: int = 0,
                       guild_ids: Iterable[int] | None = None) -> None:
    """A gateway session's presence. `connected` is +1 on a new session and -1 when one ends;
    the last session ending makes the user offline. `guild_ids`: the user's guilds, when the
    caller knows them (a session that just started: no query then)."""
    known = {user_id: [str(g) for g in sorted(guild_ids)]} if guild_ids is not None else None
    await write_presences(hub.redis, hub.prefix, hub.platform.read,
                          [PresenceWrite(user_id, status, activities, sessions=connected)], known_guilds=known)
