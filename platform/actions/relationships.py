"""Relationships between members, as the workers keep them (see agents/mind/relations.py):
saved by the tick leader, loaded by a starting worker, and shown through the API."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert

from ...agents.mind.relations import Bond, describe
from ..db.models import Relationship, User
from . import shapes
from .agents import _load, require_admin
from .context import Platform
from .users import AuthUser


async def load_relationships(platform: Platform, guild_ids: list[int]) -> list[Any]:
    if not guild_ids:
        return []
    async with platform.read() as conn:
        return list((await conn.execute(select(Relationship).where(Relationship.guild_id.in_(guild_ids)))).all())


async def save_relationships(platform: Platform, bonds: list[tuple[int, int, int, Bond]]) -> None:
    """(guild, source, target, bond) upserted; pairs whose member left are skipped by the FK guard."""
    if not bonds:
        return
    rows = [{"guild_id": g, "source_id": s, "target_id": t, "affinity": b.affinity, "familiarity": b.familiarity,
             "trust": b.trust, "interactions": b.interactions, "rating": b.rating,
             "rated_at": datetime.fromtimestamp(b.last_at, timezone.utc) if b.rating is not None and b.last_at else None,
             "updated_at": datetime.now(timezone.utc)} for g, s, t, b in bonds]
    async with platform.transaction() as tx:
        known = {r[0] for r in (await tx.conn.execute(
            select(User.id).where(User.id.in_({r["source_id"] for r in rows} | {r["target_id"] for r in rows})))).all()}
        rows = [r for r in rows if r["source_id"] in known and r["target_id"] in known]
        if not rows:
            return
        for start in range(0, len(rows), 1000):  # asyncpg takes at most 32,767 parameters per statement
            stmt = insert(Relationship).values(rows[start:start + 1000])
            await tx.conn.execute(stmt.on_conflict_do_update(
                index_elements=[Relationship.guild_id, Relationship.source_id, Relationship.target_id],
                set_={c: getattr(stmt.excluded, c) for c in ("affinity", "familiarity", "trust", "interactions", "rating",
                                                            "rated_at", "updated_at")}))


def bond_of(row: Any) -> Bond:
    return Bond(affinity=row.affinity, familiarity=row.familiarity, trust=row.trust, interactions=row.interactions,
                rating=row.rating, last_at=(row.rated_at or row.updated_at).timestamp() if (row.rated_at or row.updated_at) else 0.0)


async def list_relationships(platform: Platform, me: AuthUser, agent_id: int) -> list[dict[str, Any]]:
    """How the agent gets on with each member it has met, and how each sees it back."""
    require_admin(me)
    async with platform.read() as conn:
        agent, _ = await _load(conn, agent_id)
        rows = (await conn.execute(select(Relationship).where(
            Relationship.guild_id == agent.guild_id,
            or_(Relationship.source_id == agent_id, Relationship.target_id == agent_id)))).all()
        others = {r.target_id if r.source_id == agent_id else r.source_id for r in rows}
        users = {u.id: u for u in (await conn.execute(select(User).where(User.id.in_(others)))).all()} if others else {}
    out: dict[int, dict[str, Any]] = {}
    for r in rows:
        other = r.target_id if r.source_id == agent_id else r.source_id
        user = users.get(other)
        if user is None:
            continue
        name = user.global_name or user.username
        entry = out.setdefault(other, {"user": {"id": str(other), "username": user.username, "global_name": user.global_name,
                                                "bot": user.bot}, "outgoing": None, "incoming": None})
        shape = {"affinity": round(r.affinity, 4), "familiarity": round(r.familiarity, 4), "trust": round(r.trust, 4),
                 "interactions": r.interactions, "rating": r.rating, "updated_at": shapes.iso(r.updated_at)}
        if r.source_id == agent_id:
            entry["outgoing"] = {**shape, "described": describe(bond_of(r), name)}
        else:
            entry["incoming"] = shape
    return sorted(out.values(), key=lambda e: -((e["outgoing"] or {}).get("familiarity", 0.0)))
