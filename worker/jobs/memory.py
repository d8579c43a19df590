"""rq jobs of the agents' memory: reflections (enqueued by the worker when importance piles up)
and consolidation (hourly, keeps every agent's own collection bounded; what an agent witnessed
is stored once for its society and costs it no vector, see agents/memory/ledger.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import select

from ...platform.core.config import get_settings
from ...platform.core.metrics import count_records

log = logging.getLogger("townsquare.jobs.memory")


async def _open() -> tuple[Any, Any]:
    from ...platform.api.app import build_platform
    from ...platform.services.embedded import resolve_services

    settings = get_settings()
    services = resolve_services(settings)  # the rq worker's environment names the services (`up` passes them)
    platform = await build_platform(settings, services.database_url, services.redis_url)
    return settings, platform


async def _names(platform: Any, guild_id: int) -> tuple[dict[int, str], dict[int, str]]:
    from ...platform.db.models import Channel, Member, User

    async with platform.read() as conn:
        users = (await conn.execute(select(User.id, User.username, User.global_name).join(Member, Member.user_id == User.id)
                                    .where(Member.guild_id == guild_id))).all()
        channels = (await conn.execute(select(Channel.id, Channel.name).where(Channel.guild_id == guild_id))).all()
    return {u.id: u.global_name or u.username for u in users}, {c.id: c.name for c in channels if c.name}


async def _reflect(agent_id: int) -> dict[str, Any]:
    from ...agents.brain.backends import GenOptions
    from ...agents.brain.chain import FallbackChain
    from ...agents.brain.routing import load_routing
    from ...agents.memory.guard import guard
    from ...agents.memory.reflection import clean_insight, record_reflection, reflection, reflection_messages
    from ...agents.mind.clock import SystemClock
    from ...platform.actions import agents as registry
    from ...platform.api.app import close_platform
    from ...platform.db.models import Agent

    settings, platform = await _open()
    calls: list[dict[str, Any]] = []
    chain = FallbackChain(load_routing(settings.routing_file, settings.ollama_host or f"http://127.0.0.1:{settings.model_port}"),
                          SystemClock(), record=calls.append)
    try:
        async with platform.read() as conn:
            row = (await conn.execute(select(Agent.guild_id, Agent.persona).where(Agent.id == agent_id))).first()
        if row is None:
            return {"agent_id": agent_id, "written": None, "reason": "unknown agent"}
        name = row.persona.get("name", "me")
        names, _ = await _names(platform, row.guild_id)
        memories = platform.memory
        now = time.time()
        recent = [m for m in await memories.recent(agent_id, 100) if m.kind.value != "reflection"][:40]
        if not recent:
            return {"agent_id": agent_id, "written": None, "reason": "nothing to reflect on"}
        recent.sort(key=lambda m: -m.importance)
        try:
            thought = await chain.think(agent_id=agent_id, guild_id=row.guild_id, agent_name=name, task="reflect",
                                        messages=reflection_messages(name, recent),
                                        options=GenOptions(max_tokens=48, temperature=0.7, seed=7), accept=clean_insight,
                                        timeout=settings.turn_timeout_seconds)
            insight = clean_insight(thought.text)
        except Exception as exc:  # noqa: BLE001 - without the model, the agent still reflects from the record
            log.warning("reflection without the model: %s", exc)
            insight = None
        if insight:  # the model's insight, held to the same rule as a chat message: no invented ties or facts
            insight, _ = guard(insight, own_name=name, names={n: i for i, n in names.items() if i != agent_id}, bonds={},
                               bio=row.persona.get("bio", ""), knowledge={})
        about = tuple(sorted({u for m in recent[:10] for u in m.about if u in names and u != agent_id}))[:3]
        written = reflection(agent_id, insight, recent, about, now) if insight else record_reflection(agent_id, recent, names, now)
        if written is not None:
            await memories.add(written)
        return {"agent_id": agent_id, "written": written.text if written else None, "source": "llm" if insight else "record"}
    finally:
        await registry.record_llm_calls(platform, calls)
        await count_records(platform.redis, settings.redis_prefix, calls, [])  # /metrics: the society's counters
        await chain.close()
        await close_platform(platform)


def reflect(agent_id: int) -> dict[str, Any]:
    """Writes one reflection for the agent from its recent memories."""
    return asyncio.run(_reflect(agent_id))


async def _consolidate(max_per_agent: int) -> dict[str, Any]:
    from ...agents.memory.reflection import consolidate as fold
    from ...platform.api.app import close_platform
    from ...platform.db.models import Agent

    _, platform = await _open()
    try:
        async with platform.read() as conn:
            agents = (await conn.execute(select(Agent.id, Agent.guild_id))).all()
        store = platform.memory.store
        out: dict[str, Any] = {}
        sizes: dict[int, int] = {}
        lookups: dict[int, tuple[dict[int, str], dict[int, str]]] = {}
        for agent in agents:
            if agent.guild_id not in lookups:
                lookups[agent.guild_id] = await _names(platform, agent.guild_id)
            names, channels = lookups[agent.guild_id]
            result = await asyncio.to_thread(fold, store, agent.id, max_per_agent, names=names, channel_names=channels)
            sizes[agent.id] = result["after"]
            if result["before"] > max_per_agent:
                out[str(agent.id)] = result
        await platform.memory.ledger.set_own_count(sizes)  # the dashboard's counts read these
        return out
    finally:
        await close_platform(platform)


def consolidate(max_per_agent: int = 5000) -> dict[str, Any]:
    """Keeps every agent's memory at or under `max_per_agent` (summaries first, then forgetting)."""
    return asyncio.run(_consolidate(max_per_agent))
