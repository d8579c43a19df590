"""The answers to a scenario's questions, asked of a live society (see agents/scenario/questions.py
for how each is judged). Each answer has a `value` (the number compared across repeats and arms)
and the details behind it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ...agents.scenario import model as sc
from ...agents.scenario import questions as qs
from ..db.models import Agent, Message
from . import memories
from .context import Platform

MAX_MESSAGES = 50_000  # the society's messages read for stance and sentiment (newest first)


async def _agents(platform: Platform, guild_id: int) -> dict[int, dict[str, Any]]:
    async with platform.read() as conn:
        rows = (await conn.execute(select(Agent.id, Agent.persona).where(Agent.guild_id == guild_id).order_by(Agent.id))).all()
    return {int(r.id): dict(r.persona) for r in rows}


async def _messages(platform: Platform, guild_id: int, since_id: int | None) -> list[Any]:
    query = select(Message.author_id, Message.content).where(Message.guild_id == guild_id).order_by(Message.id.desc()).limit(MAX_MESSAGES)
    if since_id is not None:
        query = query.where(Message.id >= since_id)
    async with platform.read() as conn:
        return list((await conn.execute(query)).all())


async def who_knows(platform: Platform, guild_id: int, q: sc.Knows, *, since_id: int | None = None,
                    told: frozenset[int] = frozenset()) -> dict[str, Any]:
    """Each agent's memory interviewed about the fact; `told` (agents told it directly by the
    scenario) are left out of the share of others; `said`: agents whose messages hold the keywords."""
    keywords = list(q.keywords) if q.keywords else qs.default_keywords(q.fact)
    cast = await _agents(platform, guild_id)
    informed: list[str] = []
    for agent_id, persona in cast.items():
        found = await memories._store(platform, lambda store, a=agent_id: store.search(a, q.fact, k=qs.SEARCH_K))
        if qs.knows(((s.memory.text, s.similarity) for s in found), keywords, q.threshold):
            informed.append(persona.get("name", str(agent_id)))
    said = sorted({cast[int(m.author_id)].get("name", "") for m in await _messages(platform, guild_id, since_id)
                   if int(m.author_id) in cast and qs.holds(m.content, keywords)})
    told_names = {cast[a].get("name") for a in told if a in cast}
    others = [n for n in informed if n not in told_names]
    n_others = max(1, len(cast) - len(told_names))
    return {"kind": "knows", "name": q.name, "fact": q.fact, "keywords": keywords, "threshold": q.threshold,
            "agents": len(cast), "informed": len(informed), "who": sorted(informed), "told": sorted(n for n in told_names if n),
            "share": len(informed) / max(1, len(cast)), "share_of_others": len(others) / n_others,
            "said": said, "said_by_others": [n for n in said if n not in told_names],
            "value": len(others) / n_others}


async def stance(platform: Platform, guild_id: int, q: sc.StanceOn, *, since_id: int | None = None) -> dict[str, Any]:
    words = qs.topic_words(q.topic, q.keywords)
    cast = await _agents(platform, guild_id)
    said: dict[int, list[str]] = {}
    for m in await _messages(platform, guild_id, since_id):
        if int(m.author_id) in cast and qs.mentions(m.content, words):
            said.setdefault(int(m.author_id), []).append(m.content)
    per_agent = []
    for agent_id, persona in cast.items():
        expressed, n = qs.mean_sentiment(said.get(agent_id, []))
        held = (persona.get("stances") or {}).get(q.topic)
        per_agent.append({"agent_id": str(agent_id), "name": persona.get("name"), "held": held, "expressed": expressed, "messages": n})
    values = [a["expressed"] if a["expressed"] is not None else a["held"] for a in per_agent]
    known = [v for v in values if v is not None]
    return {"kind": "stance", "name": q.name, "topic": q.topic, "keywords": words, "agents": per_agent,
            "value": sum(known) / len(known) if known else None}


async def sentiment_about(platform: Platform, guild_id: int, q: sc.SentimentAbout, *, since_id: int | None = None) -> dict[str, Any]:
    words = qs.topic_words(q.topic, q.keywords)
    texts = [m.content for m in await _messages(platform, guild_id, since_id) if qs.mentions(m.content, words)]
    mean, n = qs.mean_sentiment(texts)
    return {"kind": "sentiment", "name": q.name, "topic": q.topic, "keywords": words, "messages": n, "value": mean}


async def messages_since(platform: Platform, guild_id: int, since_id: int | None) -> int:
    """The society's messages during the run (how much happened, beside the answers)."""
    from sqlalchemy import func

    query = select(func.count()).select_from(Message).where(Message.guild_id == guild_id)
    if since_id is not None:
        query = query.where(Message.id >= since_id)
    async with platform.read() as conn:
        return int((await conn.execute(query)).scalar_one())


async def answer(platform: Platform, guild_id: int, q: Any, *, since_id: int | None = None,
                 told: frozenset[int] = frozenset()) -> dict[str, Any]:
    if isinstance(q, sc.Knows):
        return await who_knows(platform, guild_id, q, since_id=since_id, told=told)
    if isinstance(q, sc.StanceOn):
        return await stance(platform, guild_id, q, since_id=since_id)
    return await sentiment_about(platform, guild_id, q, since_id=since_id)
