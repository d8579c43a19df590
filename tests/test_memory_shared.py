"""Memory whose cost follows messages, not witnesses (issue 18): a message is embedded and stored
once per society, per agent only rows; an agent recalls only what it could have seen; memories
written the old way (one collection per agent) still read; counts of many agents at once. On the
real Chroma server and real PostgreSQL."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from townsquare.agents.memory import remember
from townsquare.agents.memory.model import Kind, Memory, memory_id
from townsquare.agents.memory.remember import Memories, Seen, open_memories
from townsquare.agents.memory.store import society_collection
from townsquare.platform.core.config import Settings


def big() -> int:
    return random.randrange(10**15, 10**16)


class Counting:
    """A Chroma collection that counts the calls made on it."""

    def __init__(self, inner: Any, calls: dict[str, int]) -> None:
        self._inner, self._calls = inner, calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls[name] = self._calls.get(name, 0) + 1
            return attr(*args, **kwargs)

        return call


@pytest.fixture
async def memories(settings: Settings) -> AsyncIterator[Memories]:
    memories = open_memories(settings)
    yield memories
    await memories.ledger.engine.dispose()


class Society:
    """Fake agents (ids only) in one fake society; cleans its rows and collections up."""

    def __init__(self, memories: Memories) -> None:
        self.memories, self.guild = memories, big()
        self.agents: set[int] = set()
        self.clock = time.time() - 3600

    def ids(self, n: int) -> list[int]:
        out = [big() for _ in range(n)]
        self.agents.update(out)
        return out

    async def say(self, author: int, content: str, witnesses: list[int], *, channel: str | None = "general", channel_id: int = 1,
                  mentions: frozenset[int] = frozenset(), reply_to: int | None = None, names: dict[int, str] | None = None,
                  members: dict[str, int] | None = None) -> tuple[Seen, dict[int, float]]:
        self.clock += 1
        names = names or {}
        seen = Seen(big(), channel_id, channel, author, names.get(author, f"user{author % 1000}"), content, self.clock, mentions, reply_to,
                    members or {}, guild_id=self.guild)
        return seen, await self.memories.observe(seen, [author, *witnesses], names)

    async def close(self) -> None:
        for agent in self.agents:
            await self.memories.drop_agent(agent)
        try:
            self.memories.store.client.delete_collection(name=society_collection(self.guild))
        except Exception:  # noqa: BLE001
            pass
        async with self.memories.ledger.engine.begin() as conn:
            await conn.execute(text("DELETE FROM memory_messages WHERE guild_id = :g"), {"g": self.guild})


@pytest.fixture
async def society(memories: Memories) -> AsyncIterator[Society]:
    s = Society(memories)
    yield s
    await s.close()


async def _rows(memories: Memories, sql: str, **params: Any) -> Any:
    async with memories.ledger.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def test_a_message_witnessed_by_many_is_embedded_and_stored_once(memories: Memories, society: Society) -> None:
    author, addressed, *crowd = society.ids(60)
    embedded: list[int] = []
    embed = memories.store.embed
    memories.store.embed = lambda texts: embedded.append(len(texts)) or embed(texts)  # type: ignore[method-assign]
    calls: dict[str, int] = {}
    collection = memories.store._society(society.guild)
    memories.store._collections[-society.guild] = Counting(collection, calls)
    names = {author: "Rosa", addressed: "Ben"}
    seen, gained = await society.say(author, "Big news: the flower stall opens on Saturday, everyone is invited!", [addressed, *crowd],
                                     mentions=frozenset({addressed}), names=names)
    assert embedded == [1] and calls == {"upsert": 1}  # one vector, one write, for 60 witnesses
    assert collection.count() == 1
    assert set(gained) == {author, addressed, *crowd} and gained[addressed] > gained[crowd[0]]
    # rows: one record, one audience of 60 (written once for every later message of the same
    # followers, whoever writes it), and per-agent rows only for the author and the one addressed
    assert await _rows(memories, "SELECT count(*) FROM memory_messages WHERE message_id = :m", m=seen.message_id) == 1
    assert await _rows(memories, "SELECT count(*) FROM memory_marks WHERE message_id = :m", m=seen.message_id) == 2
    audience = await _rows(memories, "SELECT audience_id FROM memory_messages WHERE message_id = :m", m=seen.message_id)
    assert await _rows(memories, "SELECT count(*) FROM memory_audiences WHERE audience_id = :a", a=audience) == 60
    # the same followers again, another author: no new audience
    await society.say(crowd[0], "The stall has tulips too.", [author, addressed, *crowd[1:]], names=names)
    assert await _rows(memories, "SELECT count(*) FROM memory_audiences WHERE agent_id = :a", a=crowd[5]) == 1
    assert embedded == [1, 1] and calls == {"upsert": 2}
    # the event handled twice: nothing is written again
    assert await memories.observe(seen, [author, addressed, *crowd], names) == {}
    assert await _rows(memories, "SELECT count(*) FROM memory_messages WHERE guild_id = :g", g=society.guild) == 2
    # each witness reads it from its own point of view
    said = {m.source: m.text for m in await memories.recent(author, 5)}
    assert said[f"message:{seen.message_id}"].startswith("I said in #general: Big news")
    assert (await memories.recent(addressed, 5))[-1].text.startswith("Rosa spoke to me in #general: Big news")
    assert (await memories.recent(crowd[7], 5))[-1].text.startswith("Rosa said in #general: Big news")
    assert await memories.count(crowd[7]) == 2


async def test_an_agent_never_recalls_what_it_could_not_see(memories: Memories, society: Society,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    ana, ben, cy, dee, eve = society.ids(5)
    names = {ana: "Ana", ben: "Ben", cy: "Cy", dee: "Dee", eve: "Eve"}
    await society.say(ana, "The harbour festival has fireworks at midnight", [ben], channel="harbour", channel_id=11, names=names)
    await society.say(cy, "The harbour festival fireworks are cancelled, it's a secret", [dee], channel=None, channel_id=12, names=names)
    await society.say(ben, "Fireworks at the harbour festival scare my dog", [cy], channel="pets", channel_id=13, names=names)
    for agent, expected in ((ana, {"harbour"}), (ben, {"harbour", "pets"}), (cy, {"dm", "pets"}), (dee, {"dm"}), (eve, set())):
        found = await memories.search(agent, "fireworks at the harbour festival", k=10)
        recalled = await memories.recall(agent, "fireworks at the harbour festival", {}, k=10)
        recent = await memories.recent(agent, 10)
        for got in ([s.memory for s in found], recalled.used, recent):
            where = {"harbour" if "#harbour" in m.text else "pets" if "#pets" in m.text else "dm" for m in got}
            assert where == expected, (agent, [m.text for m in got])
        assert await memories.count(agent) == len(expected)
    dm = (await memories.recent(dee, 1))[0]
    assert dm.text == "Cy wrote to me privately: The harbour festival fireworks are cancelled, it's a secret"
    # an agent who saw one message of a large society still finds it: the nearest 80 are all
    # others', the wider read finds it (here: the whole collection), and without a wider read
    # the search filtered to its audiences does
    crowd = society.ids(3)
    for i in range(90):
        await society.say(crowd[0], f"The harbour festival fireworks were loud, night {i}", crowd[1:], channel="harbour", channel_id=11)
    found = await memories.search(eve, "fireworks at the harbour festival", k=3)
    assert found == []
    await society.say(ana, "Eve, the harbour lanterns are lovely this year", [eve], channel="lanterns", channel_id=14, names=names)
    reads: list[Any] = []
    nearest = memories.store.nearest_shared
    monkeypatch.setattr(memories.store, "nearest_shared", lambda *a: reads.append(a[2:]) or nearest(*a))
    for wider, expected_reads in ((8, [80, 640]), (1, [80, 80, 20])):  # the third: filtered to Eve's audiences
        reads.clear()
        monkeypatch.setattr(remember, "WIDER", wider)
        found = await memories.search(eve, "fireworks at the harbour festival", k=3)
        assert [s.memory.text for s in found] == ["Ana said in #lanterns: Eve, the harbour lanterns are lovely this year"]
        assert [r[0] for r in reads] == expected_reads and (len(reads) < 3 or "audience" in str(reads[2][1]))


async def test_ranking_is_per_agent_recency_importance_relevance(memories: Memories, society: Society) -> None:
    ana, ben, cy = society.ids(3)
    names = {ana: "Ana", ben: "Ben", cy: "Cy"}
    trivial, _ = await society.say(ana, "the bakery sells rye bread on Mondays", [ben, cy], names=names)
    told, _ = await society.say(ana, "Ben, the bakery sells rye bread on Mondays and it sells out by nine", [ben, cy],
                                mentions=frozenset({ben}), names=names)
    # addressed, the second matters more to Ben than to Cy; relevance about equal
    ben_best = await memories.search(ben, "rye bread at the bakery", k=2)
    assert ben_best[0].memory.source == f"message:{told.message_id}"
    assert ben_best[0].memory.importance > (await memories.search(cy, "rye bread at the bakery", k=2))[0].memory.importance
    # a rating and usefulness are the rating agent's alone
    cy_trivial = next(s.memory for s in await memories.search(cy, "rye bread at the bakery", k=2)
                      if s.memory.source == f"message:{trivial.message_id}")
    await memories.rated(cy_trivial, 10)
    assert (await memories.search(cy, "rye bread at the bakery", k=1))[0].memory.source == f"message:{trivial.message_id}"
    assert (await memories.search(ben, "rye bread at the bakery", k=1))[0].memory.source == f"message:{told.message_id}"
    assert await memories.reinforce_useful([cy_trivial.with_(importance=10)], "Rye bread on Mondays at the bakery, lovely") == 1
    again = next(m for m in await memories.recent(cy, 5) if m.id == cy_trivial.id)
    assert again.importance == 10 and again.uses == 1 and again.rated
    # recall refreshes recency for the one recalling only
    later = time.time() + 7200
    recalled = await memories.recall(ben, "rye bread", {}, now=later, k=1)
    assert recalled.used[0].last_access == later
    assert {m.id: m.last_access for m in await memories.recent(ben, 5)}[recalled.used[0].id] == pytest.approx(later)
    assert all(m.last_access < later for m in await memories.recent(cy, 5))
    # forgetting is the forgetter's: the others keep it
    assert await memories.forget(ben, [recalled.used[0].id]) == 1
    assert recalled.used[0].id not in {m.id for m in await memories.recent(ben, 5)}
    assert len(await memories.recent(cy, 5)) == 2
    assert await memories.forget(cy, about=ana) == 2 and await memories.recent(cy, 5) == []


async def test_heard_facts_are_learned_by_every_witness_at_once(memories: Memories, society: Society) -> None:
    ana, ben, cy = society.ids(3)
    names = {ana: "Ana", ben: "Ben", cy: "Cy"}
    members = {v: k for k, v in names.items()}
    await society.say(ana, "I live in Leeds and I love jazz.", [ben, cy], names=names, members=members)
    await society.say(ana, "Actually I live in York.", [ben], names=names, members=members)
    await society.say(cy, "Ben works at the mill.", [ben, ana], names=names, members=members)
    ben_facts = {(m.predicate, m.object): m for m in await memories.recent(ben, 20, kinds=[Kind.FACT])}
    cy_facts = {(m.predicate, m.object): m for m in await memories.recent(cy, 20, kinds=[Kind.FACT])}
    now = time.time()
    assert ben_facts[("lives in", "york")].confidence == pytest.approx(0.9)
    assert ben_facts[("lives in", "leeds")].confidence < 0.5  # contradicted for Ben, who heard both
    assert cy_facts[("lives in", "leeds")].confidence == pytest.approx(0.9)  # Cy did not hear of York
    assert ("works at", "mill") not in ben_facts  # what others say about me is not a fact I learn
    assert ("works at", "mill") in {(m.predicate, m.object) for m in await memories.recent(ana, 20, kinds=[Kind.FACT])}
    recalled = await memories.recall(ben, "where does Ana live", {ana: "Ana"}, now=now)
    assert "Ana lives in york" in recalled.knowledge[ana]
    # one more witness of the same fact from another source: reinforced for those who heard both
    await society.say(cy, "Ana loves jazz, she told me.", [ben], names=names, members=members)
    ben_jazz = next(m for m in await memories.recent(ben, 20, kinds=[Kind.FACT]) if m.object == "jazz")
    assert ben_jazz.confidence > 0.9


async def test_memories_written_the_old_way_still_read(memories: Memories, society: Society) -> None:
    """Before migration 0005 each witness had its own copy in its own collection: those copies
    stay where they are and are read beside what is shared (and forgotten by their ids)."""
    ana, ben = society.ids(2)
    old_at = time.time() - 86400
    old = Memory(id=memory_id(ben, "obs", 12345), agent_id=ben, kind=Kind.OBSERVATION,
                 text="Ana said in #general: the old lighthouse is for sale", importance=5, created_at=old_at, last_access=old_at,
                 about=(ana,), channel_id=1, source="message:12345")
    fact = Memory(id=memory_id(ben, "fact", "ana", "works at", "lighthouse"), agent_id=ben, kind=Kind.FACT, text="Ana works at lighthouse",
                  importance=4, created_at=old_at, last_access=old_at, about=(ana,), source="message:12345", subject="Ana",
                  predicate="works at", object="lighthouse", confidence=0.9, confirmed_at=old_at)
    memories.store.add([old, fact])  # the old format: the store, as the old `observe` wrote it
    await society.say(ana, "The new lighthouse keeper starts on Monday", [ben], names={ana: "Ana"})
    found = {s.memory.text for s in await memories.search(ben, "the lighthouse", k=5)}
    assert found >= {old.text, "Ana said in #general: The new lighthouse keeper starts on Monday", fact.text}
    recalled = await memories.recall(ben, "the lighthouse", {ana: "Ana"})
    assert "Ana works at lighthouse" in recalled.knowledge[ana] and old.id in {m.id for m in recalled.used}
    assert await memories.count(ben) == 3
    newest = await memories.recent(ben, 5)
    assert newest[0].text == "Ana said in #general: The new lighthouse keeper starts on Monday" and {old.id, fact.id} <= {m.id for m in newest}
    assert await memories.forget(ben, [old.id]) == 1 and await memories.count(ben) == 2


async def test_counts_of_many_agents_in_one_query(memories: Memories, society: Society) -> None:
    agents = society.ids(6)
    for i in range(4):
        await society.say(agents[i % 2], f"news number {i} about the market", agents[2:5])
    memories.store.add([Memory(id=memory_id(agents[5], "api", 1), agent_id=agents[5], kind=Kind.REFLECTION, text="I like markets",
                               importance=3, created_at=time.time(), last_access=time.time())])
    one_by_one = {a: await memories.count(a) for a in agents}
    assert one_by_one == {agents[0]: 2, agents[1]: 2, agents[2]: 4, agents[3]: 4, agents[4]: 4, agents[5]: 1}
    counted: list[int] = []
    count = memories.store.count_own
    memories.store.count_own = lambda agent_id: counted.append(agent_id) or count(agent_id)  # type: ignore[method-assign]
    assert await memories.count_many(agents) == one_by_one
    assert counted == []  # every own collection's size is known: no store call per agent
    unknown = society.ids(1)[0]  # an agent whose own collection was never measured (an old store): asked once
    assert await memories.count_many([*agents, unknown]) == {**one_by_one, unknown: 0}
    assert counted == [unknown]
    assert await memories.count_many([*agents, unknown]) == {**one_by_one, unknown: 0} and counted == [unknown]
