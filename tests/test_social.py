"""Social actions decided in code, on a fake clock: reactions, threads for long exchanges,
private messages to friends, channels for groups with a shared interest; and the subgroups
that Louvain finds when agents talk mostly within their interest clusters."""

from __future__ import annotations

from townsquare.agents.mind.policy import ChannelState, Msg, PolicyConfig, channel_slug
from townsquare.agents.mind.relations import Bond
from townsquare.agents.society.graph import Member, Tie, analyse

from .test_scheduler import Sim

CONFIG = PolicyConfig(chain_cap=6, channel_budget_per_minute=6, cooldown_seconds=20, revive_idle_seconds=120, reaction_rate=0.5)


def _msg(sim: Sim, channel: int, author: int, content: str, reply_to: int | None = None, bot: bool = False) -> Msg:
    msg = Msg(next(sim.ids), channel, sim.guild, author, sim.names.get(author, "human"), bot, content, sim.clock.now(),
              frozenset(), reply_to)
    sim.state.observe(msg)
    return msg


def test_reactions_are_few_reproducible_and_show_feeling() -> None:
    sim = Sim("village", CONFIG)
    general = sim.channels[0]
    cheerful = _msg(sim, general.id, 1, "What a wonderful, lovely morning, thank you all!")
    first = sim.policy.reactions(sim.state, cheerful)
    assert 0 < len(first) <= 2 and first == sim.policy.reactions(sim.state, cheerful)  # seeded: a retried event reacts the same
    assert all(r.emoji in {"👍", "❤️", "😄", "🎉", "👏"} and r.agent_id != 1 for r in first)
    # dislike shows: an agent who finds the author difficult rolls its eyes
    grumpy = first[0].agent_id
    sim.state.relations.load(grumpy, 1, Bond(affinity=-0.8, familiarity=0.6, trust=0.2), sim.guild)
    seen = [r for _ in range(30) for r in sim.policy.reactions(sim.state, _msg(sim, general.id, 1, "Another lovely day, thank you!"))
            if r.agent_id == grumpy]
    assert seen and all(r.emoji == "🙄" for r in seen)
    # no reactions in DMs, none to empty messages, none when social actions are off
    dm = sim.state.set_channel(ChannelState(999, sim.guild, "dm", None, frozenset({1, 100})))
    assert sim.policy.reactions(sim.state, _msg(sim, dm.id, 1, "lovely, thank you!")) == []
    off = Sim("village", PolicyConfig(social=False, reaction_rate=10))
    assert off.policy.reactions(off.state, _msg(off, off.channels[0].id, 1, "wonderful, thank you!")) == []


def test_a_long_back_and_forth_moves_into_a_thread() -> None:
    sim = Sim("village", CONFIG)
    general, agent, human = sim.channels[0], 100, 1
    last = _msg(sim, general.id, human, f"<@{agent}> what do you think of the new bakery?")
    decisions = []
    for i in range(3):
        reply = _msg(sim, general.id, agent, f"I think it is lovely, number {i}", reply_to=human, bot=True)
        last = _msg(sim, general.id, human, f"really? tell me more {i}", reply_to=agent)
        sim.clock.advance(30)
        decisions = sim.policy.on_message(sim.state, last)
        if i < 1:
            assert not any(d.in_thread for d in decisions)
    assert reply and any(d.agent_id == agent and d.trigger == "reply" and d.in_thread for d in decisions)
    # someone else speaking ends the exchange
    _msg(sim, general.id, 101, "hello all", bot=True)
    assert sim.state.channels[general.id].exchange_len == 0
    # inside a thread, no thread of a thread; and threads are never revived
    thread = sim.state.set_channel(ChannelState(5000, sim.guild, "a talk", None))
    thread.parent = "general"
    assert all(c.parent is None for c in [sim.state.channels[d.channel_id] for d in sim.policy.revivals(sim.state)])


def test_agents_write_privately_to_friends_and_open_channels_for_shared_interests() -> None:
    sim = Sim("city", CONFIG)
    agents = sorted(sim.state.agents.values(), key=lambda a: a.id)
    assert sim.policy.outreach(sim.state, 600) == []  # the first period starts now (and nobody has friends yet)
    a = agents[0]
    friends = [b for b in agents[1:] if set(b.persona.interests) & set(a.persona.interests)][:3]
    for b in friends:
        sim.state.relations.load(a.id, b.id, Bond(affinity=0.5, familiarity=0.5, trust=0.6), sim.guild)
        sim.state.relations.load(b.id, a.id, Bond(affinity=0.4, familiarity=0.5, trust=0.6), sim.guild)
    sim.clock.advance(700)
    reach = sim.policy.outreach(sim.state, 600)
    assert len(reach) == 1 and reach[0].trigger == "reach" and reach[0].invitees[0] in {b.id for b in agents}
    assert sim.policy.outreach(sim.state, 600) == []  # once per period per society
    # founding: two or more friends share an interest of an outgoing, curious agent
    sim.state.last_founding[sim.guild] = float("-inf")  # due now
    found = sim.policy.founding(sim.state, 1800, max_channels=16)
    if found:
        decision = found[0]
        assert decision.trigger == "found" and len(decision.invitees) >= 2
        founder = sim.state.agents[decision.agent_id]
        assert all(decision.subject in sim.state.agents[i].persona.interests for i in decision.invitees)
        assert decision.subject in founder.persona.interests
        # the channel exists now: not opened twice
        sim.state.set_channel(ChannelState(7000, sim.guild, channel_slug(decision.subject or ""), None))
        sim.clock.advance(2000)
        again = sim.policy.founding(sim.state, 1800, max_channels=16)
        assert all(d.subject != decision.subject for d in again)
    # make sure one founding is possible with shared interests among close friends
    shared = "vinyl records"
    fans = [x for x in agents if shared in x.persona.interests]
    lead = max(fans, key=lambda x: x.persona.traits.openness + x.persona.traits.extraversion)
    for f in fans:
        if f.id != lead.id:
            sim.state.relations.load(lead.id, f.id, Bond(affinity=0.6, familiarity=0.6, trust=0.6), sim.guild)
    sim.clock.advance(2000)
    opened = sim.policy.founding(sim.state, 1800, max_channels=16)
    assert any(d.agent_id == lead.id and d.subject in lead.persona.interests for d in opened)
    assert sim.policy.founding(sim.state, 0, max_channels=len(sim.state.channels)) == []  # the cap holds
    assert channel_slug("The City at Night!") == "the-city-at-night"


def test_interest_clusters_become_communities() -> None:
    """Agents of the 25-agent society talk mostly with those who share their channels; the
    relationships that result split into five or more communities."""
    sim = Sim("city", CONFIG, speed=1.0, seed=3)
    sim.run(3 * 3600)
    members = [Member(a.id, a.persona.name, bot=True, agent=True) for a in sim.state.agents.values()]
    ties = [Tie(s, t, b.affinity, b.familiarity, b.trust, b.interactions, b.rating) for (s, t), b in sim.state.relations.bonds.items()
            if s in sim.state.agents and t in sim.state.agents]
    snapshot = analyse(members, ties, {})
    assert snapshot.metrics["community_count"] >= 5, snapshot.metrics
