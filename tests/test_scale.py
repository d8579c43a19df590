"""A thousand agents in one society (issue 18): lurkers cost nothing per message beyond
bookkeeping. On a fake clock, with the real policy: a message in a channel followed by 10 of
1,000 agents looks only at those 10 (rolls, moods, reactions), a quiet channel's revival only at
its followers; the follower index stays equal to a scan through every kind of change; a
member's ties are read without a scan of all ties; the gate checks only the members a line
names and judges as it did with the whole list; generated societies of any size validate, and
the society file's limit is a clear error."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from townsquare.agents.mind.clock import FakeClock, SimClock
from townsquare.agents.mind.policy import AgentInfo, ChannelState, Msg, PolicyConfig, SocietyState, TurnPolicy
from townsquare.agents.mind.relations import Bond, BondsOf, Relations
from townsquare.agents.society.generate import followers, generate
from townsquare.agents.society.persona import MAX_SOCIETY_AGENTS, Persona, Society
from townsquare.agents.turn.gate import GateContext, judge
from townsquare.agents.turn.roster import Roster

GUILD = 1


class CountingState(SocietyState):
    """Records every agent the policy looks at (each candidate is asked whether it is active)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.looked: set[int] = set()

    def active(self, agent: AgentInfo) -> bool:
        self.looked.add(agent.id)
        return super().active(agent)


def persona(i: int, homes: list[str], extraversion: float = 0.9) -> Persona:
    return Persona.model_validate({"name": f"Agent {i}", "bio": "lives here", "interests": ["gardening", "bread"],
                                   "traits": {"extraversion": extraversion, "agreeableness": 0.9},
                                   "rhythm": {"wake": 0, "sleep": 0, "peak": 12}, "home_channels": homes})


def society(clock: FakeClock, n: int = 1000, few: int = 10) -> tuple[CountingState, ChannelState, ChannelState, list[int]]:
    """`n` agents at home in #general, `few` of them in #garden as well."""
    state = CountingState(SimClock(clock, epoch=clock.now(), speed=1.0, start_hour=12.0))
    general = state.set_channel(ChannelState(10, GUILD, "general"))
    garden = state.set_channel(ChannelState(11, GUILD, "garden"))
    gardeners = list(range(100 + n - few, 100 + n))
    for i in range(100, 100 + n):
        state.set_agent(AgentInfo(i, GUILD, persona(i, ["general", "garden"] if i in gardeners else ["general"])))
    return state, general, garden, gardeners


def message(state: SocietyState, clock: FakeClock, channel: ChannelState, mid: int, content: str, author: int = 1,
            mentions: frozenset[int] = frozenset()) -> Msg:
    msg = Msg(mid, channel.id, GUILD, author, "Ana", False, content, clock.now(), mentions)
    state.observe(msg)
    return msg


def scan(state: SocietyState, channel: ChannelState) -> list[int]:
    """The followers as the old scan found them (DMs: their members)."""
    if channel.dm_recipients is not None:
        return [a.id for a in state.agents.values() if a.guild_id == channel.guild_id and a.id in channel.dm_recipients]
    return [a.id for a in state.agents.values() if a.guild_id == channel.guild_id and state._follows(a, channel)]


def test_a_message_in_a_channel_of_10_followers_looks_only_at_those_10_of_1000() -> None:
    clock = FakeClock(1_000_000.0)
    state, _general, garden, gardeners = society(clock)
    relevance_asked: list[int] = []

    def relevance(agent: AgentInfo, text: str) -> float:
        relevance_asked.append(agent.id)
        return 1.0

    policy = TurnPolicy(PolicyConfig(reaction_rate=1.0), relevance)
    state.looked.clear()
    msg = message(state, clock, garden, 5000, "What a wonderful harvest, I love these tomatoes!")  # a toned message moves moods
    assert state.dirty_moods == set(gardeners)  # only the channel's readers felt it
    decisions = policy.on_message(state, msg)
    reactions = policy.reactions(state, msg)
    assert state.looked == set(gardeners) and set(relevance_asked) == set(gardeners)  # rolled for the 10 alone
    assert decisions and {d.agent_id for d in decisions} <= set(gardeners)
    assert reactions and {r.agent_id for r in reactions} <= set(gardeners)
    assert decisions == policy.on_message(state, msg) and reactions == policy.reactions(state, msg)  # reproducible

    # a mention of an agent elsewhere looks at that agent, not at the society
    state.looked.clear()
    mentioned = message(state, clock, garden, 5001, "<@100> have you seen this?", mentions=frozenset({100}))
    direct = policy.on_message(state, mentioned)
    assert [d.trigger for d in direct] == ["mention"] and direct[0].agent_id == 100
    assert state.looked == {100}

    # the quiet #garden is revived by one of its followers, looking at nobody else
    clock.advance(10_000)
    state.looked.clear()
    state.channels.pop(10)  # #general stays out of it (one revival per society per call)
    revived = policy.revivals(state)
    assert [d.channel_id for d in revived] == [garden.id] and revived[0].agent_id in gardeners
    assert state.looked == set(gardeners)


def test_the_follower_index_equals_a_scan_through_every_kind_of_change() -> None:
    clock = FakeClock(1_000_000.0)
    state = SocietyState(SimClock(clock, epoch=clock.now()))
    rng = random.Random(3)
    names = ["general", "food", "music", "tech"]
    channels = [state.set_channel(ChannelState(10 + i, 1 + i % 2, n)) for i, n in enumerate(names)]
    thread = state.set_channel(ChannelState(20, 1, "a talk"))
    thread.parent = "food"
    dm = state.set_channel(ChannelState(21, 1, "dm", None, frozenset({105, 107, 999})))
    channels += [thread, dm]
    for step in range(600):
        agent_id = 100 + rng.randrange(40)
        op = rng.random()
        homes = rng.sample(names, rng.randrange(0, 3))
        if op < 0.45:
            state.agents[agent_id] = AgentInfo(agent_id, 1 + rng.randrange(2), persona(agent_id, homes))
        elif op < 0.6:
            state.agents.pop(agent_id, None)
        elif op < 0.8 and agent_id in state.agents:  # changed in place, as an initiative adds a home channel
            state.agents[agent_id].persona = persona(agent_id, homes)
        elif op < 0.9 and agent_id in state.agents:
            state.agents[agent_id].guild_id = 1 + rng.randrange(2)
        else:
            state.drop_agent(agent_id)
        for channel in channels:
            assert [a.id for a in state.followers(channel)] == scan(state, channel), (step, channel.name)
        for guild in (1, 2):
            assert [a.id for a in state.agents.of_guild(guild)] == [a.id for a in state.agents.values() if a.guild_id == guild]
    with pytest.raises(TypeError):
        state.agents.update({1: state.agents[next(iter(state.agents))]})


def test_a_members_ties_are_read_without_a_scan_and_in_the_order_they_formed() -> None:
    relations = Relations()
    rng = random.Random(5)
    for _ in range(500):
        a, b = rng.randrange(30), rng.randrange(30)
        if rng.random() < 0.7:
            relations.addressed(a, b, rng.uniform(-1, 1), 0.0, 1)
        else:
            relations.load(a, b, Bond(affinity=rng.uniform(-1, 1), familiarity=rng.random()), 1)
    for source in range(30):
        assert list(relations.of(source).items()) == [(t, b) for (s, t), b in relations.bonds.items() if s == source]
        view = BondsOf(relations, source)
        assert dict(view) == relations.of(source) and view.get(999) is None and len(view) == len(relations.of(source))


def test_presence_is_touched_only_by_what_changed() -> None:
    clock = FakeClock(1_000_000.0)
    state, _general, garden, gardeners = society(clock, n=200)
    state.agents.touched.clear()
    message(state, clock, garden, 7000, "A lovely, wonderful day in the garden!")
    assert state.agents.touched == set(gardeners)
    state.agents.touched.clear()
    state.agents[100].state = "muted"
    state.agents[101].resting_until = clock.now() + 60
    assert state.agents.touched == {100, 101}


def test_the_gate_judges_with_the_roster_as_with_every_name() -> None:
    """The same verdicts whether the gate gets all 2,000 names or the indexed roster."""
    names = [f"{first} {last}" for first, last in zip(
        [random.Random(i).choice(["Ana", "Bob", "Chen", "Dara", "Eli", "Fay"]) + str(i) for i in range(2000)], ["Lee"] * 2000)]
    names[:6] = ["Ana Silva", "Bob Stone", "Cleo Marsh", "Tom Hale", "Priya Nair", "Priya Das"]
    ids = {n: 1000 + i for i, n in enumerate(names)}
    bonds = {ids["Bob Stone"]: Bond(affinity=0.6, familiarity=0.5, trust=0.7)}
    lines = ["Ana here, I think the market opens at nine.", "Bob Stone says the bus is late again today.",
             "My friend Cleo Marsh grows the best tomatoes in town.", "Bob is my good friend, we go fishing on Sundays.",
             "Priya, you should come to the bakery with me.", "I hate Tom Hale and his loud music every night.",
             "The market was lovely this morning, the bread was warm.", "ana: the bread is gone already, sorry about that.",
             "As Cleo I would say the garden needs more water.", "Priya thinks the bakery is the best place to sit."]
    for own in ("Priya Nair", "Dara7 Lee", "Tom Hale"):
        others = [n for n in names if n != own]
        for line in lines:
            plain = GateContext(own_name=own, members=others, names_to_ids={n: i for n, i in ids.items() if n != own}, bonds=bonds)
            indexed = GateContext(own_name=own, members=[], roster=Roster(names), names_to_ids=ids, bonds=bonds)
            assert judge(line, plain) == judge(line, indexed), (own, line)
    roster = Roster(names)
    assert roster.named_in("my friend Cleo said hi to bob") == ["Bob Stone", "Cleo Marsh"]
    assert roster.knows("priya") and roster.knows("ana silva") and not roster.knows("zed")


def test_generated_societies_of_any_size_and_the_file_limit() -> None:
    big = generate(1000, seed=7)
    assert len(big.agents) == 1000 and len({a.username for a in big.agents}) == 1000
    assert generate(1000, seed=7) == big and generate(1000, seed=8) != big
    spread = followers(big)
    assert max(spread.values()) < 1000 and spread["general"] >= 300 and min(spread.values()) >= 50  # popular channels and a tail
    assert len({a.style for a in big.agents}) > 3 and len({a.rhythm.peak for a in big.agents}) > 5
    tagged = generate(3, seed=1, tag="x1")
    assert all(a.name.endswith(" x1") for a in tagged.agents)
    with pytest.raises(ValidationError) as refused:
        Society.model_validate({"guild": "Too big", "channels": [{"name": "general"}],
                                "agents": [{"name": f"a{i}", "bio": "b"} for i in range(MAX_SOCIETY_AGENTS + 1)]})
    assert f"at most {MAX_SOCIETY_AGENTS:,} agents and this one has {MAX_SOCIETY_AGENTS + 1:,}" in str(refused.value)
    with pytest.raises(ValueError):
        generate(MAX_SOCIETY_AGENTS + 1)


def test_interest_relevance_embeds_each_interest_once_and_scores_as_before() -> None:
    """The worker's embedding relevance is indexed by interest: 1,000 agents sharing 36
    interests cost 36 embedded interests, not 1,000 lists; the scores are the per-agent ones."""
    import numpy as np

    from townsquare.agents.brain.embed import get_embedder
    from townsquare.worker.runtime.relevance import embedding_relevance

    embedder = get_embedder()
    embedded: list[str] = []
    real = embedder.embed

    def counting(texts: list[str]) -> np.ndarray:
        embedded.extend(texts)
        return real(texts)

    society = generate(1000, seed=9)
    agents = [AgentInfo(100 + i, GUILD, p) for i, p in enumerate(society.agents)]
    embedder.embed = counting  # type: ignore[method-assign]
    try:
        relevance = embedding_relevance()
        text = "Who wants to swap tomato seeds at the allotment on Saturday?"
        scores = [relevance(a, text) for a in agents]
    finally:
        del embedder.embed
    interests = {i for a in agents for i in a.persona.interests}
    assert sorted(t for t in embedded if t in interests) == sorted(interests)  # each interest once
    vector = embedder.embed_one(text)
    for agent, score in list(zip(agents, scores))[:50]:
        best = float(np.max(embedder.embed(agent.persona.interests) @ vector))
        assert abs(score - max(0.0, min(1.0, (best - 0.05) / 0.45))) < 1e-4
    gardeners = [s for a, s in zip(agents, scores) if "seed swaps" in a.persona.interests]
    others = [s for a, s in zip(agents, scores) if not {"seed swaps", "gardening", "compost"} & set(a.persona.interests)]
    assert sum(gardeners) / len(gardeners) > sum(others) / len(others)
