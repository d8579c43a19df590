"""The memory API (`/api/v10/townsquare/agents/{id}/memories`, administrators): add, list,
search and forget what an agent remembers. The store is Chroma with per-agent rows in PostgreSQL
(agents/memory/store.py, ledger.py);
when it cannot be reached the API answers 503, never 500."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from chromadb.errors import ChromaError

from ...agents.memory.facts import Fact
from ...agents.memory.importance import heuristic_importance
from ...agents.memory.model import Kind, Memory, clamp_importance, memory_id, memory_object
from ...agents.memory.store import MemoryUnavailable as StoreUnavailable
from ..core.errors import MemoryUnavailable, UnknownMemory
from ..core.snowflake import new_id
from .agents import _load, require_admin
from .audit import A
from .context import Platform
from .users import AuthUser

T = TypeVar("T")


async def _agent(platform: Platform, me: AuthUser, agent_id: int) -> Any:
    require_admin(me)
    async with platform.read() as conn:
        row, _ = await _load(conn, agent_id)
    return row


async def _store(platform: Platform, call: Callable[[Any], Awaitable[T]]) -> T:
    try:
        return await call(platform.memory)
    except StoreUnavailable as exc:
        raise MemoryUnavailable() from exc
    except (ConnectionError, TimeoutError, OSError, httpx.HTTPError, ChromaError) as exc:
        raise MemoryUnavailable() from exc


async def add_memory(platform: Platform, me: AuthUser, agent_id: int, *, text: str, kind: str, importance: float | None,
                     about: list[int], fact: dict[str, str] | None, confidence: float | None) -> dict[str, Any]:
    agent = await _agent(platform, me, agent_id)
    now = time.time()
    if kind == Kind.FACT.value and fact is not None:
        f = Fact(fact["subject"], fact["predicate"], fact["object"], confidence if confidence is not None else 0.9)

        async def learn(memories: Any) -> Memory:
            return await memories.learn(agent_id, f, about[0] if about else None, now, "api", importance=importance)

        stored = await _store(platform, learn)
    else:
        memory = Memory(id=memory_id(agent_id, "api", new_id()), agent_id=agent_id, kind=Kind(kind), text=text,
                        importance=clamp_importance(importance) if importance is not None else heuristic_importance(text),
                        created_at=now, last_access=now, about=tuple(about), source="api", rated=importance is not None)
        stored = await _store(platform, lambda memories: memories.add(memory))
    async with platform.transaction() as tx:
        await tx.audit(guild_id=agent.guild_id, user_id=me.id, action_type=A.AGENT_MEMORY_ADD, target_id=agent_id,
                       options={"memory_id": stored.id, "kind": stored.kind.value})
    return memory_object(stored)


async def search_memories(platform: Platform, me: AuthUser, agent_id: int, *, query: str | None, kind: str | None,
                          about: int | None, limit: int) -> dict[str, Any]:
    await _agent(platform, me, agent_id)
    kinds = [Kind(kind)] if kind else None

    async def run(memories: Any) -> dict[str, Any]:
        total = await memories.count(agent_id)
        if query:
            found = await memories.search(agent_id, query, k=limit, kinds=kinds, about=about)
            items = [memory_object(s.memory, **s.parts()) for s in found]
        else:
            items = [memory_object(m) for m in await memories.recent(agent_id, limit, kinds=kinds)]
        return {"total": total, "memories": items}

    return await _store(platform, run)


async def forget_memories(platform: Platform, me: AuthUser, agent_id: int, *, memory_id_: str | None = None,
                          about: int | None = None, reason: str | None = None) -> int:
    agent = await _agent(platform, me, agent_id)
    forgotten = await _store(platform, lambda memories: memories.forget(agent_id, [memory_id_] if memory_id_ else None, about=about))
    if memory_id_ and not forgotten:
        raise UnknownMemory()
    async with platform.transaction() as tx:
        await tx.audit(guild_id=agent.guild_id, user_id=me.id, action_type=A.AGENT_MEMORY_FORGET, target_id=agent_id, reason=reason,
                       options={"memory_id": memory_id_, "about": str(about) if about else None, "count": forgotten})
    return forgotten


async def memory_count(platform: Platform, agent_id: int) -> int | None:
    """For the agent object: None when the store is unreachable (the registry still answers)."""
    try:
        return await platform.memory.count(agent_id)
    except Exception:  # noqa: BLE001 - a missing count must not break listing agents
        return None
