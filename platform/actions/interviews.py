"""Interviews (`/api/v10/townsquare/.../interview`, administrators): ask an agent, or several
agents of a society, a question out of band and get the answer from its memory, persona,
relationships and mood (agents/interview).

An interview is not part of the society: nothing is posted, no event is emitted, and the
agent's memory is only read (unless `remember` asks for the exchange to be kept as a memory of
its own). It is audit-logged (AGENT_INTERVIEW) and its model calls are recorded like every other
(`llm_calls`, task "interview", so analytics can leave them out). The model being unreachable is
a 503 (ModelUnavailable), the memory store a 503 (MemoryUnavailable), never a 500.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from ...agents.brain.backends import GenOptions
from ...agents.interview import Interviewee, answer, gather
from ...agents.memory.importance import heuristic_importance
from ...agents.memory.model import Kind, Memory, memory_id, memory_object
from ...agents.mind.mood import Mood
from ...agents.society.persona import Persona
from ...agents.turn.knowing import known_or_view
from ..core.errors import InvalidFormBody, MemoryUnavailable, ModelUnavailable, UnknownGuild
from ..core.metrics import count_records
from ..core.snowflake import new_id
from ..db.models import Agent, Guild, Member, Relationship, User
from . import agents as registry
from .audit import A
from .context import LLM_CALLS, Platform
from .memories import _store
from .relationships import bond_of
from .users import AuthUser

MAX_QUESTION = 500  # characters of a question
MAX_BATCH = 200  # agents one society-wide interview may name (a society's largest cast)


def check_question(question: str, field: str = "question") -> str:
    """The question on one line; empty or too long is a 400 naming the field."""
    text = " ".join((question or "").split())
    if not text:
        raise InvalidFormBody.field(field, "BASE_TYPE_REQUIRED", "This field is required")
    if len(text) > MAX_QUESTION:
        raise InvalidFormBody.field(field, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_QUESTION} or fewer in length.")
    return text


async def _members(conn: Any, guild_id: int) -> dict[int, str]:
    rows = (await conn.execute(select(User.id, User.username, User.global_name).join(Member, Member.user_id == User.id)
                               .where(Member.guild_id == guild_id))).all()
    return {r.id: r.global_name or r.username for r in rows}


async def _interviewee(conn: Any, row: Any, guild_name: str, members: dict[int, str], sim_speed: float) -> Interviewee:
    persona = Persona.model_validate(row.persona)
    mood = Mood.from_json(row.mood, persona.traits)
    if row.mood_at is not None:  # the stored mood relaxed to now, as the agent object shows it
        mood = mood.relaxed(persona.traits, (datetime.now(timezone.utc) - row.mood_at).total_seconds() * sim_speed)
    bonds = (await conn.execute(select(Relationship).where(Relationship.guild_id == row.guild_id,
                                                           Relationship.source_id == row.id))).all()
    ties = {b.target_id: (members[b.target_id], bond_of(b)) for b in bonds if b.target_id in members}
    names = {name: uid for uid, name in members.items() if uid != row.id}
    return Interviewee(persona, guild_name, mood, ties, names)


async def _ask(platform: Platform, row: Any, who: Interviewee, question: str) -> dict[str, Any]:
    """One agent's answer; its model calls are recorded whatever happens."""
    settings = platform.settings
    started = time.perf_counter()

    similar = _similarity()

    # what the persona knows or thinks that answers it: the statement its turns would answer with
    known = (known_or_view(who.persona, question, similar, settings.known_relevance_floor, person=True) if similar is not None
             else (None, False))

    async def search(memories: Any) -> Any:
        return await gather(memories, row.id, question, members=who.members, interests=who.persona.interests,
                            floor=settings.interview_relevance_floor, similar=similar, known=known)

    evidence = await _store(platform, search)
    calls: list[dict[str, Any]] = []
    token = LLM_CALLS.set(calls)
    try:
        said = await answer(platform.brain, who, question, evidence, agent_id=row.id, guild_id=row.guild_id,
                            options=GenOptions(max_tokens=settings.interview_max_tokens, temperature=0.6,
                                               seed=zlib.crc32(f"{row.id}:{question}".encode()) & 0x7FFFFFFF),
                            form=settings.reply_form, candidates=settings.reply_candidates,
                            relevance=similar if settings.gate_relevance_floor > 0 else None,
                            relevance_floor=settings.gate_relevance_floor)
    finally:
        LLM_CALLS.reset(token)
        await registry.record_llm_calls(platform, calls)
        await count_records(platform.redis, settings.redis_prefix, calls, [])
    if not said.reached:
        raise ModelUnavailable()
    return {"agent_id": str(row.id), "name": who.persona.name, "question": question, "answer": said.text,
            "knows": evidence.knows, "basis": evidence.basis, "source": said.source,
            "memories_used": [memory_object(r.memory, **r.scores()) for r in evidence.memories],
            "model": said.model, "latency_ms": int((time.perf_counter() - started) * 1000), "remembered": None}


def _similarity() -> Any:
    """The cosine of two texts' embeddings (the memory store's model): which interest a question
    touches, and the gate's off-topic measure."""
    from ...agents.brain.embed import get_embedder

    try:
        embedder = get_embedder()
    except Exception:  # noqa: BLE001 - without the embedding model: keyword matching, no off-topic test
        return None

    def relevance(a: str, b: str) -> float:
        if not a.strip() or not b.strip():
            return 0.0
        vectors = embedder.embed([a[:1000], b[:1000]])
        return float(vectors[0] @ vectors[1])

    return relevance


async def _remember(platform: Platform, agent_id: int, question: str, said: str) -> str:
    """The exchange as the agent's own memory (only when asked for)."""
    now = time.time()
    text = f"An interviewer asked me: {question} I answered: {said}"
    memory = Memory(id=memory_id(agent_id, "interview", new_id()), agent_id=agent_id, kind=Kind.OBSERVATION, text=text,
                    importance=heuristic_importance(question, addressed=True), created_at=now, last_access=now, source="interview")
    stored = await _store(platform, lambda memories: memories.add(memory))
    return stored.id


async def _audit(platform: Platform, me: AuthUser, results: Iterable[tuple[Any, dict[str, Any]]], *, batch: bool) -> None:
    async with platform.transaction() as tx:
        for row, result in results:
            await tx.audit(guild_id=row.guild_id, user_id=me.id, action_type=A.AGENT_INTERVIEW, target_id=row.id,
                           options={"question": result["question"][:200], "basis": result.get("basis"),
                                    "remembered": result.get("remembered") is not None, "batch": batch,
                                    "error": (result.get("error") or {}).get("code")})


async def interview_agent(platform: Platform, me: AuthUser, agent_id: int, question: str, *, remember: bool = False) -> dict[str, Any]:
    """Asks one agent; `remember` keeps the exchange as its memory (by default it leaves none)."""
    registry.require_admin(me)
    question = check_question(question)
    async with platform.read() as conn:
        row, _ = await registry._load(conn, agent_id)
        guild_name = (await conn.execute(select(Guild.name).where(Guild.id == row.guild_id))).scalar() or "the society"
        who = await _interviewee(conn, row, guild_name, await _members(conn, row.guild_id), platform.settings.sim_speed)
    result = await _ask(platform, row, who, question)
    if remember:
        result["remembered"] = await _remember(platform, agent_id, question, result["answer"])
    await _audit(platform, me, [(row, result)], batch=False)
    return result


async def interview_society(platform: Platform, me: AuthUser, guild_id: int, question: str,
                            agent_ids: list[int] | None = None) -> dict[str, Any]:
    """Asks several agents of one society the same question (all of them by default), at most
    `interview_concurrency` at once. One agent's failure is its entry's `error`; when every one
    failed for the same reason, that is the request's error."""
    registry.require_admin(me)
    question = check_question(question)
    if agent_ids is not None and not agent_ids:
        raise InvalidFormBody.field("agent_ids", "BASE_TYPE_MIN_LENGTH", "Must name at least one agent.")
    started = time.perf_counter()
    async with platform.read() as conn:
        guild_name = (await conn.execute(select(Guild.name).where(Guild.id == guild_id))).scalar()
        if guild_name is None:
            raise UnknownGuild()
        rows = (await conn.execute(select(Agent).where(Agent.guild_id == guild_id).order_by(Agent.id))).all()
        by_id = {r.id: r for r in rows}
        if agent_ids is not None:
            wanted = list(dict.fromkeys(agent_ids))
            for agent_id in wanted:
                if agent_id not in by_id:
                    raise InvalidFormBody.field(f"agent_ids.{agent_ids.index(agent_id)}", "AGENT_NOT_IN_SOCIETY",
                                                "Not an agent of this society.")
            rows = [by_id[a] for a in wanted]
        members = await _members(conn, guild_id)
        cast = [(r, await _interviewee(conn, r, guild_name, members, platform.settings.sim_speed)) for r in rows]
    slots = asyncio.Semaphore(platform.settings.interview_concurrency)

    async def one(row: Any, who: Interviewee) -> dict[str, Any]:
        async with slots:
            try:
                return await _ask(platform, row, who, question)
            except (ModelUnavailable, MemoryUnavailable) as exc:
                return {"agent_id": str(row.id), "name": who.persona.name, "question": question, "error": exc.to_json()}

    answers = await asyncio.gather(*(one(row, who) for row, who in cast))
    await _audit(platform, me, zip([r for r, _ in cast], answers), batch=True)
    failures = {a["error"]["code"] for a in answers if "error" in a}
    if answers and len(failures) == 1 and all("error" in a for a in answers):
        raise next(e for e in (ModelUnavailable(), MemoryUnavailable()) if e.code in failures)
    return {"guild_id": str(guild_id), "question": question, "answers": answers,
            "latency_ms": int((time.perf_counter() - started) * 1000)}

