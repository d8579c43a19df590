"""What the admin dashboard reads beyond the registry (`/api/v10/townsquare/dashboard/...`,
instance administrators only): the society's vital signs over a time window (with the quality
gate's rejections by reason), the agents' live activity and each one's last failure in words,
messages per channel over time, the processes' logs, and the effective configuration.

Time windows are id ranges: messages, LLM calls and turns have snowflake ids, so "since T" is
`id >= snowflake_from_time(T)` on the primary key (or the (guild_id, id) index), never a scan.

The live activity ("thinking", "speaking") is not stored in PostgreSQL: the agent worker sets a
short-lived Redis key per agent while a turn runs (`signal_activity`), and the dashboard merges
it with the registry's state. A worker that dies leaves nothing behind for long: the key expires
with the turn's time budget.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select, text, update

from ...agents.brain.routing import load_routing
from ..core.config import is_secret, mask
from ..core.errors import UnknownGuild
from ..core.metrics import GATE_PREFIX, GATE_REASONS
from ..core.logstore import LEVELS, decode, stream_key as log_stream_key
from ..core.snowflake import EPOCH_MS, snowflake_from_time
from ..db.models import TURN_FAILED, Society
from ..events.types import E
from . import agents as registry
from .audit import A
from .context import Platform
from .users import AuthUser

ACTIVITIES = ("thinking", "speaking")
SPEAKING_SECONDS = 5.0  # an agent shows as speaking this long after it posted
MEMORY_COUNT_SECONDS = 3.0  # the agents list waits this long for the counts, then shows the rest as unknown

# --- the live signal (written by the agent worker) ---


def activity_key(prefix: str, agent_id: int) -> str:
    return f"{prefix}agents:activity:{agent_id}"


async def signal_activity(redis: Any, prefix: str, agent_id: int, activity: str, seconds: float, channel_id: int | None = None) -> None:
    """The worker says what an agent is doing, for `seconds` at most."""
    value = f"{activity}|{time.time():.3f}|{channel_id or ''}"
    await redis.set(activity_key(prefix, agent_id), value, px=max(1, int(seconds * 1000)))


_CLEAR_THINKING = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 9) == 'thinking|' then return redis.call('DEL', KEYS[1]) end
return 0
"""


async def end_activity(redis: Any, prefix: str, agent_id: int) -> None:
    """A turn ended: "thinking" goes, a fresh "speaking" stays until it expires."""
    await redis.eval(_CLEAR_THINKING, 1, activity_key(prefix, agent_id))


async def read_activities(platform: Platform, agent_ids: list[int]) -> dict[int, dict[str, Any]]:
    if not agent_ids:
        return {}
    prefix = platform.settings.redis_prefix
    values = await platform.redis.mget([activity_key(prefix, a) for a in agent_ids])
    found: dict[int, dict[str, Any]] = {}
    for agent_id, raw in zip(agent_ids, values):
        if not raw:
            continue
        activity, _, rest = raw.decode().partition("|")
        since, _, channel = rest.partition("|")
        if activity in ACTIVITIES:
            found[agent_id] = {"activity": activity, "since": _iso_epoch(float(since or 0)), "channel_id": channel or None}
    return found


def _iso_epoch(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def live_status(agent: dict[str, Any], activity: dict[str, Any] | None) -> str:
    """paused / muted / resting from the registry win; an active agent is thinking, speaking or idle."""
    if agent["status"] != "active":
        return agent["status"]
    return activity["activity"] if activity else "idle"


# --- agents with their live status ---

_LAST_TURNS = text("""
    SELECT DISTINCT ON (agent_id) agent_id, id, trigger, outcome, channel_id, message_id, created_at
    FROM agent_turns WHERE agent_id = ANY(:ids) ORDER BY agent_id, id DESC
""")


# Each agent's last failed turn, through the partial index agent_turns_failures (the predicate is
# models.TURN_FAILED, so the planner may use it): one index probe per agent.
_LAST_FAILURES = text(f"""
    SELECT a.id AS agent_id, t.id, t.trigger, t.outcome, t.error, t.channel_id, t.created_at
    FROM unnest(CAST(:ids AS bigint[])) AS a(id)
    CROSS JOIN LATERAL (SELECT id, trigger, outcome, error, channel_id, created_at FROM agent_turns
                        WHERE agent_id = a.id AND ({TURN_FAILED}) ORDER BY id DESC LIMIT 1) t
""")


def failure_object(turn: Any) -> dict[str, Any]:
    """A failed turn for the dashboard: `error` is the worker's reason in words (None for turns
    recorded before reasons were, which the page describes by their outcome)."""
    return {"id": str(turn.id), "trigger": turn.trigger, "outcome": turn.outcome, "error": turn.error,
            "channel_id": _sid(turn.channel_id), "created_at": turn.created_at.isoformat()}


async def _memory_counts(platform: Platform, agent_ids: list[int]) -> dict[int, int | None]:
    """Every agent's memory size from one query (Memories.count_many: the store is asked only
    about agents whose own collection was never measured); None for all when the memory does
    not answer within the page's time budget (the page still shows)."""
    if not agent_ids:
        return {}
    try:
        counts = await asyncio.wait_for(platform.memory.count_many(agent_ids), timeout=MEMORY_COUNT_SECONDS)
    except Exception:  # noqa: BLE001 - a missing count must not break the list
        return dict.fromkeys(agent_ids)
    return {a: counts.get(a) for a in agent_ids}


async def agents_live(platform: Platform, me: AuthUser, guild_id: int | None, *, with_memory: bool = True,
                      after: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The registry's agents by id, each with `live_status`, `activity`, `last_turn`,
    `last_failure` (the last turn that failed, with why in words) and `memory_count`; a page of
    them with `after` / `limit` (the dashboard's list: its cost follows the page, not the society)."""
    agents = await registry.list_agents(platform, me, guild_id, after=after, limit=limit)
    ids = [int(a["id"]) for a in agents]
    activities = await read_activities(platform, ids)
    turns: dict[int, Any] = {}
    failures: dict[int, Any] = {}
    if ids:
        async with platform.read() as conn:
            turns = {r.agent_id: r for r in (await conn.execute(_LAST_TURNS, {"ids": ids})).all()}
            failures = {r.agent_id: r for r in (await conn.execute(_LAST_FAILURES, {"ids": ids})).all()}
    memory = await _memory_counts(platform, ids) if with_memory else {}
    for agent in agents:
        agent_id = int(agent["id"])
        agent["activity"] = activities.get(agent_id)
        agent["live_status"] = live_status(agent, activities.get(agent_id))
        turn = turns.get(agent_id)
        agent["last_turn"] = None if turn is None else {
            "id": str(turn.id), "trigger": turn.trigger, "outcome": turn.outcome, "channel_id": _sid(turn.channel_id),
            "message_id": _sid(turn.message_id), "created_at": turn.created_at.isoformat()}
        failure = failures.get(agent_id)
        agent["last_failure"] = None if failure is None else failure_object(failure)
        agent["memory_count"] = memory.get(agent_id)
    return agents


def _sid(value: int | None) -> str | None:
    return None if value is None else str(value)


# --- the society's vital signs ---


def _bucket_start(bucket_ms: int, now_ms: int, buckets: int) -> int:
    return (now_ms // bucket_ms - buckets + 1) * bucket_ms


_MESSAGES = text("""
    SELECT ((m.id >> 22) + :epoch) / :bucket AS b, count(*) AS n, count(a.id) AS agents
    FROM messages m LEFT JOIN agents a ON a.id = m.author_id
    WHERE m.id >= :low AND (CAST(:g AS bigint) IS NULL OR m.guild_id = :g)
    GROUP BY b
""")

_LLM = text("""
    SELECT ((id >> 22) + :epoch) / :bucket AS b, count(*) AS calls,
           avg(latency_ms) AS avg_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_ms,
           count(*) FILTER (WHERE outcome IN ('ok', 'cached', 'rejected')) AS answered,
           count(*) FILTER (WHERE outcome IN ('ok', 'cached', 'rejected') AND fallback_step > 0) AS fallbacks,
           count(*) FILTER (WHERE outcome IN ('error', 'timeout')) AS errors
    FROM llm_calls WHERE id >= :low AND (CAST(:g AS bigint) IS NULL OR guild_id = :g)
    GROUP BY b
""")

_LLM_TOTAL = text("""
    SELECT count(*) AS calls, avg(latency_ms) AS avg_ms,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_ms,
           count(*) FILTER (WHERE outcome IN ('ok', 'cached', 'rejected')) AS answered,
           count(*) FILTER (WHERE outcome IN ('ok', 'cached', 'rejected') AND fallback_step > 0) AS fallbacks,
           count(*) FILTER (WHERE outcome IN ('error', 'timeout')) AS errors,
           coalesce(sum(prompt_tokens + completion_tokens), 0) AS tokens
    FROM llm_calls WHERE id >= :low AND (CAST(:g AS bigint) IS NULL OR guild_id = :g)
""")

# Candidate replies the quality gate rejected, by reason (see core/metrics.gate_reason)
_GATE = text("""
    SELECT substr(error, :skip) AS reason, count(*) AS n FROM llm_calls
    WHERE id >= :low AND (CAST(:g AS bigint) IS NULL OR guild_id = :g) AND outcome = 'rejected' AND error LIKE 'gate:%'
    GROUP BY reason
""")

_TURNS = text("""
    SELECT outcome, count(*) AS n FROM agent_turns
    WHERE id >= :low AND (CAST(:g AS bigint) IS NULL OR guild_id = :g) GROUP BY outcome
""")


def _num(value: Any, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


async def _require_guild(conn: Any, guild_id: int | None) -> None:
    if guild_id is not None and (await conn.execute(text("SELECT 1 FROM guilds WHERE id = :g"), {"g": guild_id})).first() is None:
        raise UnknownGuild()


async def overview(platform: Platform, me: AuthUser, guild_id: int | None, minutes: int) -> dict[str, Any]:
    """Agents by live status, messages per minute, LLM latency and fallback rate, errors and
    moods, over the last `minutes` (one-minute buckets, oldest first)."""
    registry.require_admin(me)
    now = datetime.now(timezone.utc)
    now_ms = int(now.timestamp() * 1000)
    bucket_ms = 60_000
    start_ms = _bucket_start(bucket_ms, now_ms, minutes)
    low = snowflake_from_time(datetime.fromtimestamp(start_ms / 1000, timezone.utc))
    params = {"epoch": EPOCH_MS, "bucket": bucket_ms, "low": low, "g": guild_id}
    async with platform.read() as conn:
        await _require_guild(conn, guild_id)
        messages = {int(r.b): r for r in (await conn.execute(_MESSAGES, params)).all()}
        llm = {int(r.b): r for r in (await conn.execute(_LLM, params)).all()}
        total = (await conn.execute(_LLM_TOTAL, params)).one()
        turns = {r.outcome: int(r.n) for r in (await conn.execute(_TURNS, params)).all()}
        gate = (await conn.execute(_GATE, {"low": low, "g": guild_id, "skip": len(GATE_PREFIX) + 1})).all()
    series = []
    for i in range(minutes):
        b = start_ms // bucket_ms + i
        m, c = messages.get(b), llm.get(b)
        series.append({
            "t": datetime.fromtimestamp(b * bucket_ms / 1000, timezone.utc).isoformat(),
            "messages": int(m.n) if m else 0, "agent_messages": int(m.agents) if m else 0,
            "llm_calls": int(c.calls) if c else 0, "llm_avg_ms": _num(c.avg_ms) if c else None,
            "llm_p95_ms": _num(c.p95_ms) if c else None, "llm_errors": int(c.errors) if c else 0,
        })
    agents = await agents_live(platform, me, guild_id, with_memory=False)
    statuses: dict[str, int] = {}
    for agent in agents:
        statuses[agent["live_status"]] = statuses.get(agent["live_status"], 0) + 1
    message_total = sum(s["messages"] for s in series)
    answered = int(total.answered or 0)
    log_errors = await count_log_errors(platform, since=start_ms / 1000)
    return {
        "guild_id": str(guild_id) if guild_id is not None else None,
        "window_minutes": minutes, "generated_at": now.isoformat(),
        "agents": {"total": len(agents), "by_status": statuses},
        "messages": {"total": message_total, "per_minute": round(message_total / minutes, 2),
                     "agent_share": round(sum(s["agent_messages"] for s in series) / message_total, 3) if message_total else None},
        "llm": {"calls": int(total.calls or 0), "avg_ms": _num(total.avg_ms), "p50_ms": _num(total.p50_ms), "p95_ms": _num(total.p95_ms),
                "fallback_rate": round(int(total.fallbacks or 0) / answered, 3) if answered else None,
                "errors": int(total.errors or 0), "tokens": int(total.tokens or 0)},
        "turns": turns,
        "gate_rejections": gate_rejections(gate),
        "errors": {"llm": int(total.errors or 0), "turns": sum(n for k, n in turns.items() if k in ("error", "timeout")),
                   "logs": log_errors},
        "moods": [{"agent_id": a["id"], "name": a["name"], **{k: a["mood"].get(k) for k in ("valence", "arousal", "energy", "label")}}
                  for a in agents],
        "series": series,
    }


def gate_rejections(rows: list[Any]) -> dict[str, Any]:
    """{"total", "by_reason": [{"reason", "count"}]}: every known reason (zeros too, in the gate's
    order, so the panel's rows stay put), then any other reason a worker recorded, by count."""
    counts: dict[str, int] = {}
    for r in rows:
        reason = (r.reason or "").strip()[:40] or "other"
        counts[reason] = counts.get(reason, 0) + int(r.n)
    known = [{"reason": k, "count": counts.pop(k, 0)} for k in GATE_REASONS]
    others = sorted(({"reason": k, "count": n} for k, n in counts.items()), key=lambda x: (-x["count"], x["reason"]))
    by_reason = known + others
    return {"total": sum(x["count"] for x in by_reason), "by_reason": by_reason}


# --- channels over time ---

_CHANNEL_BUCKETS = text("""
    SELECT channel_id, ((id >> 22) + :epoch) / :bucket AS b, count(*) AS n
    FROM messages WHERE guild_id = :g AND id >= :low GROUP BY channel_id, b
""")


async def channel_activity(platform: Platform, me: AuthUser, guild_id: int, minutes: int, bucket_minutes: int) -> dict[str, Any]:
    """Messages per channel per time bucket (oldest first); threads count on their own line."""
    registry.require_admin(me)
    bucket_ms = bucket_minutes * 60_000
    buckets = max(1, -(-minutes // bucket_minutes))
    now_ms = int(time.time() * 1000)
    start_ms = _bucket_start(bucket_ms, now_ms, buckets)
    low = snowflake_from_time(datetime.fromtimestamp(start_ms / 1000, timezone.utc))
    async with platform.read() as conn:
        await _require_guild(conn, guild_id)
        rows = (await conn.execute(_CHANNEL_BUCKETS, {"epoch": EPOCH_MS, "bucket": bucket_ms, "low": low, "g": guild_id})).all()
        channels = (await conn.execute(text(
            "SELECT id, name, type, parent_id FROM channels WHERE guild_id = :g AND type IN (0, 5, 10, 11, 12) ORDER BY position, id"),
            {"g": guild_id})).all()
    counts: dict[int, list[int]] = {c.id: [0] * buckets for c in channels}
    first = start_ms // bucket_ms
    for r in rows:
        index = int(r.b) - first
        if r.channel_id in counts and 0 <= index < buckets:
            counts[r.channel_id][index] += int(r.n)
    return {
        "guild_id": str(guild_id), "bucket_minutes": bucket_minutes,
        "buckets": [datetime.fromtimestamp((first + i) * bucket_ms / 1000, timezone.utc).isoformat() for i in range(buckets)],
        "channels": sorted(({"id": str(c.id), "name": c.name, "type": c.type, "parent_id": _sid(c.parent_id),
                             "counts": counts[c.id], "total": sum(counts[c.id])} for c in channels),
                           key=lambda c: -c["total"]),
    }


# --- logs ---


def _stream_id(seconds: float) -> str:
    return str(max(0, int(seconds * 1000)))


async def query_logs(platform: Platform, me: AuthUser, *, level: str | None, logger: str | None, q: str | None,
                     since: datetime | None, until: datetime | None, before: str | None, limit: int,
                     scan: int = 5000) -> dict[str, Any]:
    """Newest first. `level` is a minimum; `logger` a name prefix; `q` a case-insensitive
    substring of the message (or traceback). At most `scan` records are read per request:
    `next_before` pages on from where the scan stopped (None when the range is exhausted)."""
    registry.require_admin(me)
    floor = LEVELS.index(level) if level else 0
    needle = q.lower() if q else None
    high = f"({before}" if before else (_stream_id(until.timestamp()) if until else "+")
    low = _stream_id(since.timestamp()) if since else "-"
    key = log_stream_key(platform.settings.redis_prefix)
    found: list[dict[str, Any]] = []
    scanned, last_id, exhausted = 0, None, False
    while len(found) < limit and scanned < scan:
        page = await platform.redis.xrevrange(key, max=high, min=low, count=min(500, scan - scanned))
        if not page:
            exhausted = True
            break
        for entry_id, fields in page:
            scanned += 1
            last_id = entry_id.decode()
            try:
                record = decode(entry_id, fields)
            except (KeyError, ValueError):
                continue
            if record.get("level") in LEVELS and LEVELS.index(record["level"]) < floor:
                continue
            if logger and not str(record.get("logger", "")).startswith(logger):
                continue
            if needle and needle not in str(record.get("msg", "")).lower() and needle not in str(record.get("exc", "")).lower():
                continue
            found.append(record)
            if len(found) >= limit:
                break
        high = f"({last_id}"
    for record in found:
        record["ts"] = _iso_epoch(float(record.get("ts") or 0))
    return {"records": found, "scanned": scanned, "next_before": None if exhausted else last_id,
            "stored": await platform.redis.xlen(key)}


async def count_log_errors(platform: Platform, *, since: float, scan: int = 2000) -> int:
    """Error and critical records since `since` (the newest `scan` records at most)."""
    key = log_stream_key(platform.settings.redis_prefix)
    page = await platform.redis.xrevrange(key, max="+", min=_stream_id(since), count=scan)
    errors = 0
    for entry_id, fields in page:
        try:
            if decode(entry_id, fields).get("level") in ("error", "critical"):
                errors += 1
        except (KeyError, ValueError):
            continue
    return errors


# --- configuration ---

# What each group of settings is about, for the configuration panel (name prefixes, in order).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("scheduler", ("sim_", "worker_", "turn_", "agent_", "reply_", "context_", "chain_", "channel_budget", "revive_",
                   "social_", "reaction_", "thread_", "outreach_", "founding_", "max_society")),
    ("model", ("ollama_", "model_", "models_", "routing_", "interview_")),
    ("memory", ("chroma_", "memory_", "fact_", "graph_", "records_")),
    ("services", ("database_", "redis_", "s3_", "data_dir", "host", "port", "public_url", "event_", "gateway_")),
    ("limits", ("max_", "rate_limit")),
    ("operations", ("backup_", "log_", "ready_", "metrics_", "secret_key", "upload_key", "society")),
)


def _group(name: str) -> str:
    for group, prefixes in GROUPS:
        if any(name == p or name.startswith(p) for p in prefixes):
            return group
    return "other"


def _routing(platform: Platform) -> dict[str, Any]:
    settings = platform.settings
    host = settings.ollama_host or f"http://127.0.0.1:{settings.model_port}"
    try:
        routing = load_routing(settings.routing_file, host)
    except Exception as exc:  # noqa: BLE001 - a broken file is shown, not raised
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}", "file": str(settings.routing_file)}
    data = routing.model_dump(mode="json")
    for backend in data["backends"].values():
        backend["host"] = mask(backend["host"])  # api keys live in the environment: only their variable's name is here
    data["file"] = str(settings.routing_file) if settings.routing_file else None
    return data


async def configuration(platform: Platform, me: AuthUser) -> dict[str, Any]:
    """The settings this server runs with (secrets masked), the model routing, and what can be
    changed at run time: each society's pause switch and revival topics (the workers pick
    changes up from the event stream). Every other setting comes from the environment and
    takes a restart."""
    registry.require_admin(me)
    fields = type(platform.settings).model_fields
    values = platform.settings.redacted()
    settings = [{"name": k, "env": f"TOWNSQUARE_{k.upper()}", "value": v, "group": _group(k), "secret": is_secret(fields[k])}
                for k, v in values.items()]
    async with platform.read() as conn:
        societies = [registry.society_object(r) for r in (await conn.execute(select(Society).order_by(Society.guild_id))).all()]
    return {"settings": settings, "routing": _routing(platform), "societies": societies,
            "editable": {"society": ["paused", "revival_topics"], "agent": ["persona", "state"]}}


async def do_update_society(platform: Platform, me: AuthUser, guild_id: int, revival_topics: list[str],
                            reason: str | None) -> dict[str, Any]:
    """Replaces a society's revival topics (what agents bring up in a quiet channel)."""
    registry.require_admin(me)
    async with platform.transaction() as tx:
        before = (await tx.conn.execute(select(Society.revival_topics).where(Society.guild_id == guild_id))).first()
        if before is None:
            raise UnknownGuild()
        row = (await tx.conn.execute(update(Society).where(Society.guild_id == guild_id).values(
            revival_topics=revival_topics, updated_at=func.now()).returning(Society))).one()
        obj = registry.society_object(row)
        await tx.audit(guild_id=guild_id, user_id=me.id, action_type=A.SOCIETY_UPDATE, target_id=guild_id,
                       changes=[{"key": "revival_topics", "old_value": before[0], "new_value": revival_topics}], reason=reason)
        await tx.emit(E.SOCIETY_UPDATE, obj, guild_id=guild_id)
    return obj

