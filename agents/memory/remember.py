"""What an agent remembers of a message, and what it recalls for a turn.

`Memories` is the async face of the store used by the worker, the API and the rq jobs: Chroma's
client is synchronous, so every call runs in a thread.

Writing: a message becomes an observation for each agent who witnessed it (the author, the
followers of the channel, the recipients of a DM), phrased from that agent's point of view,
plus the facts it states about people. Observation ids derive from (agent, message), so an
event handled twice writes each memory once.

Recalling: the best memories about the topic, the best about each person present, what the
agent knows about them (for the invented-tie guard), scored recency x importance x relevance.
"""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .facts import Fact, contradicts, current_confidence, extract_facts, reinforced, weakened
from .importance import heuristic_importance
from .model import Kind, Memory, clamp_importance, memory_id
from .scoring import Scored, Weights
from .store import MemoryStore, open_client

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
    def __init__(self, store: MemoryStore, threads: int = 4) -> None:
        self.store = store
        # Chroma's client blocks: its calls get their own threads, so a slow store never starves
        # the default executor that the rest of the process (rq enqueues, DNS, files) relies on
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="memory")

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args, **kwargs))

    @property
    def half_life(self) -> float:
        return self.store.fact_half_life_seconds

    # --- writing ---

    async def observe(self, seen: Seen, witnesses: Iterable[int], names: Mapping[int, str]) -> dict[int, float]:
        """Writes what each witness remembers of `seen`; returns the importance each one gained."""
        return await self._run(self._observe, seen, list(dict.fromkeys(witnesses)), dict(names))

    def _observe(self, seen: Seen, witnesses: list[int], names: dict[int, str]) -> dict[int, float]:
        if not witnesses or not seen.content.strip():
            return {}
        about = tuple(sorted({seen.author_id, *seen.mentions, *([seen.reply_to] if seen.reply_to else [])}))
        memories: list[Memory] = []
        for w in witnesses:
            addressed = w in seen.mentions or seen.reply_to == w or (seen.channel_name is None and w != seen.author_id)
            importance = heuristic_importance(seen.content, addressed=addressed, own=w == seen.author_id)
            memories.append(Memory(id=memory_id(w, "obs", seen.message_id), agent_id=w, kind=Kind.OBSERVATION,
                                   text=observation_text(seen, w, names), importance=importance, created_at=seen.at,
                                   last_access=seen.at, about=tuple(u for u in about if u != w), channel_id=seen.channel_id,
                                   source=f"message:{seen.message_id}"))
        # a redelivered event: what was remembered stays as it is (its rating, uses, access time)
        known = {m.agent_id for m in memories if m.id in self.store.existing(m.agent_id, [m.id])}
        memories = [m for m in memories if m.agent_id not in known]
        if not memories:
            return {}
        # one vector for the message serves every witness: what it is about, not who tells it
        vector = self.store.embed([seen.content])
        self.store.add(memories, embeddings=vector.repeat(len(memories), axis=0))
        gained = {m.agent_id: m.importance for m in memories}
        facts = extract_facts(seen.content, speaker=seen.author_name, members=seen.member_ids)
        vectors = self.store.embed([f.text() for f in facts]) if facts else None
        for m in memories:
            for i, fact in enumerate(facts):
                if fact.subject == names.get(m.agent_id):
                    continue  # what others say about me is not a fact I learn about someone
                subject_id = seen.member_ids.get(fact.subject, seen.author_id if fact.subject == seen.author_name else None)
                gained[m.agent_id] += self._learn(m.agent_id, fact, subject_id, seen.at, f"message:{seen.message_id}",
                                                  vector=vectors[i] if vectors is not None else None).importance
        return gained

    def _learn(self, agent_id: int, fact: Fact, subject_id: int | None, at: float, source: str, *,
               vector: Any = None, importance: float | None = None) -> Memory:
        """Stores a fact, reinforcing the same one or weakening what it contradicts. The same
        source telling it twice (a redelivered event) changes nothing."""
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

    async def add(self, memory: Memory) -> Memory:
        await self._run(self.store.add, [memory])
        return memory

    async def learn(self, agent_id: int, fact: Fact, subject_id: int | None, at: float, source: str,
                    importance: float | None = None) -> Memory:
        return await self._run(self._learn, agent_id, fact, subject_id, at, source, importance=importance)

    # --- reading ---

    async def recall(self, agent_id: int, topic: str, people: Mapping[int, str], *, now: float | None = None, k: int = 4,
                     per_person: int = 2) -> Recall:
        return await self._run(self._recall, agent_id, topic, dict(people), now or time.time(), k, per_person)

    def _recall(self, agent_id: int, topic: str, people: dict[int, str], now: float, k: int, per_person: int) -> Recall:
        """One similarity search feeds everything: the best `k` memories about the topic, then the
        best `per_person` among the same candidates about each person present; facts about those
        people come from a small filtered read (facts are few). Chroma's filtered vector search is
        avoided: on a large store it costs tens of milliseconds per person."""
        if k <= 0:
            return Recall([], {}, [])
        pool = self.store.candidates(agent_id, topic or "what is going on", max(20, 3 * k))
        if not pool:
            return Recall([], {}, [])
        ranked = self.store.rank(pool, now, k=len(pool))
        chosen: dict[str, Scored] = {s.memory.id: s for s in ranked[:k]}
        knowledge: dict[int, list[str]] = {}
        for rank_of_person, person in enumerate(list(people)[:3]):
            about = [s for s in ranked if person in s.memory.about]
            if rank_of_person == 0:  # the one being answered: their best memory joins the prompt
                for s in about[:per_person]:
                    chosen.setdefault(s.memory.id, s)
            facts = [m for m in self.store.find(agent_id, {"$and": [{"kind": Kind.FACT.value}, {f"about_{person}": True}]}, limit=50)
                     if current_confidence(m, now, self.half_life) >= 0.25]
            knowledge[person] = [m.text for m in facts] + [s.memory.text for s in about]
        best = sorted(chosen.values(), key=lambda s: -s.score)
        used = [s.memory.with_(last_access=now) for s in best]
        self.store.patch(agent_id, {m.id: {"last_access": float(now)} for m in used})  # recalled: fresh again (Generative Agents)
        return Recall([prompt_line(m, now, self.half_life) for m in used], knowledge, used)

    async def reinforce_useful(self, used: Sequence[Memory], reply: str) -> int:
        """Memories that shaped a reply gain importance: what proves useful is recalled more."""
        helped = [m for m in used if useful(m, reply)]
        for agent_id in {m.agent_id for m in helped}:
            await self._run(self.store.patch, agent_id, {m.id: {"importance": clamp_importance(m.importance + 0.5), "uses": m.uses + 1}
                                                         for m in helped if m.agent_id == agent_id})
        return len(helped)

    async def rated(self, memory: Memory, importance: float) -> None:
        await self._run(self.store.patch, memory.agent_id, {memory.id: {"importance": clamp_importance(importance), "rated": True}})

    async def search(self, agent_id: int, query: str, *, k: int = 10, kinds: Iterable[Kind] | None = None,
                     about: int | None = None) -> list[Scored]:
        return await self._run(self.store.search, agent_id, query, time.time(), k=k, kinds=kinds, about=about)

    async def recent(self, agent_id: int, limit: int = 50, kinds: Iterable[Kind] | None = None, since: float | None = None) -> list[Memory]:
        return await self._run(self.store.recent, agent_id, limit, kinds=kinds, since=since)

    async def forget(self, agent_id: int, ids: Iterable[str] | None = None, *, about: int | None = None) -> int:
        return await self._run(self.store.forget, agent_id, list(ids) if ids is not None else None, about=about)

    async def count(self, agent_id: int) -> int:
        return await self._run(self.store.count, agent_id)

    async def drop_agent(self, agent_id: int) -> None:
        await self._run(self.store.drop_agent, agent_id)


def open_memories(settings: Any) -> Memories:
    """The memory store the settings name: Chroma's server at `CHROMA_URL`, else the data folder."""
    path = None if settings.chroma_url else settings.resolved_data_dir() / "chroma"
    store = MemoryStore(open_client(settings.chroma_url, path), weights=Weights(),
                        decay_per_hour=settings.memory_decay_per_hour,
                        fact_half_life_seconds=settings.fact_half_life_days * 86400.0)
    return Memories(store)
