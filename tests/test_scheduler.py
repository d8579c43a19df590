"""Turn-taking properties on a fake clock: the society neither explodes nor dies, bot chains
stop at the cap, humans are always answered, and decisions are reproducible."""

from __future__ import annotations

from collections import deque

import itertools
import random

from townsquare.agents.mind.clock import FakeClock, SimClock
from townsquare.agents.mind.policy import AgentInfo, ChannelState, Decision, Msg, PolicyConfig, SocietyState, TurnPolicy
from townsquare.agents.society.persona import load_society

TURN_SECONDS = 2.0  # simulated LLM + platform time of one turn


class Sim:
    """A society driven by the real policy, with agents' turns taking TURN_SECONDS and every
    decided turn posting (the worst case for explosion)."""

    def __init__(self, society: str, config: PolicyConfig, *, speed: float = 1.0, humans: float = 0.0, seed: int = 1) -> None:
        spec = load_society(society)
        self.clock = FakeClock()
        self.state = SocietyState(SimClock(self.clock, epoch=self.clock.now(), speed=speed, start_hour=9.0),
                                  chain_rest_seconds=config.chain_rest_seconds)
        self.policy = TurnPolicy(config)
        self.config = config
        self.guild = 1
        self.ids = itertools.count(1000)
        self.channels = [self.state.set_channel(ChannelState(10 + i, self.guild, c.name, c.topic)) for i, c in enumerate(spec.channels)]
        for i, persona in enumerate(spec.agents):
            self.state.set_agent(AgentInfo(100 + i, self.guild, persona))
        self.state.topics[self.guild] = spec.revival_topics
        self.names = {a.id: a.persona.name for a in self.state.agents.values()}
        self.log: list[tuple[float, int, int, bool]] = []  # (at, channel, author, bot)
        self.pending: list[tuple[float, Decision]] = []
        self.humans, self.rng = humans, random.Random(seed)
        self.authors: dict[int, int] = {}

    def post(self, channel_id: int, author: int, bot: bool, content: str, mentions: frozenset[int] = frozenset(),
             reply_to: int | None = None) -> None:
        msg = Msg(next(self.ids), channel_id, self.guild, author, self.names.get(author, "human"), bot, content, self.clock.now(),
                  mentions, reply_to)
        self.state.observe(msg)
        self.authors[msg.id] = author
        self.log.append((msg.at, channel_id, author, bot))
        busy = {d.agent_id for _, d in self.pending}
        for decision in self.policy.on_message(self.state, msg):
            if decision.direct or decision.agent_id not in busy:  # a direct reply waits for the agent, never drops
                self.pending.append((self.clock.now() + TURN_SECONDS, decision))

    def run(self, seconds: float, step: float = 1.0) -> None:
        end = self.clock.now() + seconds
        while self.clock.now() < end:
            self.clock.advance(step)
            due = [d for at, d in self.pending if at <= self.clock.now()]
            self.pending = [(at, d) for at, d in self.pending if at > self.clock.now()]
            for d in due:  # answers are replies, as the worker posts them
                self.post(d.channel_id, d.agent_id, True, f"a thought about {d.subject or 'that'} number {self.rng.random()}",
                          reply_to=self.authors.get(d.reply_to_message) if d.reply_to_message else None)
            busy = {d.agent_id for _, d in self.pending}
            for d in self.policy.revivals(self.state):
                if d.agent_id not in busy:
                    self.pending.append((self.clock.now() + TURN_SECONDS, d))
            if self.humans and self.rng.random() < self.humans * step:
                self.post(self.rng.choice(self.channels).id, 1, False, "hello neighbours, how is everyone doing today?")


CONFIG = PolicyConfig(chain_cap=6, channel_budget_per_minute=6, cooldown_seconds=20, revive_idle_seconds=120)


def test_no_explosion_and_no_death_over_simulated_hours() -> None:
    sim = Sim("village", CONFIG, humans=1 / 600)
    sim.run(4 * 3600)  # 09:00 to 13:00: someone is always awake
    assert sim.log, "nobody ever spoke"
    for channel in sim.channels:
        times = [at for at, c, _, bot in sim.log if c == channel.id and bot]
        # no explosion: never more agent messages in a minute than the budget allows
        window = 0
        for i, at in enumerate(times):
            while times[window] < at - 60:
                window += 1
            assert i - window + 1 <= CONFIG.channel_budget_per_minute
        # no death: no silence much longer than the revival threshold (jitter 1.25, a turn, a tick)
        stamps = [sim.clock.t - 4 * 3600] + [at for at, c, _, _ in sim.log if c == channel.id] + [sim.clock.t]
        longest = max(b - a for a, b in zip(stamps, stamps[1:]))
        assert longest <= CONFIG.revive_idle_seconds * 1.25 + 60 + TURN_SECONDS, (channel.name, longest)
    per_minute = len(sim.log) / (4 * 60)
    assert 0.5 <= per_minute <= CONFIG.channel_budget_per_minute * len(sim.channels)


def test_bot_chains_stop_at_the_cap() -> None:
    sim = Sim("city", CONFIG)
    sim.run(2 * 3600)
    for channel in sim.channels:
        chain, last = 0, None
        for at, c, _, bot in sim.log:
            if c != channel.id:
                continue
            if last is not None and at - last >= sim.state.chain_rest_seconds:
                chain = 0
            chain = chain + 1 if bot else 0
            last = at
            assert chain <= CONFIG.chain_cap + 1, channel.name  # the cap, plus the reply that was already due


def test_a_human_mention_is_always_answered_even_at_the_cap() -> None:
    sim = Sim("village", CONFIG)
    channel = sim.channels[0]
    agent = next(iter(sim.state.agents.values()))
    for _ in range(CONFIG.chain_cap + 2):  # a long bot chain first
        sim.post(channel.id, 999, True, "bot talk")
    sim.clock.advance(1)
    sim.post(channel.id, 1, False, "what do you think?", mentions=frozenset({agent.id}))
    assert [d.agent_id for _, d in sim.pending if d.direct] == [agent.id]


def test_bots_addressing_agents_stop_at_the_cap() -> None:
    sim = Sim("village", CONFIG)
    channel = sim.channels[0]
    agent = next(iter(sim.state.agents.values()))
    for _ in range(CONFIG.chain_cap):
        sim.post(channel.id, 999, True, "bot talk")
    sim.pending.clear()
    sim.post(channel.id, 999, True, "hey you", mentions=frozenset({agent.id}))
    assert not sim.pending


def test_an_agent_handing_a_persons_question_on_reaches_who_it_names_even_at_the_cap() -> None:
    sim = Sim("village", CONFIG)
    channel = sim.channels[0]
    first, expert = list(sim.state.agents.values())[:2]
    for _ in range(CONFIG.chain_cap):
        sim.post(channel.id, 999, True, "bot talk")
    sim.pending.clear()
    # "Not sure, Sam. Ask @Tobias.": an agent's reply to a person (1), mentioning the one who knows
    sim.post(channel.id, first.id, True, "not sure, ask him", mentions=frozenset({expert.id}), reply_to=1)
    assert [d.agent_id for _, d in sim.pending if d.direct] == [expert.id]


def test_paused_society_and_sleeping_agents_stay_silent() -> None:
    sim = Sim("village", CONFIG)
    sim.state.paused_guilds.add(sim.guild)
    sim.run(1800)
    assert not sim.log
    night = Sim("village", CONFIG)
    night.clock.advance(-10 * 3600 / 1.0)  # the society was founded 14 hours of simulated time "later": it is 23:00
    night.state.sim.epoch = night.clock.now() - 14 * 3600
    awake = [a for a in night.state.agents.values() if a.persona.rhythm.activity(night.state.sim.hour()) > 0]
    night.run(1800)
    speakers = {author for _, _, author, _ in night.log}
    assert speakers <= {a.id for a in awake}


def test_a_revival_that_came_to_nothing_is_retried_differently() -> None:
    """A quiet channel whose opener failed (nothing posted) is revived again later by another
    draw: the same agent with the same subject and seed would fail the same way forever."""
    sim = Sim("city", CONFIG)
    sim.clock.advance(CONFIG.revive_idle_seconds * 2)
    channel = sim.channels[0]
    draws = []
    for _ in range(12):
        decision = next((d for d in sim.policy.revivals(sim.state) if d.channel_id == channel.id), None)
        sim.clock.advance(CONFIG.revive_idle_seconds)  # past the pending window; nothing was posted
        if decision is not None:
            draws.append((decision.agent_id, decision.subject, decision.attempt))
    assert len(draws) >= 2 and len({d[2] for d in draws}) == len(draws)  # every retry is a new attempt
    assert len({(a, s) for a, s, _ in draws}) > 1  # ... with another speaker or subject


def test_a_revival_topic_is_not_asked_again_until_half_the_list_had_its_turn() -> None:
    sim = Sim("village", CONFIG)
    sim.clock.advance(CONFIG.revive_idle_seconds * 2)
    channel = sim.channels[0]
    topics = sim.state.topics[sim.guild]
    subjects = []
    for _ in range(len(topics)):
        decision = next((d for d in sim.policy.revivals(sim.state) if d.channel_id == channel.id), None)
        sim.clock.advance(CONFIG.revive_idle_seconds)
        if decision is not None:
            subjects.append(decision.subject)
    window = len(topics) // 2
    assert len(subjects) > window
    assert all(s not in subjects[max(0, i - window):i] for i, s in enumerate(subjects)), subjects


def test_a_revival_topic_asked_in_one_channel_is_not_asked_in_the_next() -> None:
    sim = Sim("village", CONFIG)
    sim.clock.advance(CONFIG.revive_idle_seconds * 2)
    topics = sim.state.topics[sim.guild] = sim.state.topics[sim.guild][:8]  # fewer topics than four channels' revivals
    subjects = []
    revived = set()
    for _ in range(3 * len(topics)):
        for d in sim.policy.revivals(sim.state):
            subjects.append(d.subject)
            channel = sim.state.channels[d.channel_id]
            channel.last_at, channel.revive_pending_until = sim.state.now, 0.0  # the opener was posted
            revived.add(channel.name)
        sim.clock.advance(CONFIG.revive_idle_seconds / 2)
    window = len(topics) // 2
    assert len(revived) > 1 and len(subjects) > window
    assert all(s not in subjects[max(0, i - window):i] for i, s in enumerate(subjects)), subjects


def test_a_topical_channel_is_revived_with_a_topic_of_its_own() -> None:
    from townsquare.worker.runtime.relevance import keyword_text_relevance

    sim = Sim("village", CONFIG)
    sim.policy.fits = keyword_text_relevance
    sim.clock.advance(CONFIG.revive_idle_seconds * 2)
    garden = next(c for c in sim.channels if c.name == "garden")
    garden.topic = "gardening, planting, slugs, tomatoes and window boxes"
    subjects = []
    for _ in range(6):
        decision = next((d for _ in sim.channels for d in sim.policy.revivals(sim.state) if d.channel_id == garden.id), None)
        sim.clock.advance(CONFIG.revive_idle_seconds)
        if decision is not None:
            subjects.append(decision.subject)
    assert subjects and all(keyword_text_relevance(s, garden.topic) > 0 for s in subjects[:3]), subjects


def test_a_topical_channels_own_topic_wins_over_the_societys_rotation() -> None:
    """Its own questions asked elsewhere lately, #garden still gets one of them, not another channel's."""
    from townsquare.worker.runtime.relevance import keyword_text_relevance

    sim = Sim("village", CONFIG)
    sim.policy.fits = keyword_text_relevance
    sim.clock.advance(CONFIG.revive_idle_seconds * 2)
    garden = next(c for c in sim.channels if c.name == "garden")
    garden.topic = "gardening, planting, slugs, tomatoes and window boxes"
    own = ["Best way to keep slugs off the tomatoes?", "What are you planting in your window boxes?"]
    sim.state.topics[sim.guild] = [*own, "Which old photograph of the square do you like best?", "Favourite pub quiz round?",
                                   "Best bread for a Sunday breakfast?", "Who remembers the great flood?"]
    sim.state.topics_raised_in_guild.setdefault(sim.guild, deque(maxlen=3)).extend(own)  # asked in other channels lately
    for c in sim.channels:  # only #garden is quiet (another channel's revival would push them out of the society's memory)
        if c.id != garden.id:
            c.last_at = sim.state.now + 10**6
    decision = None
    for _ in range(20):
        for d in sim.policy.revivals(sim.state):
            if d.channel_id == garden.id and decision is None:
                decision = d
            channel = sim.state.channels[d.channel_id]
            channel.last_at, channel.revive_pending_until = sim.state.now, 0.0  # the opener was posted
        if decision is not None:
            break
        sim.clock.advance(CONFIG.revive_idle_seconds / 2)
    assert decision is not None and decision.subject in own, decision


def test_a_channel_whose_regulars_all_sleep_is_revived_by_someone_awake() -> None:
    sim = Sim("village", CONFIG)
    sim.clock.advance(CONFIG.revive_idle_seconds * 2)
    history = next(c for c in sim.channels if c.name == "history")
    regulars = {a.id for a in sim.state.followers(history)}
    for agent_id in regulars:  # asleep as far as the policy is concerned: resting for the night
        sim.state.agents[agent_id].resting_until = sim.state.now + 8 * 3600
    decisions = [d for _ in sim.channels for d in sim.policy.revivals(sim.state)]  # one channel per society per call
    decision = next(d for d in decisions if d.channel_id == history.id)
    assert decision.agent_id not in regulars and sim.state.active(sim.state.agents[decision.agent_id])
    # the whole society asleep: the channel stays quiet (nobody is up to talk)
    for agent in sim.state.agents.values():
        agent.resting_until = sim.state.now + 8 * 3600
    sim.clock.advance(CONFIG.revive_idle_seconds * 2)
    assert not [d for _ in sim.channels for d in sim.policy.revivals(sim.state)]


def test_decisions_are_reproducible_for_a_retried_event() -> None:
    a, b = Sim("city", CONFIG), Sim("city", CONFIG)
    for sim in (a, b):
        sim.post(sim.channels[1].id, 1, False, "who wants to talk about music and painting tonight?")
    assert [d for _, d in a.pending] == [d for _, d in b.pending]
    assert all(d.nonce.startswith("ev") for _, d in a.pending)
