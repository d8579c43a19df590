"""What an agent remembers of a message, and what it recalls for a turn.

`Memories` is the async face of the store used by the worker, the API and the rq jobs: Chroma's
client is synchronous, so its calls run in threads; the per-agent records (ledger.py) are in
PostgreSQL.

Writing: a message is remembered once for its society, whoever witnessed it (the author, the
followers of the channel, the recipients of a DM): one vector and one record, plus per witness
only what is its own (its importance when it wrote the message or was addressed, the facts it
heard about people: one SQL statement for all witnesses). The message's record is keyed by its
id, so an event handled twice writes nothing twice. Each witness's observation is phrased from
its point of view when it is read ("I said", "Ana replied to me", "Ana said in #market").

An agent's own memories (reflections, summaries, what the API adds, and all memories written
before migration 0005) stay in its own collection and are read beside what it witnessed.

Recalling: the best memories about the topic, the best about each person present, what the
agent knows about them (for the invented-tie guard), scored recency x importance x relevance,
over what that agent could have seen (never another agent's DMs or channels it does not follow).
"""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .facts import Fact, contradicts, current_confidence, extract_facts, reinforced, weakened
from .importance import heuristic_importance
from .ledger import Heard, Ledger, audience_id, fact_key, heard_id, message_of
from .model import ABOUT, Kind, Memory, clamp_importance, memory_id
from .scoring import Scored, Weights
from .store import MemoryStore, MemoryUnavailable, open_client

NEAREST_MIN = 60  # the society's nearest read first for an agent's recall (distances only)
WIDER = 8  # then this many times more, before a search filtered to the agent's audiences
PROMPT_CHARS = 110  # characters of one remembered line in a prompt (prompt evaluation is the small model's cost)
_WORD = re.compile(r"[a-zA-Z]{4,}")


@dataclass(frozen=True)
class Seen:
    """A message as the agents perceive it (mentions already readable as @names)."""

    message_id: int
    channel_id: int
    channel_name: str | None  # None: a DM
    author_id: int
    author_name: str
    content: str
    at: float
    mentions: frozenset[int] = frozenset()
    reply_to: int | None = None
    member_ids: Mapping[str, int] = field(default_factory=dict)  # display name -> user id, for facts about others
    guild_id: int | None = None  # the society (found from the witnesses when not given)


@dataclass(frozen=True)
class Recall:
    lines: list[str]  # for the prompt, best first
    knowledge: dict[int, list[str]]  # person -> what the agent remembers about them
    used: list[Memory]  # the memories put in the prompt (usefulness feedback)


def observation_text(seen: Seen, witness_id: int, names: Mapping[int, str]) -> str:
    where = f"in #{seen.channel_name}" if seen.channel_name else "privately"
    if witness_id == seen.author_id:
        target = names.get(seen.reply_to or 0) if seen.reply_to else None
        return f"I said {where}" + (f" to {target}" if target else "") + f": {seen.content}"
    if seen.reply_to == witness_id:
        return f"{seen.author_name} replied to me {where}: {seen.content}"
    if witness_id in seen.mentions:
        return f"{seen.author_name} spoke to me {where}: {seen.content}"
    if seen.channel_name is None:
        return f"{seen.author_name} wrote to me privately: {seen.content}"
    return f"{seen.author_name} said in #{seen.channel_name}: {seen.content}"


def fact_memory(agent_id: int, fact: Fact, subject_id: int | None, at: float, source: str, importance: float = 4.0) -> Memory:
    return Memory(id=memory_id(agent_id, "fact", fact.subject.lower(), fact.predicate, fact.object), agent_id=agent_id,
                  kind=Kind.FACT, text=fact.text(), importance=importance, created_at=at, last_access=at,
                  about=(subject_id,) if subject_id else (), source=source, subject=fact.subject, predicate=fact.predicate,
                  object=fact.object, confidence=fact.confidence, confirmed_at=at)


def prompt_line(m: Memory, now: float, half_life: float) -> str:
    text = " ".join(m.text.split())[:PROMPT_CHARS]
    if m.kind is Kind.FACT and current_confidence(m, now, half_life) < 0.6:
        return f"{text} (I think)"
    return text


def useful(memory: Memory, reply: str) -> bool:
    """A recalled memory shaped the reply when they share two or more content words (the
    memory's "Ana said in #market:" frame and common words do not count)."""
    from .reflection import _STOP

    body = memory.text.split(": ", 1)[1] if ": " in memory.text[:80] else memory.text
    words = {w.lower() for w in _WORD.findall(reply)} - _STOP
    return len(words & ({w.lower() for w in _WORD.findall(body)} - _STOP)) >= 2


class Memories:
    def __init__(self, store: MemoryStore, threads: int = 4, *, ledger: Ledger | None = None,
                 engine_factory: Callable[[], Any] | None = None) -> None:
        self.store = store
        # Chroma's client blocks: its calls get their own threads, so a slow store never starves
        # the default executor that the rest of the process (rq enqueues, DNS, files) relies on
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="memory")
        self._ledger = ledger
        self._engine_factory = engine_factory

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args, **kwargs))

    @property
    def ledger(self) -> Ledger:
        """What is per agent, in PostgreSQL (the platform's engine, or one of our own)."""
        if self._ledger is None:
            if self._engine_factory is None:
                raise MemoryUnavailable("the memory needs PostgreSQL: no database is configured")
            self._ledger = Ledger(self._engine_factory(), half_life=self.half_life)
        return self._ledger

    @property
    def half_life(self) -> float:
        return self.store.fact_half_life_seconds

    # --- writing ---

    async def observe(self, seen: Seen, witnesses: Iterable[int], names: Mapping[int, str]) -> dict[int, float]:
        """Remembers `seen` for all its witnesses at once: one vector and one record for the
        society, per witness only what differs (its importance when it wrote the message or was
        addressed) and the facts it heard. Returns the importance each witness gained; an event
        handled twice writes nothing again and returns {}."""
        witnesses = list(dict.fromkeys(witnesses))
        if not witnesses or not seen.content.strip():
            return {}
        guild_id = seen.guild_id if seen.guild_id is not None else await self.ledger.guild_of(witnesses[0])
        if guild_id is None:
            raise MemoryUnavailable(f"no society known for agent {witnesses[0]}")
        base = heuristic_importance(seen.content)
        marks: dict[int, float] = {}
        for w in witnesses:
            own = w == seen.author_id
            addressed = not own and (w in seen.mentions or seen.reply_to == w or seen.channel_name is None)
            if own or addressed:
                marks[w] = heuristic_importance(seen.content, addressed=addressed, own=own)
        facts = extract_facts(seen.content, speaker=seen.author_name, members=seen.member_ids)
        heard = []
        for fact in facts:
            subject_id = seen.member_ids.get(fact.subject, seen.author_id if fact.subject == seen.author_name else None)
            # what others say about me is not a fact I learn about someone
            learners = [w for w in witnesses if names.get(w) != fact.subject and w != subject_id]
            heard.append(Heard(fact, fact_key(fact), subject_id, learners))
        vectors = await self._run(self.store.embed, [seen.content, *(f.text() for f in facts)])
        mentions = sorted(seen.mentions)
        message = {"message_id": seen.message_id, "guild_id": guild_id, "channel_id": seen.channel_id, "channel_name": seen.channel_name,
                   "author_id": seen.author_id, "author_name": seen.author_name[:100], "reply_to": seen.reply_to,
                   "reply_to_name": (names.get(seen.reply_to) or None) if seen.reply_to else None, "mentions": mentions,
                   "content": seen.content, "created_at": float(seen.at), "importance": base}
        # everyone who saw it, the author too: a channel's messages then share one audience, whoever
        # writes them (without the author, each author would make a new one)
        audience = sorted(set(witnesses))
        # the vector first: a record whose vector is missing could never be recalled, a vector
        # without a record is never shown (and the retried event writes both)
        meta = {"kind": Kind.OBSERVATION.value, "channel_id": str(seen.channel_id), "author_id": str(seen.author_id),
                "audience": str(audience_id(guild_id, audience)) if audience else "", "created_at": float(seen.at),
                **{f"{ABOUT}{u}": True for u in {seen.author_id, *mentions, *([seen.reply_to] if seen.reply_to else [])}}}
        ids = [f"m{seen.message_id}", *(f"f{h.key}" for h in heard)]
        metas = [meta, *({"kind": Kind.FACT.value, **({f"{ABOUT}{h.subject_id}": True} if h.subject_id else {})} for h in heard)]
        await self._run(self.store.put_shared, guild_id, ids, [seen.content, *(f.text() for f in facts)], vectors, metas)
        if not await self.ledger.record(message=message, audience=audience, marks=marks, heard=heard):
            return {}
        gained = {w: marks.get(w, base) for w in witnesses}
        for h in heard:
            for w in h.witnesses:
                gained[w] += h.importance
        return gained

    def _learn(self, agent_id: int, fact: Fact, subject_id: int | None, at: float, source: str, *,
               vector: Any = None, importance: float | None = None) -> Memory:
        """Stores a fact of the agent's own (the API's, its own collection), reinforcing the same
        one or weakening what it contradicts. The same source telling it twice changes nothing."""
        new = fact_memory(agent_id, fact, subject_id, at, source, **({"importance": importance} if importance else {}))
        known = self.store.find(agent_id, {"$and": [{"kind": Kind.FACT.value}, {"subject": fact.subject}]})
        if any(old.id == new.id and old.source == source for old in known):
            return next(old for old in known if old.id == new.id)
        changed: dict[str, dict[str, Any]] = {}
        for old in known:
            now_conf = current_confidence(old, at, self.half_life)
            if old.id == new.id:
                new = new.with_(confidence=reinforced(now_conf, fact.confidence), created_at=old.created_at, uses=old.uses,
                                importance=old.importance)
            elif contradicts(old.predicate or "", old.object or "", fact.predicate, fact.object):
                changed[old.id] = {"confidence": weakened(now_conf), "confirmed_at": float(at)}
        self.store.patch(agent_id, changed)
        self.store.add([new], embeddings=None if vector is None else vector[None, :])
        return new

    async def _own_changed(self, agent_ids: Iterable[int]) -> None:
        """The own collections' sizes as the ledger keeps them (counts of many agents in one query)."""
        ids = list(dict.fromkeys(agent_ids))
        counts = {a: await self._run(self.store.count_own, a) for a in ids}
        await self.ledger.set_own_count(counts)

    async def add(self, memory: Memory) -> Memory:
        await self._run(self.store.add, [memory])
        await self._own_changed([memory.agent_id])
        return memory

    async def learn(self, agent_id: int, fact: Fact, subject_id: int | None, at: float, source: str,
                    importance: float | None = None) -> Memory:
        learned = await self._run(self._learn, agent_id, fact, subject_id, at, source, importance=importance)
        await self._own_changed([agent_id])
        return learned

    # --- reading ---

    async def _shared(self, agent_id: int, vector: np.ndarray, n: int, *, kinds: Iterable[Kind] | None = None,
                      about: int | None = None) -> list[tuple[Memory, float]]:
        """The `n` memories most similar to `vector` among what the agent witnessed in its society.
        The society's nearest are read (distances only) and kept when the ledger says the agent
        could have seen them, widening once; an agent that saw very little of a large society
        falls back to Chroma's search filtered to its audiences (slower: see docs/benchmarks.md)."""
        wanted = set(kinds) if kinds else {Kind.OBSERVATION, Kind.FACT}
        if not wanted & {Kind.OBSERVATION, Kind.FACT}:
            return []
        guild_id = await self.ledger.guild_of(agent_id)
        if guild_id is None:
            return []
        found: dict[str, tuple[Memory, float]] = {}

        async def keep(nearest: list[tuple[str, float]]) -> None:
            similarity = dict(nearest)
            messages = [int(i[1:]) for i, _ in nearest if i.startswith("m")] if Kind.OBSERVATION in wanted else []
            keys = [i[1:] for i, _ in nearest if i.startswith("f")] if Kind.FACT in wanted else []
            seen, facts = await self.ledger.visible(agent_id, messages, keys)
            key_of = {heard_id(agent_id, k): k for k in keys}
            for m in seen:
                found[m.id] = (m, similarity[f"m{message_of(m.id)}"])
            for m in facts:
                found[m.id] = (m, similarity[f"f{key_of[m.id]}"])

        def fits(m: Memory) -> bool:
            return about is None or about in m.about

        wide = max(NEAREST_MIN, 4 * n)
        for size in (wide, WIDER * wide):  # distances only: a wider read costs little, a filtered search much
            nearest = await self._run(self.store.nearest_shared, guild_id, vector, size)
            await keep(nearest)
            if sum(fits(m) for m, _ in found.values()) >= n or len(nearest) < size:
                break
        else:
            audiences = await self.ledger.audiences(agent_id)
            clauses: list[dict[str, Any]] = []
            if Kind.OBSERVATION in wanted and audiences:
                clauses.append({"audience": {"$in": [str(a) for a in audiences]}})
            if Kind.FACT in wanted:
                clauses.append({"kind": Kind.FACT.value})
            if clauses:
                where: dict[str, Any] = clauses[0] if len(clauses) == 1 else {"$or": clauses}
                if about is not None:
                    where = {"$and": [where, {f"{ABOUT}{about}": True}]}
                await keep(await self._run(self.store.nearest_shared, guild_id, vector, n, where))
        pool = sorted((x for x in found.values() if fits(x[0])), key=lambda x: -x[1])
        return pool[:n]

    async def candidates(self, agent_id: int, query: str | np.ndarray, n: int, *, kinds: Iterable[Kind] | None = None,
                         about: int | None = None) -> list[tuple[Memory, float]]:
        """The agent's own memories and what it witnessed, the `n` most similar of each."""
        vector = await self._run(self.store.embedder.embed_one, query) if isinstance(query, str) else np.asarray(query, dtype=np.float32)

        async def own() -> list[tuple[Memory, float]]:
            if await self.ledger.own_count(agent_id) == 0:
                return []  # most agents never write a memory of their own: no Chroma call for them
            return await self._run(self.store.candidates, agent_id, vector, n, kinds=kinds, about=about)

        mine, shared = await asyncio.gather(own(), self._shared(agent_id, vector, n, kinds=kinds, about=about))
        return [*mine, *shared]

    async def recall(self, agent_id: int, topic: str, people: Mapping[int, str], *, now: float | None = None, k: int = 4,
                     per_person: int = 2) -> Recall:
        """One similarity search (the agent's own collection and the society's, same vector) feeds
        everything: the best `k` memories about the topic, then the best `per_person` among the
        same candidates about each person present; facts about those people come from small
        filtered reads (facts are few). Chroma's filtered vector search is avoided: on a large
        store it costs tens of milliseconds per person."""
        now = now or time.time()
        if k <= 0:
            return Recall([], {}, [])
        pool = await self.candidates(agent_id, topic or "what is going on", max(20, 3 * k))
        if not pool:
            return Recall([], {}, [])
        ranked = self.store.rank(pool, now, k=len(pool))
        chosen: dict[str, Scored] = {s.memory.id: s for s in ranked[:k]}
        persons = list(people)[:3]
        own_facts = await asyncio.gather(*(self._run(self.store.find, agent_id, {"$and": [{"kind": Kind.FACT.value},
                                                                                         {f"{ABOUT}{p}": True}]}, limit=50)
                                           for p in persons))
        heard = await self.ledger.facts_about(agent_id, persons)
        knowledge: dict[int, list[str]] = {}
        for rank_of_person, person in enumerate(persons):
            about = [s for s in ranked if person in s.memory.about]
            if rank_of_person == 0:  # the one being answered: their best memory joins the prompt
                for s in about[:per_person]:
                    chosen.setdefault(s.memory.id, s)
            facts = [m for m in [*own_facts[rank_of_person], *(h for h in heard if person in h.about)]
                     if current_confidence(m, now, self.half_life) >= 0.25]
            knowledge[person] = list(dict.fromkeys([m.text for m in facts] + [s.memory.text for s in about]))
        best = sorted(chosen.values(), key=lambda s: -s.score)
        used = [s.memory.with_(last_access=now) for s in best]
        await self._touch(agent_id, used, now)  # recalled: fresh again (Generative Agents)
        return Recall([prompt_line(m, now, self.half_life) for m in used], knowledge, used)

    async def _touch(self, agent_id: int, used: Sequence[Memory], now: float) -> None:
        await self.ledger.touch(agent_id, used, now)
        own = [m for m in used if message_of(m.id) is None]
        if own:  # heard facts were updated by the ledger; an own id unknown to Chroma is skipped
            await self._patch(agent_id, {m.id: {"last_access": float(now)} for m in own}, shared_done=True)

    async def _patch(self, agent_id: int, changes: dict[str, dict[str, Any]], *, shared_done: bool = False) -> None:
        """Metadata changes: the ledger's for witnessed messages and heard facts, Chroma's for the rest."""
        done = set() if shared_done else await self.ledger.patch(agent_id, changes)
        rest = {i: c for i, c in changes.items() if i not in done and message_of(i) is None}
        if rest:
            known = await self._run(self.store.existing, agent_id, list(rest))
            if known:
                await self._run(self.store.patch, agent_id, {i: rest[i] for i in known})

    async def reinforce_useful(self, used: Sequence[Memory], reply: str) -> int:
        """Memories that shaped a reply gain importance: what proves useful is recalled more."""
        helped = [m for m in used if useful(m, reply)]
        for agent_id in {m.agent_id for m in helped}:
            await self._patch(agent_id, {m.id: {"importance": clamp_importance(m.importance + 0.5), "uses": m.uses + 1}
                                         for m in helped if m.agent_id == agent_id})
        return len(helped)

    async def rated(self, memory: Memory, importance: float) -> None:
        await self._patch(memory.agent_id, {memory.id: {"importance": clamp_importance(importance), "rated": True}})

    async def search(self, agent_id: int, query: str, *, k: int = 10, kinds: Iterable[Kind] | None = None,
                     about: int | None = None) -> list[Scored]:
        pool = await self.candidates(agent_id, query, 20, kinds=list(kinds) if kinds else None, about=about)
        return self.store.rank(pool, time.time(), k=k)

    async def recent(self, agent_id: int, limit: int = 50, kinds: Iterable[Kind] | None = None, since: float | None = None) -> list[Memory]:
        kinds = list(kinds) if kinds else None
        own, shared = await asyncio.gather(self._run(self.store.recent, agent_id, limit, kinds=kinds, since=since),
                                           self.ledger.recent(agent_id, limit, kinds=kinds, since=since))
        return sorted([*own, *shared], key=lambda m: (-m.created_at, m.id))[:limit]

    async def forget(self, agent_id: int, ids: Iterable[str] | None = None, *, about: int | None = None) -> int:
        wanted = list(ids) if ids is not None else None
        shared = await self.ledger.forget(agent_id, wanted, about=about)
        own_ids = [i for i in wanted if message_of(i) is None] if wanted is not None else None
        own = await self._run(self.store.forget, agent_id, own_ids, about=about) if own_ids is None or own_ids else 0
        if own:
            await self._own_changed([agent_id])
        return shared + own

    async def count(self, agent_id: int) -> int:
        own = await self._run(self.store.count_own, agent_id)
        await self.ledger.set_own_count({agent_id: own})
        shared, _ = (await self.ledger.count_many([agent_id]))[agent_id]
        return own + shared

    async def count_many(self, agent_ids: Iterable[int]) -> dict[int, int]:
        """Memory counts of many agents in one query; the store is asked only about agents whose
        own collection the ledger has not measured yet (written before migration 0005)."""
        ids = list(dict.fromkeys(agent_ids))
        counted = await self.ledger.count_many(ids)
        unknown = [a for a in ids if counted[a][1] is None]
        measured = {a: await self._run(self.store.count_own, a) for a in unknown}
        await self.ledger.set_own_count(measured)
        return {a: counted[a][0] + (counted[a][1] if counted[a][1] is not None else measured[a]) for a in ids}

    async def drop_agent(self, agent_id: int) -> None:
        await self._run(self.store.drop_agent, agent_id)
        await self.ledger.drop(agent_id)


def open_memories(settings: Any, engine: Any = None) -> Memories:
    """The memory store the settings name: Chroma's server at `CHROMA_URL`, else the data folder;
    the per-agent records in PostgreSQL through `engine` (the platform's), else an engine of its
    own on `DATABASE_URL`, made on first use."""
    path = None if settings.chroma_url else settings.resolved_data_dir() / "chroma"
    store = MemoryStore(open_client(settings.chroma_url, path), weights=Weights(),
                        decay_per_hour=settings.memory_decay_per_hour,
                        fact_half_life_seconds=settings.fact_half_life_days * 86400.0)

    def own_engine() -> Any:
        if engine is not None:
            return engine
        if not settings.database_url:
            raise MemoryUnavailable("the memory needs PostgreSQL: DATABASE_URL is not set")
        from ...platform.db.engine import make_engine
        from ...platform.services.embedded import to_asyncpg_url

        return make_engine(to_asyncpg_url(settings.database_url), schema=settings.database_schema, pool_size=2)

    return Memories(store, engine_factory=own_engine)
