"""Homophily in turn-taking, on a fake clock: agents mostly take up the words of those they like,
know and share interests with; humans are taken up whatever the ties."""

from __future__ import annotations

from collections import Counter

from townsquare.agents.mind.homophily import STRANGER, interest_overlap, pull
from townsquare.agents.mind.policy import Msg, PolicyConfig
from townsquare.agents.mind.relations import Bond

from .test_scheduler import Sim

CONFIG = PolicyConfig(chain_cap=6, channel_budget_per_minute=6, cooldown_seconds=20, revive_idle_seconds=120)


def test_interest_overlap_counts_shared_and_related_interests() -> None:
    assert interest_overlap(["cooking", "street food"], ["Street Food", "coffee"]) == 0.5  # one of two, case aside
    assert interest_overlap(["spicy food"], ["street food", "jazz"]) == 0.5  # related: a content word in common
    assert interest_overlap(["the city at night"], ["the library", "at home"]) == 0.0  # "the", "at" are no common ground
    assert interest_overlap(["jazz"], ["piano", "jazz", "vinyl records"]) == 1.0  # the shorter list, all shared
    assert interest_overlap(["a", "b c"], ["c", "d"]) == interest_overlap(["c", "d"], ["a", "b c"])
    assert interest_overlap([], ["jazz"]) == interest_overlap(["jazz"], []) == 0.0


def test_pull_ranks_friends_like_minded_strangers_and_the_disliked() -> None:
    friend = pull(Bond(affinity=0.5, familiarity=0.6), 0.4)
    like_minded = pull(None, 0.4)
    unlike = pull(None, 0.0)
    disliked = pull(Bond(affinity=-0.8, familiarity=0.6), 0.0)
    assert friend > like_minded > unlike > disliked > 0
    assert friend / unlike > 3  # strong enough to shape who talks with whom
    assert pull(None, None) == STRANGER  # interests unknown (a human): neither like nor unlike


def _picks(sim: Sim, author: int, channel: int, rounds: int) -> Counter[int]:
    """Who takes up `rounds` messages of `author` in `channel`, each after a pause (no chain,
    no budget used, nobody cooling down)."""
    picked: Counter[int] = Counter()
    for _ in range(rounds):
        sim.clock.advance(61)
        msg = Msg(next(sim.ids), channel, sim.guild, author, sim.names.get(author, "human"), author in sim.names,
                  "what a morning, anyone around?", sim.clock.now())
        sim.state.observe(msg)
        picked.update(d.agent_id for d in sim.policy.on_message(sim.state, msg) if d.trigger == "roll")
    return picked


def test_agents_mostly_answer_those_they_get_on_with_and_resemble() -> None:
    by_name = {a.persona.name.split()[0]: a.id for a in Sim("city", CONFIG).state.agents.values()}
    general = next(c.id for c in Sim("city", CONFIG).channels if c.name == "general")
    # #general: Kwame (a cyclist and runner) shares most with Nadia; Dev, Sofia, Zara share nothing with him
    alike, unlike = {by_name["Nadia"]}, {by_name[n] for n in ("Dev", "Sofia", "Zara")}
    plain = _picks(Sim("city", PolicyConfig(**{**CONFIG.__dict__, "homophily": 0.0})), by_name["Kwame"], general, 150)
    homophilous = _picks(Sim("city", CONFIG), by_name["Kwame"], general, 150)
    share = lambda c, who: sum(c[i] for i in who) / sum(c.values())  # noqa: E731
    assert sum(homophilous.values()) >= 140  # someone nearly always takes it up
    assert share(homophilous, alike) > share(plain, alike) + 0.1, (homophilous, plain)
    assert share(homophilous, unlike) < share(plain, unlike), (homophilous, plain)
    assert homophilous.most_common(1)[0][0] == by_name["Nadia"]
    # a friendship outweighs having nothing in common: Zara becomes Kwame's good friend
    befriended = Sim("city", CONFIG)
    befriended.state.relations.load(by_name["Zara"], by_name["Kwame"], Bond(affinity=0.7, familiarity=0.7, trust=0.7), befriended.guild)
    with_friend = _picks(befriended, by_name["Kwame"], general, 150)
    assert with_friend[by_name["Zara"]] > 2 * homophilous[by_name["Zara"]], (with_friend, homophilous)
    # reactions follow the same pull: the like-minded react to Kwame more than those with nothing in common
    sim = Sim("city", PolicyConfig(**{**CONFIG.__dict__, "reaction_rate": 0.5}))
    reacted: Counter[int] = Counter()
    for _ in range(300):
        sim.clock.advance(61)
        msg = Msg(next(sim.ids), general, sim.guild, by_name["Kwame"], "Kwame Mensah", True, "a ride along the harbour", sim.clock.now())
        sim.state.observe(msg)
        reacted.update(r.agent_id for r in sim.policy.reactions(sim.state, msg))
    assert reacted[by_name["Nadia"]] > max(reacted[i] for i in unlike), reacted


def test_a_human_is_taken_up_whatever_the_ties() -> None:
    """Dislike holds agents back from agents, never from people: a human's message is taken up
    exactly as if nobody had any feelings about them."""
    neutral, hostile = Sim("city", CONFIG), Sim("city", CONFIG)
    for agent in hostile.state.agents.values():
        hostile.state.relations.load(agent.id, 1, Bond(affinity=-0.9, familiarity=0.8, trust=0.1), hostile.guild)
    general = next(c.id for c in neutral.channels if c.name == "general")
    assert _picks(neutral, 1, general, 60) == _picks(hostile, 1, general, 60)
    assert sum(_picks(Sim("city", CONFIG), 1, general, 60).values()) == 60  # and always by someone
