"""What is on an agent's mind (agents/memory/news.py): the news it opens a conversation with."""

from __future__ import annotations

from townsquare.agents.memory.model import Kind, Memory
from townsquare.agents.memory.news import on_mind, on_mind_window

NOW = 1_800_000_000.0
SPEED = 96.0  # a simulated day in 900 real seconds
DAY = on_mind_window(SPEED)


def _m(text: str, importance: float, age: float, kind: Kind = Kind.OBSERVATION) -> Memory:
    return Memory(id=f"m{text[:8]}{age}", agent_id=1, kind=kind, text=text, importance=importance,
                  created_at=NOW - age, last_access=NOW - age)


def test_a_plan_stays_on_the_mind_through_the_day() -> None:
    plan = _m("My plan: I am throwing a party at the harbour cafe on Saturday", 9, age=0.6 * DAY)
    chatter = [_m(f"Ana said in #food: nice soup {i}", 6, age=i) for i in range(50)]
    assert on_mind([*chatter, plan], now=NOW, sim_speed=SPEED) is plan


def test_fresher_news_wins_between_equals_and_old_news_is_no_news() -> None:
    old = _m("Ben said in #tech: the bridge closes", 7, age=0.9 * DAY)
    fresh = _m("Ana said in #art: the gallery reopens", 7, age=10)
    assert on_mind([old, fresh], now=NOW, sim_speed=SPEED) is fresh
    assert on_mind([_m("Ben said in #tech: the bridge closes", 9, age=1.1 * DAY)], now=NOW, sim_speed=SPEED) is None


def test_only_notable_observations_and_reflections_count() -> None:
    assert on_mind([_m("Ana said in #food: hello", 3, age=5)], now=NOW, sim_speed=SPEED) is None
    assert on_mind([_m("Ana likes tea", 8, age=5, kind=Kind.FACT)], now=NOW, sim_speed=SPEED) is None
    reflection = _m("Most of my friends care about the harbour", 7, age=5, kind=Kind.REFLECTION)
    assert on_mind([reflection], now=NOW, sim_speed=SPEED) is reflection


def test_a_simulated_day_is_shorter_at_higher_speeds() -> None:
    assert on_mind_window(1.0) == 86_400.0 and on_mind_window(96.0) == 900.0
