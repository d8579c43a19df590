"""Memory: retrieval scoring, facts (decay, contradiction), consolidation, the invented-tie
guard, and relationships, on the real Chroma server and the real embedder."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from townsquare.agents.memory.facts import Fact, current_confidence, extract_facts
from townsquare.agents.memory.guard import find_claims, guard
from townsquare.agents.memory.importance import heuristic_importance, parse_rating
from townsquare.agents.memory.model import Kind, Memory, memory_id
from townsquare.agents.memory.news import on_mind, on_mind_window
from townsquare.agents.memory.reflection import consolidate, record_reflection
from townsquare.agents.memory.remember import Memories, Seen, open_memories
from townsquare.agents.memory.scoring import normalise, rank
from townsquare.agents.mind.relations import Bond, Relations, describe
from townsquare.platform.core.config import Settings

HOUR = 3600.0


def mem(agent: int, text: str, *, importance: float = 3.0, at: float, kind: Kind = Kind.OBSERVATION, about: tuple[int, ...] = (),
        **extra: object) -> Memory:
    return Memory(id=memory_id(agent, text, at), agent_id=agent, kind=kind, text=text, importance=importance, created_at=at,
                  last_access=at, about=about, **extra)  # type: ignore[arg-type]


@pytest.fixture
def memories(settings: Settings) -> Iterator[Memories]:
    yield open_memories(settings)


@pytest.fixture
async def agent_id(memories: Memories) -> AsyncIterator[int]:
    agent = random.randrange(10**15, 10**16)
    yield agent
    await memories.drop_agent(agent)


# --- scoring on constructed cases ---


def test_normalise_and_rank_weigh_recency_importance_relevance() -> None:
    now = 1_000_000.0
    old_important = mem(1, "old but important", importance=9, at=now - 200 * HOUR)
    fresh_trivial = mem(1, "fresh but trivial", importance=1, at=now)
    relevant = mem(1, "relevant", importance=5, at=now - 10 * HOUR)
    ranked = rank([(old_important, 0.30), (fresh_trivial, 0.31), (relevant, 0.90)], now)
    assert [s.memory.text for s in ranked] == ["relevant", "old but important", "fresh but trivial"]
    # importance weighs 3, recency 0.5: with equal relevance the important memory beats the fresh one
    ranked = rank([(old_important, 0.5), (fresh_trivial, 0.5)], now)
    assert ranked[0].memory is old_important
    assert normalise([2.0, 2.0]) == [0.5, 0.5]
    assert normalise([1.0, 3.0, 2.0]) == [0.0, 1.0, 0.5]


def test_retrieval_ranks_by_relevance_importance_and_recency(memories: Memories, agent_id: int) -> None:
    now = time.time()
    store = memories.store
    store.add([
        mem(agent_id, "Isabella is throwing a Valentine's Day party at Hobbs Cafe on Friday evening", importance=8, at=now - 5 * HOUR),
        mem(agent_id, "The tomatoes in the community garden need watering", importance=3, at=now - 1 * HOUR),
        mem(agent_id, "The bus to the harbour was late again this morning", importance=2, at=now - 2 * HOUR),
        mem(agent_id, "I said hello to everyone in #general", importance=1, at=now),
    ])
    best = store.search(agent_id, "is there a party this week?", now, k=2)
    assert "party" in best[0].memory.text
    # two equally relevant memories: the more important one first
    store.add([mem(agent_id, "The bakery sells rye bread on Mondays", importance=2, at=now - HOUR),
               mem(agent_id, "The bakery sells rye bread on Mondays, and it sells out by nine", importance=9, at=now - HOUR)])
    bread = store.search(agent_id, "rye bread at the bakery", now, k=2)
    assert bread[0].memory.importance == 9
    # same text and importance: the one recalled recently wins (recency is refreshed by access)
    a = mem(agent_id, "Marco fixed the church bell", importance=4, at=now - 300 * HOUR)
    b = mem(agent_id, "Marco fixed the church bell.", importance=4, at=now - 300 * HOUR).with_(last_access=now)
    store.add([a, b])
    bell = store.search(agent_id, "Marco fixed the church bell", now, k=2)
    assert bell[0].memory.id == b.id
    # recall marks what it returns as accessed
    recall_now = now + 10
    store.search(agent_id, "Marco fixed the church bell", recall_now, k=1, touch=True)
    assert store.get(agent_id, [b.id])[0].last_access == pytest.approx(recall_now)


async def test_news_on_the_mind_is_read_from_the_last_simulated_day(memories: Memories, agent_id: int) -> None:
    """The worker's on-mind path on the real store: `recent(since=)` reads one simulated day
    (speed 96: 900 s), newest first, and the host's plan outlasts a flood of small talk."""
    now = time.time()
    window = on_mind_window(96.0)
    plan = mem(agent_id, "My plan: a party at the harbour cafe on Saturday", importance=9, at=now - 0.5 * window)
    stale = mem(agent_id, "Ben said in #tech: the bridge closes for a week", importance=10, at=now - 2 * window)
    chatter = [mem(agent_id, f"Ana said in #food: the soup is fine {i}", importance=6, at=now - i) for i in range(40)]
    memories.store.add([plan, stale, *chatter])
    recent = await memories.recent(agent_id, 400, since=now - window)
    assert stale.id not in {m.id for m in recent} and plan.id in {m.id for m in recent}
    assert [m.created_at for m in recent] == sorted((m.created_at for m in recent), reverse=True)
    assert on_mind(recent, now=now, sim_speed=96.0).text == "My plan: a party at the harbour cafe on Saturday"  # type: ignore[union-attr]


def test_search_filters_by_kind_and_person(memories: Memories, agent_id: int) -> None:
    now = time.time()
    memories.store.add([mem(agent_id, "Ana bakes sourdough", at=now, about=(7,)),
                        mem(agent_id, "Bob bakes sourdough too", at=now, about=(8,)),
                        mem(agent_id, "I reflect that baking brings people together", at=now, kind=Kind.REFLECTION)])
    about_ana = memories.store.search(agent_id, "sourdough", now, k=5, about=7)
    assert [s.memory.about for s in about_ana] == [(7,)]
    reflections = memories.store.search(agent_id, "sourdough", now, k=5, kinds=[Kind.REFLECTION])
    assert [s.memory.kind for s in reflections] == [Kind.REFLECTION]
    assert memories.store.forget(agent_id, about=8) == 1
    assert memories.store.count(agent_id) == 2


# --- facts ---


def test_facts_are_extracted_from_self_statements_and_about_members() -> None:
    facts = extract_facts("I work at the lighthouse and I love sea shanties. Ana lives in Leeds.", speaker="Tom",
                          members={"Ana": 1, "Tom": 2})
    found = {(f.subject, f.predicate, f.object) for f in facts}
    assert ("Tom", "works at", "lighthouse") in found
    assert ("Tom", "likes", "sea shanties") in found
    assert ("Ana", "lives in", "leeds") in found
    hearsay = next(f for f in facts if f.subject == "Ana")
    assert hearsay.confidence < next(f for f in facts if f.subject == "Tom").confidence
    assert extract_facts("I love it", speaker="Tom") == []


def test_fact_confidence_decays_and_contradiction_lowers_it(memories: Memories, agent_id: int) -> None:
    t0 = time.time()
    ana = 77
    memories._learn(agent_id, Fact("Ana", "lives in", "leeds", 0.9), ana, t0, "message:1")
    first = memories.store.find(agent_id, {"kind": "fact"})[0]
    half_life = memories.half_life
    assert current_confidence(first, t0 + half_life, half_life) == pytest.approx(0.45, rel=1e-3)
    # the same message handled twice changes nothing; hearing it again from someone else raises it
    memories._learn(agent_id, Fact("Ana", "lives in", "leeds", 0.9), ana, t0 + 30, "message:1")
    assert memories.store.get(agent_id, [first.id])[0].confidence == pytest.approx(0.9)
    memories._learn(agent_id, Fact("Ana", "lives in", "leeds", 0.6), ana, t0 + 60, "message:2")
    again = memories.store.get(agent_id, [first.id])[0]
    assert again.confidence > 0.9
    # a contradicting fact lowers the old one; the new one stands
    memories._learn(agent_id, Fact("Ana", "lives in", "york", 0.9), ana, t0 + 120, "message:3")
    facts = {m.object: m for m in memories.store.find(agent_id, {"kind": "fact"})}
    assert facts["leeds"].confidence < 0.5 < facts["york"].confidence
    # likes vs dislikes of the same thing contradict too
    memories._learn(agent_id, Fact("Ana", "likes", "jazz", 0.9), ana, t0 + 130, "message:4")
    memories._learn(agent_id, Fact("Ana", "dislikes", "jazz", 0.9), ana, t0 + 140, "message:5")
    facts = {(m.predicate, m.object): m for m in memories.store.find(agent_id, {"kind": "fact"})}
    assert facts[("likes", "jazz")].confidence < facts[("dislikes", "jazz")].confidence
    # a stale fact sinks in retrieval: its importance counts at its current confidence
    later = t0 + 10 * half_life
    scored = memories.store.search(agent_id, "where does Ana live", later, k=3, kinds=[Kind.FACT])
    assert scored and all(s.memory.kind is Kind.FACT for s in scored)


async def test_an_observation_is_remembered_once_by_each_witness(memories: Memories, agent_id: int) -> None:
    other = agent_id + 1
    try:
        seen = Seen(message_id=random.randrange(10**17, 10**18), channel_id=9, channel_name="market", author_id=5, author_name="Rosa",
                    content="I work at the flower stall, come by on Saturday!", at=time.time(), mentions=frozenset({agent_id}),
                    member_ids={"Rosa": 5}, guild_id=random.randrange(10**15, 10**16))
        gained = await memories.observe(seen, [agent_id, other], {5: "Rosa", agent_id: "Me", other: "Other"})
        assert await memories.observe(seen, [agent_id, other], {5: "Rosa"}) == {}  # the event handled twice: still one memory each
        assert await memories.count(agent_id) == 2  # the observation and the fact
        assert gained[agent_id] > gained[other]  # being spoken to matters more
        texts = {m.kind: m.text for m in await memories.recent(agent_id, 10)}
        assert texts[Kind.OBSERVATION] == "Rosa spoke to me in #market: I work at the flower stall, come by on Saturday!"
        assert texts[Kind.FACT] == "Rosa works at flower stall"
        assert {m.kind: m.text for m in await memories.recent(other, 10)}[Kind.OBSERVATION] == \
            "Rosa said in #market: I work at the flower stall, come by on Saturday!"
    finally:
        await memories.drop_agent(other)


def test_importance_heuristic_and_rating_parser() -> None:
    assert heuristic_importance("lol") == 1.0
    small = heuristic_importance("the weather is fine")
    news = heuristic_importance("Isabella is throwing a party on Friday, you are invited!")
    assert news > small
    # several news cues (a party, a day, an invitation) make it notable enough to bring up (news.py: NOTABLE)
    assert news >= 6.0 > heuristic_importance("The bakery closes early tomorrow")
    assert heuristic_importance("the weather is fine", addressed=True) > small
    assert parse_rating("I would say 7.") == 7.0
    assert parse_rating("10") == 10.0
    assert parse_rating("no idea") is None


# --- consolidation and reflection ---


def test_consolidation_keeps_memory_bounded_and_keeps_facts(memories: Memories, agent_id: int) -> None:
    now = time.time()
    chatter = [mem(agent_id, f"Ana said in #market: the pears are lovely today, number {i}", at=now - 50 * HOUR + i * 60,
                   about=(7,), channel_id=3) for i in range(50)]
    fact = mem(agent_id, "Ana works at bakery", kind=Kind.FACT, at=now - 100 * HOUR, about=(7,), subject="Ana",
               predicate="works at", object="bakery", confidence=0.9, confirmed_at=now - 100 * HOUR)
    memories.store.add([*chatter, fact])
    done = consolidate(memories.store, agent_id, 30, names={7: "Ana"}, channel_names={3: "market"}, now=now)
    assert done["before"] == 51 and done["after"] <= 30
    kinds = [m.kind for m in memories.store.find(agent_id)]
    assert Kind.SUMMARY in kinds and Kind.FACT in kinds
    summary = next(m for m in memories.store.find(agent_id) if m.kind is Kind.SUMMARY)
    assert summary.text.startswith("In #market on ") and "Ana" in summary.text and "pears" in summary.text
    # under the bound: nothing happens
    assert consolidate(memories.store, agent_id, 1000, now=now)["after"] == done["after"]


def test_a_reflection_from_the_record_names_people_and_topics() -> None:
    now = time.time()
    recent = [mem(1, f"Ana said in #garden: the roses need pruning {i}", at=now - i, about=(7,)) for i in range(5)]
    written = record_reflection(1, recent, {7: "Ana"}, now)
    assert written is not None and written.kind is Kind.REFLECTION
    assert "Ana" in written.text and "roses" in written.text and written.about == (7,)


# --- the invented-tie guard ---


def test_the_guard_drops_ties_and_facts_memory_does_not_support() -> None:
    names = {"Ana": 7, "Bob Stone": 8}
    text = "My best friend Ana would love this. Bob works at the mill. The weather is lovely."
    kept, dropped = guard(text, own_name="Tom", names=names, bonds={7: None, 8: None}, bio="", knowledge={})
    assert kept == "The weather is lovely."
    assert {c.kind for c in dropped} == {"friend", "fact"}
    # supported by the record: a real friendship and a remembered fact
    friend = Bond(affinity=0.6, familiarity=0.5, trust=0.7)
    kept, dropped = guard(text, own_name="Tom", names=names, bonds={7: friend, 8: None}, bio="",
                          knowledge={8: ["Bob Stone works at mill"]})
    assert kept == text and dropped == []
    # family needs the bio or a memory, never just warmth
    kept, _ = guard("My sister Ana is visiting.", own_name="Tom", names=names, bonds={7: friend}, bio="", knowledge={})
    assert kept is None
    kept, _ = guard("My sister Ana is visiting.", own_name="Tom", names=names, bonds={7: None},
                    bio="Tom lives with his sister Ana above the shop.", knowledge={})
    assert kept == "My sister Ana is visiting."
    assert find_claims("I can't stand Ana.", own_name="Tom", members=names)[0].kind == "hate"
    assert find_claims("Nothing about anyone here.", own_name="Tom", members=names) == []


# --- relationships ---


def test_relationships_move_in_the_right_direction() -> None:
    r = Relations()
    ana, bob, cy = 1, 2, 3
    for i in range(5):  # warm, returned exchanges
        r.addressed(ana, bob, 0.8, at=100.0 + i * 10, guild_id=9)
        r.addressed(bob, ana, 0.7, at=105.0 + i * 10, guild_id=9)
    ab, ba = r.get(ana, bob), r.get(bob, ana)
    assert ab is not None and ba is not None
    assert ab.affinity > 0.2 and ba.affinity > 0.2 and ab.familiarity > 0.3 and ab.trust > 0.55
    for i in range(5):  # hostile, one-sided
        r.addressed(cy, ana, -0.9, at=200.0 + i * 10, guild_id=9)
    ac = r.get(ana, cy)
    assert ac is not None and ac.affinity < -0.2 and ac.trust < 0.5
    # reactions: a thumbs up warms the author to the reactor, a thumbs down cools them
    r.reacted(cy, bob, "👍", 300.0, 9)
    r.reacted(ana, cy, "👎", 300.0, 9)
    assert r.affinity(bob, cy) > 0 and r.affinity(cy, ana) < 0
    assert describe(ab, "Bob").startswith(("Bob is a good friend", "you like Bob"))
    assert describe(ac, "Cy").startswith(("you find Cy difficult", "you are a bit wary of Cy"))
    assert describe(None, "Dee") == "you hardly know Dee"
    saved = r.take_dirty()
    assert {(s, t) for _, s, t, _ in saved} >= {(ana, bob), (bob, ana), (ana, cy), (cy, ana)}
    assert all(g == 9 for g, _, _, _ in saved) and r.take_dirty() == []


async def test_memories_that_shape_a_reply_gain_importance(memories: Memories, agent_id: int) -> None:
    now = time.time()
    helpful = mem(agent_id, "Rosa said in #market: the cherry harvest starts on Monday", importance=4, at=now)
    idle = mem(agent_id, "Tom said in #general: the bus was late", importance=4, at=now)
    memories.store.add([helpful, idle])
    assert await memories.reinforce_useful([helpful, idle], "Great, the cherry harvest is Monday, I'll bring baskets!") == 1
    after = {m.id: m for m in memories.store.get(agent_id, [helpful.id, idle.id])}
    assert after[helpful.id].importance == 4.5 and after[helpful.id].uses == 1
    assert after[idle.id].importance == 4 and after[idle.id].uses == 0
