"""The per-agent side of shared memory, in PostgreSQL (tables of migration 0005).

A message is remembered once per society: its vector in the society's Chroma collection
(store.py), its record in `memory_messages`. Who witnessed it is not a row per witness: the
agents who saw it (the author too, when it is an agent) form an *audience*, and a channel's
messages share one audience until its followers change (a join, a new agent), so
`memory_audiences` grows with changes of membership, not with messages. An agent could have
seen a message when it belongs to its audience (an author that is an agent is always one of
the witnesses); nothing else of the society's store is ever shown to it.

Rows per agent exist only where something is that agent's own: `memory_marks` (its importance
of a message when it differs from an onlooker's - it was addressed, it wrote it, the LLM rated
it, it proved useful -, its last access, forgetting) and `memory_facts` (what it heard about
people, with its own confidence: one statement per fact writes it for every witness).

Async (the platform's engine), called by `Memories` (remember.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .facts import CONTRADICTION_FACTOR, OPPOSITE, SINGLE_VALUED, Fact
from .model import Kind, Memory, memory_id


def audience_id(guild_id: int, members: Iterable[int]) -> int:
    """The same set of witnesses is the same audience, whichever process meets it first."""
    digest = hashlib.sha256(f"{guild_id}:{','.join(str(m) for m in sorted(members))}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def fact_key(fact: Fact) -> str:
    """One key per (subject, predicate, object) in a society: the vector of its text is shared."""
    return hashlib.sha256(f"{fact.subject.lower()}:{fact.predicate}:{fact.object}".encode()).hexdigest()[:24]


def heard_id(agent_id: int, key: str) -> str:
    return memory_id(agent_id, "heard", key)


def message_memory_id(message_id: int) -> str:
    """A witnessed message's memory id: 16 hex digits (an agent's own memories have 24)."""
    return f"{message_id:016x}"


def message_of(memory_id_: str) -> int | None:
    return int(memory_id_, 16) if len(memory_id_) == 16 else None


@dataclass(frozen=True)
class Heard:
    fact: Fact
    key: str
    subject_id: int | None
    witnesses: list[int]  # who learns it (not the one it is about)
    importance: float = 4.0


_MSG_COLS = """m.message_id, m.guild_id, m.channel_id, m.channel_name, m.author_id, m.author_name, m.reply_to, m.reply_to_name,
  m.mentions, m.content, m.created_at, coalesce(k.importance, m.importance) AS importance,
  coalesce(k.last_access, m.created_at) AS last_access, coalesce(k.uses, 0) AS uses, coalesce(k.rated, false) AS rated"""
_FACT_COLS = """id, fact_key, subject, subject_id, predicate, object, confidence, confirmed_at, created_at, last_access, importance,
  uses, rated, source"""
# could `:a` have seen `m`: it belongs to its audience
_VISIBLE = "m.audience_id IN (SELECT audience_id FROM memory_audiences WHERE agent_id = :a)"


class Ledger:
    def __init__(self, engine: AsyncEngine, *, half_life: float) -> None:
        self.engine = engine
        self.half_life = half_life
        self._audiences: set[int] = set()  # audiences this process knows are written
        self._guilds: dict[int, int] = {}

    # --- writing ---

    async def record(self, *, message: dict[str, Any], audience: Sequence[int], marks: Mapping[int, float],
                     heard: Sequence[Heard]) -> bool:
        """The message's record, its audience, the witnesses' own importances and the facts they
        heard, in one transaction; False (nothing written) when the message was remembered already
        (an event handled twice)."""
        aud = audience_id(message["guild_id"], audience) if audience else None
        async with self.engine.begin() as conn:
            if aud is not None and aud not in self._audiences:
                await conn.execute(text("INSERT INTO memory_audiences (agent_id, audience_id) SELECT unnest(CAST(:members AS BIGINT[])), :aud "
                                        "ON CONFLICT DO NOTHING"), {"members": list(audience), "aud": aud})
            new = (await conn.execute(text(
                "INSERT INTO memory_messages (message_id, guild_id, channel_id, channel_name, author_id, author_name, reply_to, "
                "reply_to_name, mentions, content, created_at, importance, audience_id) VALUES (:message_id, :guild_id, :channel_id, "
                ":channel_name, :author_id, :author_name, :reply_to, :reply_to_name, CAST(:mentions AS BIGINT[]), :content, :created_at, "
                ":importance, :aud) ON CONFLICT (message_id) DO NOTHING RETURNING message_id"), {**message, "aud": aud})).first()
            if new is None:
                return False
            if marks:
                await conn.execute(text("INSERT INTO memory_marks (agent_id, message_id, importance) SELECT w, :m, i FROM "
                                        "unnest(CAST(:w AS BIGINT[]), CAST(:i AS FLOAT[])) AS t(w, i) ON CONFLICT (agent_id, message_id) "
                                        "DO UPDATE SET importance = EXCLUDED.importance"),
                                   {"m": message["message_id"], "w": list(marks), "i": list(marks.values())})
            for h in heard:
                await self._hear(conn, h, guild_id=message["guild_id"], at=message["created_at"],
                                 source=f"message:{message['message_id']}")
        if aud is not None:
            self._audiences.add(aud)
        return True

    async def _hear(self, conn: Any, h: Heard, *, guild_id: int, at: float, source: str) -> None:
        """Every witness learns the fact at once: what it contradicts is weakened, the same fact
        heard from another source is reinforced (facts.py's rules, in SQL)."""
        if not h.witnesses:
            return
        f = h.fact
        decayed = "f.confidence * power(0.5, greatest(0, :at - f.confirmed_at) / :hl)"
        await conn.execute(text(
            f"UPDATE memory_facts f SET confidence = {decayed} * :factor, confirmed_at = :at WHERE f.agent_id = ANY(CAST(:w AS BIGINT[])) "
            "AND f.subject = :subject AND ((f.predicate = :p AND :single AND f.object <> :o) OR (f.predicate = :opp AND f.object = :o))"),
            {"at": at, "hl": self.half_life, "factor": CONTRADICTION_FACTOR, "w": h.witnesses, "subject": f.subject, "p": f.predicate,
             "single": f.predicate in SINGLE_VALUED, "o": f.object, "opp": OPPOSITE.get(f.predicate, "")})
        old = "memory_facts.confidence * power(0.5, greatest(0, EXCLUDED.confirmed_at - memory_facts.confirmed_at) / :hl)"
        await conn.execute(text(
            "INSERT INTO memory_facts (agent_id, fact_key, id, guild_id, subject, subject_id, predicate, object, confidence, confirmed_at, "
            "created_at, last_access, importance, source) SELECT w, :key, i, :guild, :subject, :sid, :p, :o, :c, :at, :at, :at, :imp, :source "
            "FROM unnest(CAST(:w AS BIGINT[]), CAST(:ids AS TEXT[])) AS t(w, i) ON CONFLICT (agent_id, fact_key) DO UPDATE SET "
            f"confidence = least(0.99, 1 - (1 - {old}) * (1 - EXCLUDED.confidence * 0.6)), confirmed_at = EXCLUDED.confirmed_at, "
            "source = EXCLUDED.source, subject_id = coalesce(memory_facts.subject_id, EXCLUDED.subject_id) "
            "WHERE memory_facts.source <> EXCLUDED.source"),
            {"key": h.key, "guild": guild_id, "subject": f.subject, "sid": h.subject_id, "p": f.predicate, "o": f.object,
             "c": f.confidence, "at": at, "imp": h.importance, "source": source, "hl": self.half_life, "w": h.witnesses,
             "ids": [heard_id(w, h.key) for w in h.witnesses]})

    async def touch(self, agent_id: int, memories: Sequence[Memory], now: float) -> None:
        """Recalled: fresh again (Generative Agents)."""
        messages = [m for m in (message_of(x.id) for x in memories) if m is not None]
        facts = [x.id for x in memories if message_of(x.id) is None]
        if not messages and not facts:
            return
        async with self.engine.begin() as conn:
            if messages:
                await conn.execute(text("INSERT INTO memory_marks (agent_id, message_id, last_access) SELECT :a, unnest(CAST(:m AS BIGINT[])), "
                                        ":now ON CONFLICT (agent_id, message_id) DO UPDATE SET last_access = EXCLUDED.last_access"),
                                   {"a": agent_id, "m": messages, "now": now})
            if facts:
                await conn.execute(text("UPDATE memory_facts SET last_access = :now WHERE agent_id = :a AND id = ANY(CAST(:ids AS TEXT[]))"),
                                   {"a": agent_id, "ids": facts, "now": now})

    async def patch(self, agent_id: int, changes: Mapping[str, Mapping[str, Any]]) -> set[str]:
        """Importance, uses, rated of shared memories; returns the ids it knew (the rest are the
        agent's own, in its collection)."""
        done: set[str] = set()
        async with self.engine.begin() as conn:
            for mid, change in changes.items():
                values = {k: change[k] for k in ("importance", "uses", "rated") if k in change}
                if not values:
                    continue
                sets = ", ".join(f"{k} = :{k}" for k in values)
                message = message_of(mid)
                if message is not None:
                    await conn.execute(text(f"INSERT INTO memory_marks (agent_id, message_id, {', '.join(values)}) VALUES (:a, :m, "
                                            f"{', '.join(':' + k for k in values)}) ON CONFLICT (agent_id, message_id) DO UPDATE SET {sets}"),
                                       {"a": agent_id, "m": message, **values})
                    done.add(mid)
                elif (await conn.execute(text(f"UPDATE memory_facts SET {sets} WHERE agent_id = :a AND id = :id RETURNING id"),
                                         {"a": agent_id, "id": mid, **values})).first():
                    done.add(mid)
        return done

    async def forget(self, agent_id: int, ids: Sequence[str] | None = None, *, about: int | None = None) -> int:
        """Forgetting a witnessed message marks it (the society's record stays: others saw it too)."""
        async with self.engine.begin() as conn:
            if ids is not None:
                messages = [m for m in (message_of(i) for i in ids) if m is not None]
                where, params = "m.message_id = ANY(CAST(:ms AS BIGINT[]))", {"ms": messages}
                facts = (await conn.execute(text("DELETE FROM memory_facts WHERE agent_id = :a AND id = ANY(CAST(:ids AS TEXT[])) RETURNING id"),
                                            {"a": agent_id, "ids": [i for i in ids if message_of(i) is None]})).all()
                if not messages:
                    return len(facts)
            elif about is not None:
                where, params = "(m.author_id = :about OR :about = ANY(m.mentions) OR m.reply_to = :about) AND :about <> :a", {"about": about}
                facts = (await conn.execute(text("DELETE FROM memory_facts WHERE agent_id = :a AND subject_id = :about RETURNING id"),
                                            {"a": agent_id, "about": about})).all()
            else:
                return 0
            marked = (await conn.execute(text(
                f"INSERT INTO memory_marks (agent_id, message_id, forgotten) SELECT :a, m.message_id, true FROM memory_messages m "
                f"LEFT JOIN memory_marks k ON k.agent_id = :a AND k.message_id = m.message_id WHERE {where} AND {_VISIBLE} "
                "AND k.forgotten IS NOT TRUE ON CONFLICT (agent_id, message_id) DO UPDATE SET forgotten = true RETURNING message_id"),
                {"a": agent_id, **params})).all()
        return len(facts) + len(marked)

    async def drop(self, agent_id: int) -> None:
        async with self.engine.begin() as conn:
            for table in ("memory_marks", "memory_facts", "memory_audiences", "memory_own_counts"):
                await conn.execute(text(f"DELETE FROM {table} WHERE agent_id = :a"), {"a": agent_id})
        self._guilds.pop(agent_id, None)

    async def set_own_count(self, counts: Mapping[int, int]) -> None:
        if counts:
            async with self.engine.begin() as conn:
                await conn.execute(text("INSERT INTO memory_own_counts (agent_id, count) SELECT * FROM unnest(CAST(:a AS BIGINT[]), "
                                        "CAST(:n AS INT[])) ON CONFLICT (agent_id) DO UPDATE SET count = EXCLUDED.count"),
                                   {"a": list(counts), "n": list(counts.values())})

    # --- reading ---

    async def guild_of(self, agent_id: int) -> int | None:
        """The society whose collection holds what the agent witnessed."""
        found = self._guilds.get(agent_id)
        if found is None:
            async with self.engine.connect() as conn:
                found = (await conn.execute(text("SELECT guild_id FROM agents WHERE id = :a UNION ALL (SELECT m.guild_id FROM "
                                                 f"memory_messages m WHERE {_VISIBLE} LIMIT 1) LIMIT 1"), {"a": agent_id})).scalar()
            if found is not None:
                self._guilds[agent_id] = found
        return found

    async def own_count(self, agent_id: int) -> int | None:
        """The agent's own collection's size as last measured (None: never measured)."""
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT count FROM memory_own_counts WHERE agent_id = :a"), {"a": agent_id})).scalar()

    async def audiences(self, agent_id: int) -> list[int]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(text("SELECT audience_id FROM memory_audiences WHERE agent_id = :a"), {"a": agent_id})).scalars())

    async def visible(self, agent_id: int, message_ids: Sequence[int], fact_keys: Sequence[str]) -> tuple[list[Memory], list[Memory]]:
        """Of these candidates, the messages the agent could have seen (and not forgotten) and the
        facts it heard, as its memories."""
        messages: list[Any] = []
        facts: list[Any] = []
        async with self.engine.connect() as conn:
            if message_ids:
                messages = (await conn.execute(text(
                    f"SELECT {_MSG_COLS} FROM memory_messages m LEFT JOIN memory_marks k ON k.agent_id = :a AND k.message_id = m.message_id "
                    f"WHERE m.message_id = ANY(CAST(:ids AS BIGINT[])) AND {_VISIBLE} AND k.forgotten IS NOT TRUE"),
                    {"a": agent_id, "ids": list(message_ids)})).all()
            if fact_keys:
                facts = (await conn.execute(text(f"SELECT {_FACT_COLS} FROM memory_facts WHERE agent_id = :a "
                                                 "AND fact_key = ANY(CAST(:keys AS TEXT[]))"), {"a": agent_id, "keys": list(fact_keys)})).all()
        return [observation(agent_id, r) for r in messages], [heard_fact(agent_id, r) for r in facts]

    async def facts_about(self, agent_id: int, people: Sequence[int]) -> list[Memory]:
        if not people:
            return []
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT {_FACT_COLS} FROM memory_facts WHERE agent_id = :a AND subject_id = ANY(CAST(:p AS BIGINT[])) "
                                            "LIMIT 200"), {"a": agent_id, "p": list(people)})).all()
        return [heard_fact(agent_id, r) for r in rows]

    async def recent(self, agent_id: int, limit: int, *, kinds: Iterable[Kind] | None = None, since: float | None = None,
                     before: float | None = None) -> list[Memory]:
        """Newest first: each audience's newest through its index, then merged (not a sort of
        everything the agent ever saw)."""
        wanted = set(kinds) if kinds else {Kind.OBSERVATION, Kind.FACT}
        params = {"a": agent_id, "lim": limit, "since": since if since is not None else float("-inf"),
                  "before": before if before is not None else float("inf")}
        out: list[Memory] = []
        async with self.engine.connect() as conn:
            if Kind.OBSERVATION in wanted:
                window = "m.created_at >= :since AND m.created_at < :before AND NOT EXISTS (SELECT 1 FROM memory_marks f WHERE " \
                         "f.agent_id = :a AND f.message_id = m.message_id AND f.forgotten)"
                rows = (await conn.execute(text(
                    f"SELECT {_MSG_COLS} FROM (SELECT p.* FROM memory_audiences a CROSS JOIN LATERAL (SELECT m.* FROM memory_messages m "
                    f"WHERE m.audience_id = a.audience_id AND {window} ORDER BY m.created_at DESC LIMIT :lim) p WHERE a.agent_id = :a) m "
                    "LEFT JOIN memory_marks k ON k.agent_id = :a AND k.message_id = m.message_id ORDER BY m.created_at DESC LIMIT :lim"),
                    params)).all()
                out += [observation(agent_id, r) for r in rows]
            if Kind.FACT in wanted:
                rows = (await conn.execute(text(f"SELECT {_FACT_COLS} FROM memory_facts WHERE agent_id = :a AND created_at >= :since "
                                                "AND created_at < :before ORDER BY created_at DESC LIMIT :lim"), params)).all()
                out += [heard_fact(agent_id, r) for r in rows]
        out.sort(key=lambda m: (-m.created_at, m.id))
        return out[:limit]

    async def count_many(self, agent_ids: Sequence[int]) -> dict[int, tuple[int, int | None]]:
        """agent -> (witnessed messages + heard facts, own collection's size or None when not known
        yet), in one query: messages are counted per audience once, then summed per agent."""
        if not agent_ids:
            return {}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("""
                WITH ids AS (SELECT DISTINCT unnest(CAST(:ids AS BIGINT[])) AS agent_id),
                 mine AS (SELECT a.agent_id, a.audience_id FROM memory_audiences a JOIN ids USING (agent_id)),
                 per_audience AS (SELECT m.audience_id, count(*) AS n FROM memory_messages m
                                  WHERE m.audience_id IN (SELECT audience_id FROM mine) GROUP BY m.audience_id),
                 seen AS (SELECT mine.agent_id, sum(p.n) AS n FROM mine JOIN per_audience p USING (audience_id) GROUP BY mine.agent_id),
                 forgot AS (SELECT agent_id, count(*) AS n FROM memory_marks WHERE agent_id IN (SELECT agent_id FROM ids) AND forgotten
                            GROUP BY agent_id),
                 facts AS (SELECT agent_id, count(*) AS n FROM memory_facts WHERE agent_id IN (SELECT agent_id FROM ids) GROUP BY agent_id)
                SELECT ids.agent_id, coalesce(seen.n, 0) - coalesce(forgot.n, 0) + coalesce(facts.n, 0) AS shared, own.count AS own
                FROM ids LEFT JOIN seen USING (agent_id) LEFT JOIN forgot USING (agent_id)
                LEFT JOIN facts USING (agent_id) LEFT JOIN memory_own_counts own USING (agent_id)"""), {"ids": list(agent_ids)})).all()
        return {r.agent_id: (int(r.shared), r.own) for r in rows}


def observation(agent_id: int, r: Any) -> Memory:
    """A witnessed message, told from this agent's point of view ("I said", "Ana replied to me")."""
    from .remember import Seen, observation_text

    mentions = frozenset(r.mentions or ())
    seen = Seen(r.message_id, r.channel_id, r.channel_name, r.author_id, r.author_name, r.content, r.created_at, mentions, r.reply_to,
                guild_id=r.guild_id)
    about = tuple(sorted({r.author_id, *mentions, *([r.reply_to] if r.reply_to else [])} - {agent_id}))
    return Memory(id=message_memory_id(r.message_id), agent_id=agent_id, kind=Kind.OBSERVATION,
                  text=observation_text(seen, agent_id, {r.reply_to: r.reply_to_name} if r.reply_to and r.reply_to_name else {}),
                  importance=float(r.importance), created_at=float(r.created_at), last_access=float(r.last_access), about=about,
                  channel_id=r.channel_id, source=f"message:{r.message_id}", rated=bool(r.rated), uses=int(r.uses))


def heard_fact(agent_id: int, r: Any) -> Memory:
    return Memory(id=r.id, agent_id=agent_id, kind=Kind.FACT, text=f"{r.subject} {r.predicate} {r.object}", importance=float(r.importance),
                  created_at=float(r.created_at), last_access=float(r.last_access), about=(r.subject_id,) if r.subject_id else (),
                  source=r.source, rated=bool(r.rated), uses=int(r.uses), subject=r.subject, predicate=r.predicate, object=r.object,
                  confidence=float(r.confidence), confirmed_at=float(r.confirmed_at))
