"""The society's social graph (`/api/v10/townsquare/graph`, instance administrators only).

The graph is computed from the `relationships` rows the worker keeps, the guild's members and
the reactions their messages received (agents/society/graph.py does the maths). The live view
is computed on each request; snapshots are taken by the rq job `snapshot_graph` (on the
worker's schedule, or on demand through `POST .../snapshots`) and kept in `graph_snapshots` as
the dashboard's timeline. Each snapshot warm-starts its layout and community labels from the
one before, so the timeline moves only where the society changed.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import BigInteger, DateTime, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB

from ...agents.society.graph import Member, Previous, Snapshot, Tie, analyse
from ..core.errors import InvalidFormBody, NotFound, UnknownGuild, UnknownMember
from ..core.snowflake import MAX_SNOWFLAKE, new_id
from ..db.models import Guild, GraphSnapshot, Member as MemberRow, Relationship, Society
from . import shapes
from .agents import require_admin
from .context import Platform

SNAPSHOT_JOB = "townsquare.worker.jobs.graph.snapshot_graph"
REASONS = ("schedule", "manual")
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # rq's ids are uuid4 hex strings


class UnknownSnapshot(NotFound):
    code, message = 10102, "Unknown Graph Snapshot"  # Townsquare extension


class UnknownJob(NotFound):
    code, message = 10103, "Unknown Job"  # Townsquare extension


_MEMBERS = text("""
    SELECT u.id, u.username, u.global_name, m.nick, u.bot, a.id IS NOT NULL AS agent, a.persona->>'name' AS agent_name
    FROM members m JOIN users u ON u.id = m.user_id
    LEFT JOIN agents a ON a.id = m.user_id AND a.guild_id = m.guild_id
    WHERE m.guild_id = :g ORDER BY u.id
""")

# reactions each author's messages received from others (self-reactions say nothing of standing)
_REACTIONS = text("""
    SELECT m.author_id, count(*) AS n FROM reactions r JOIN messages m ON m.id = r.message_id
    WHERE m.guild_id = :g AND r.user_id <> m.author_id GROUP BY m.author_id
""")


async def _require_guild(conn: Any, guild_id: int) -> None:
    if (await conn.execute(select(Guild.id).where(Guild.id == guild_id))).first() is None:
        raise UnknownGuild()


async def _inputs(conn: Any, guild_id: int) -> tuple[list[Member], list[Tie], dict[int, int], Previous]:
    members = [Member(r.id, r.agent_name or r.nick or r.global_name or r.username, bool(r.bot), bool(r.agent))
               for r in (await conn.execute(_MEMBERS, {"g": guild_id})).all()]
    rows = (await conn.execute(select(Relationship).where(Relationship.guild_id == guild_id))).all()
    ties = [Tie(r.source_id, r.target_id, r.affinity, r.familiarity, r.trust, r.interactions, r.rating) for r in rows]
    reactions = {r.author_id: int(r.n) for r in (await conn.execute(_REACTIONS, {"g": guild_id})).all()}
    last = (await conn.execute(select(GraphSnapshot.graph).where(GraphSnapshot.guild_id == guild_id)
                               .order_by(GraphSnapshot.id.desc()).limit(1))).scalar()
    return members, ties, reactions, Previous.from_graph(last)


async def compute(platform: Platform, guild_id: int) -> Snapshot:
    async with platform.read() as conn:
        await _require_guild(conn, guild_id)
        members, ties, reactions, previous = await _inputs(conn, guild_id)
    # CPU-bound (tens to hundreds of ms for a large society): keep the event loop serving
    return await asyncio.to_thread(analyse, members, ties, reactions, previous)


def _full(*, id: int | None, guild_id: int, reason: str, created_at: datetime, graph: dict[str, Any],
          metrics: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(id) if id is not None else None, "guild_id": str(guild_id), "reason": reason,
            "created_at": shapes.iso(created_at), "nodes": graph["nodes"], "edges": graph["edges"], "metrics": metrics}


def _summary(row: Any) -> dict[str, Any]:
    """A timeline entry: the metrics without the communities' member lists (the full snapshot has them)."""
    metrics = {k: v for k, v in row.metrics.items() if k != "communities"}
    metrics["community_sizes"] = [c["size"] for c in row.metrics.get("communities", [])]
    return {"id": str(row.id), "guild_id": str(row.guild_id), "reason": row.reason, "created_at": shapes.iso(row.created_at),
            "metrics": metrics}


async def current_graph(platform: Platform, me: Any, guild_id: int) -> dict[str, Any]:
    """The graph now, computed live (reason `live`, no id)."""
    require_admin(me)
    snap = await compute(platform, guild_id)
    return _full(id=None, guild_id=guild_id, reason="live", created_at=datetime.now(timezone.utc), graph=snap.graph,
                 metrics=snap.metrics)


# --- snapshots (taken by the rq job) ---


async def take_snapshot(platform: Platform, guild_id: int, reason: str) -> dict[str, Any]:
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {REASONS}")
    snap = await compute(platform, guild_id)
    async with platform.transaction() as tx:
        row = (await tx.conn.execute(insert(GraphSnapshot).values(
            id=new_id(), guild_id=guild_id, reason=reason, graph=snap.graph, metrics=snap.metrics,
        ).returning(GraphSnapshot))).one()
    return _summary(row)


async def take_snapshots(platform: Platform, guild_id: int | None, reason: str) -> list[dict[str, Any]]:
    """One guild, or (None) every society."""
    if guild_id is not None:
        return [await take_snapshot(platform, guild_id, reason)]
    async with platform.read() as conn:
        guilds = (await conn.execute(select(Society.guild_id).order_by(Society.guild_id))).scalars().all()
    taken = []
    for g in guilds:
        try:
            taken.append(await take_snapshot(platform, g, reason))
        except UnknownGuild:
            pass  # deleted meanwhile
    return taken


async def prune_snapshots(platform: Platform, keep_days: float, keep_max: int) -> int:
    """Drops snapshots older than `keep_days`, and beyond the newest `keep_max` of each guild."""
    async with platform.transaction() as tx:
        old = (await tx.conn.execute(text("DELETE FROM graph_snapshots WHERE created_at < now() - make_interval(secs => :s)"),
                                     {"s": keep_days * 86400})).rowcount
        extra = (await tx.conn.execute(text("""
            DELETE FROM graph_snapshots WHERE id IN (
                SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY guild_id ORDER BY id DESC) AS rn
                                FROM graph_snapshots) ranked WHERE rn > :keep)
        """), {"keep": keep_max})).rowcount
    return old + extra


async def list_snapshots(platform: Platform, me: Any, guild_id: int, before: int | None, limit: int) -> list[dict[str, Any]]:
    """Newest first; `before` pages back (Discord style)."""
    require_admin(me)
    async with platform.read() as conn:
        await _require_guild(conn, guild_id)
        query = select(GraphSnapshot.id, GraphSnapshot.guild_id, GraphSnapshot.reason, GraphSnapshot.created_at,
                       GraphSnapshot.metrics).where(GraphSnapshot.guild_id == guild_id)
        if before is not None:
            query = query.where(GraphSnapshot.id < before)
        rows = (await conn.execute(query.order_by(GraphSnapshot.id.desc()).limit(limit))).all()
    return [_summary(r) for r in rows]


async def get_snapshot(platform: Platform, me: Any, snapshot_id: int) -> dict[str, Any]:
    require_admin(me)
    async with platform.read() as conn:
        row = (await conn.execute(select(GraphSnapshot).where(GraphSnapshot.id == snapshot_id))).first()
    if row is None:
        raise UnknownSnapshot()
    return _full(id=row.id, guild_id=row.guild_id, reason=row.reason, created_at=row.created_at, graph=row.graph, metrics=row.metrics)


# --- one member ---

_NODE_HISTORY = text("""
    SELECT s.id, s.created_at, s.node FROM (
        SELECT id, created_at,
               jsonb_path_query_first(graph, '$.nodes[*] ? (@.id == $id)', jsonb_build_object('id', CAST(:uid AS text))) AS node
        FROM graph_snapshots WHERE guild_id = :g AND id < :before ORDER BY id DESC LIMIT :limit
    ) s WHERE s.node IS NOT NULL ORDER BY s.id DESC
""").columns(id=BigInteger, created_at=DateTime(timezone=True), node=JSONB)

HISTORY_KEYS = ("community", "influence", "betweenness", "reputation", "in_degree", "out_degree", "in_strength",
                "out_strength", "clustering", "reactions_received", "rating_mean")


async def member_metrics(platform: Platform, me: Any, guild_id: int, user_id: int, before: int | None,
                         limit: int) -> dict[str, Any]:
    """The member's node now (with its ties both ways) and its metrics over the last `limit`
    snapshots before `before` (newest first; snapshots taken before it joined are skipped)."""
    require_admin(me)
    async with platform.read() as conn:
        await _require_guild(conn, guild_id)
        member = (await conn.execute(select(MemberRow.user_id).where(MemberRow.guild_id == guild_id,
                                                                     MemberRow.user_id == user_id))).first()
        if member is None:
            raise UnknownMember()
        rows = (await conn.execute(_NODE_HISTORY, {"g": guild_id, "uid": str(user_id), "limit": limit,
                                                   "before": before if before is not None else MAX_SNOWFLAKE})).all()
    snap = await compute(platform, guild_id)
    uid = str(user_id)
    node = next((n for n in snap.graph["nodes"] if n["id"] == uid), None)
    if node is None:
        raise UnknownMember()  # left between the check and the computation
    return {
        "guild_id": str(guild_id), "user_id": uid, "current": node,
        "ties_out": [e for e in snap.graph["edges"] if e["source"] == uid],
        "ties_in": [e for e in snap.graph["edges"] if e["target"] == uid],
        "history": [{"snapshot_id": str(r.id), "created_at": shapes.iso(r.created_at),
                     **{k: r.node.get(k) for k in HISTORY_KEYS}} for r in rows],
    }


# --- on demand, through rq ---


def _sync_redis(platform: Platform) -> Any:
    """rq speaks synchronous redis-py: a client on the same server as the platform's async one
    (its connection settings, whatever URL form they came from: TCP, TLS or a unix socket)."""
    from redis import Redis
    from redis.asyncio.connection import SSLConnection as AsyncSSL, UnixDomainSocketConnection as AsyncUnix
    from redis.connection import Connection, ConnectionPool, SSLConnection, UnixDomainSocketConnection

    pool = platform.redis.connection_pool
    kind = pool.connection_class
    sync_kind = UnixDomainSocketConnection if issubclass(kind, AsyncUnix) else SSLConnection if issubclass(kind, AsyncSSL) else Connection
    return Redis(connection_pool=ConnectionPool(connection_class=sync_kind, **pool.connection_kwargs))


def _enqueue(platform: Platform, guild_id: int) -> str:
    from rq import Queue

    from ...worker.runtime.run import queue_name

    connection = _sync_redis(platform)
    try:
        job = Queue(queue_name(platform.settings), connection=connection).enqueue(
            SNAPSHOT_JOB, guild_id=guild_id, reason="manual", job_timeout=600, result_ttl=86400)
        return job.id
    finally:
        connection.close()


async def request_snapshot(platform: Platform, me: Any, guild_id: int) -> dict[str, Any]:
    """Queues a snapshot for the rq worker and returns the job to poll."""
    require_admin(me)
    async with platform.read() as conn:
        await _require_guild(conn, guild_id)
    job_id = await asyncio.to_thread(_enqueue, platform, guild_id)
    return {"job_id": job_id, "status": "queued", "guild_id": str(guild_id)}


def _job_status(platform: Platform, job_id: str) -> dict[str, Any]:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    connection = _sync_redis(platform)
    try:
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            raise UnknownJob() from None
        if job.func_name != SNAPSHOT_JOB:
            raise UnknownJob()  # this route reports graph snapshots only
        found = job.get_status(refresh=False)
        status = getattr(found, "value", found) or "unknown"  # rq's JobStatus enum
        result = job.return_value() if status == "finished" else None
    finally:
        connection.close()
    guild_id = job.kwargs.get("guild_id")
    return {"job_id": job.id, "status": status, "guild_id": str(guild_id) if guild_id is not None else None,
            "snapshot_ids": (result or {}).get("snapshots", []) if status == "finished" else []}


async def snapshot_job(platform: Platform, me: Any, job_id: str) -> dict[str, Any]:
    require_admin(me)
    if not JOB_ID.match(job_id):
        raise InvalidFormBody.field("job_id", "BASE_TYPE_BAD_ID", "Not a job id.")
    return await asyncio.to_thread(_job_status, platform, job_id)
