"""Turn-taking: who speaks, when. Decided in code, never by asking the LLM.

`SocietyState` is what every worker knows about the society, rebuilt from the event stream
(each worker reads the whole stream for state, and gets its share of events to act on from
the consumer group). `TurnPolicy` turns an observed message, or a quiet channel, into
decisions:

1. Mentions, replies and DMs to an agent come first: a human addressing an agent is always
   answered; an agent addressing an agent is answered while the channel's bot chain is short.
2. Otherwise at most one agent picks the message up, after a talkativeness roll: extraversion,
   mood (arousal, valence, energy), its rhythm on the simulation clock, how relevant the message
   is to its interests, its pull toward the author (liking, acquaintance, shared interests: see
   homophily.py), and a decay with the length of the bot chain. Among the agents whose roll
   succeeded, one is drawn with odds that grow with the pull (`homophily` is its exponent), so
   members mostly answer those they get on with and resemble.
3. Brakes: a cooldown per agent, a budget of agent messages per channel per minute, and a cap
   on consecutive agent messages (the bot chain) until a human speaks or the channel rests.
4. Revival: a channel quiet for `revive_idle_seconds` gets a new topic from an awake agent.

The rolls are seeded by (message, agent), so a retried event (at-least-once delivery) decides
the same way, and the replies' nonces make any repeat a no-op. A run's seed (`PolicyConfig.seed`)
enters every draw: the same seed and the same events decide the same way, another seed otherwise.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..society.persona import Persona
from .clock import SimClock
from .homophily import STRANGER, interest_overlap, pull
from .mood import Mood, Stimulus
from .relations import Relations, emoji_tone
from .sentiment import emoji_for, sentiment


@dataclass(frozen=True)
class PolicyConfig:
    chain_cap: int = 6
    channel_budget_per_minute: int = 6
    cooldown_seconds: float = 8.0
    revive_idle_seconds: float = 120.0
    base_rate: float = 4.0  # scales every talkativeness roll (each chance is capped at 0.95)
    stale_seconds: float = 120.0  # older messages are only observed, not answered unprompted
    direct_stale_seconds: float = 900.0  # a mention older than this is not answered any more
    social: bool = True  # reactions, threads (and, in the worker, DMs, new channels, peer ratings)
    reaction_rate: float = 0.15  # scales the chance that an agent who saw a message reacts to it
    thread_after: int = 4  # a back-and-forth of this many replies between two members moves into a thread
    homophily: float = 3.0  # exponent of the pull toward the author in the draw among the willing (0: the pull left out of it)
    founder_cooldown_seconds: float = 1800.0  # an agent opens at most one channel this often
    seed: int = 0  # a run's seed (TOWNSQUARE_SEED): every roll and draw depends on it; 0 keeps the unseeded draws

    @property
    def chain_rest_seconds(self) -> float:
        """A pause this long ends a bot chain: shorter than any revival's wait (0.75 x idle), so
        a revived channel starts a fresh conversation."""
        return min(60.0, self.revive_idle_seconds * 0.5)


@dataclass
class AgentInfo:
    id: int
    guild_id: int
    persona: Persona
    state: str = "active"  # active | muted | paused
    resting_until: float = 0.0

    def __setattr__(self, name: str, value: object) -> None:
        # an agent in a table (SocietyState.agents) tells it of every change: a new persona may
        # follow other channels, a new state shows in presence (see AgentTable)
        object.__setattr__(self, name, value)
        table = self.__dict__.get("_table")
        if table is not None:
            table.changed(self, name)


class AgentTable(dict[int, AgentInfo]):
    """`SocietyState.agents`: a dict of the agents (insertion-ordered, as before) that keeps the
    indexes the per-message paths use instead of scanning every agent: agents by society, and by
    the channels they follow (by home channel name; those with no home channels follow all).
    Writing an agent (`table[id] = info`, `pop`, `del`, or changing `info.persona`) keeps them
    up to date; `touched` collects the agents whose state or mood may show differently (presence)."""

    def __init__(self) -> None:
        super().__init__()
        self.order: dict[int, int] = {}  # agent -> position in the dict (decisions draw in that order)
        self._next = 0
        self.by_guild: dict[int, set[int]] = {}
        self.everywhere: dict[int, set[int]] = {}  # guild -> agents with no home channels (they follow every channel)
        self.by_home: dict[tuple[int, str], set[int]] = {}  # (guild, channel name) -> agents for whom it is home
        self.touched: set[int] = set()

    def __setitem__(self, agent_id: int, agent: AgentInfo) -> None:
        old = self.get(agent_id)
        if old is not None:
            self._unindex(old)
            old.__dict__.pop("_table", None)
        else:
            self.order[agent_id], self._next = self._next, self._next + 1
        super().__setitem__(agent_id, agent)
        agent.__dict__["_table"] = self
        self._index(agent)
        self.touched.add(agent_id)

    def __delitem__(self, agent_id: int) -> None:
        agent = self[agent_id]
        super().__delitem__(agent_id)
        self._unindex(agent)
        agent.__dict__.pop("_table", None)
        self.order.pop(agent_id, None)
        self.touched.add(agent_id)

    def pop(self, agent_id: int, *default: AgentInfo | None) -> AgentInfo | None:  # type: ignore[override]
        if agent_id in self:
            agent = self[agent_id]
            del self[agent_id]
            return agent
        if default:
            return default[0]
        raise KeyError(agent_id)

    def clear(self) -> None:
        for agent_id in list(self):
            del self[agent_id]

    def setdefault(self, *_: object) -> AgentInfo:  # type: ignore[override]
        raise TypeError("AgentTable: assign with table[id] = info")

    def update(self, *_: object, **__: object) -> None:  # type: ignore[override]
        raise TypeError("AgentTable: assign with table[id] = info")

    def changed(self, agent: AgentInfo, field_name: str) -> None:
        if self.get(agent.id) is not agent:
            return
        if field_name in ("persona", "guild_id"):
            self._unindex(agent, everywhere=True)
            self._index(agent)
        self.touched.add(agent.id)

    def _index(self, agent: AgentInfo) -> None:
        self.by_guild.setdefault(agent.guild_id, set()).add(agent.id)
        homes = agent.persona.home_channels
        agent.__dict__["_indexed"] = (agent.guild_id, tuple(homes))  # what to unindex later, whatever changed since
        if not homes:
            self.everywhere.setdefault(agent.guild_id, set()).add(agent.id)
        for home in homes:
            self.by_home.setdefault((agent.guild_id, home), set()).add(agent.id)

    def _unindex(self, agent: AgentInfo, everywhere: bool = False) -> None:
        guild, homes = agent.__dict__.pop("_indexed", (agent.guild_id, ()))
        if everywhere:  # the old guild may differ from the new one: drop the agent from every set it was in
            for ids in (*self.by_guild.values(), *self.everywhere.values()):
                ids.discard(agent.id)
        else:
            self.by_guild.get(guild, set()).discard(agent.id)
            self.everywhere.get(guild, set()).discard(agent.id)
        for home in homes:
            self.by_home.get((guild, home), set()).discard(agent.id)

    def in_order(self, ids: set[int] | frozenset[int]) -> list[AgentInfo]:
        """These agents (unknown ids skipped) in the table's order, as a scan would meet them."""
        order = self.order
        return [self[i] for i in sorted((i for i in ids if i in order), key=order.__getitem__)]

    def followers(self, guild_id: int | None, channel: ChannelState) -> list[AgentInfo]:
        """The agents of the society who follow the channel (read it), in the table's order: for a
        DM its members, for a thread those of its parent, otherwise those at home there and those
        with no home channels."""
        if channel.dm_recipients is not None:
            ids: set[int] | frozenset[int] = {i for i in channel.dm_recipients if i in self.by_guild.get(guild_id or 0, ())}
        else:
            ids = self.everywhere.get(guild_id or 0, set()) | self.by_home.get((guild_id or 0, channel.parent or channel.name), set())
        return self.in_order(ids)

    def of_guild(self, guild_id: int) -> list[AgentInfo]:
        return self.in_order(self.by_guild.get(guild_id, set()))


@dataclass
class ChannelState:
    id: int
    guild_id: int
    name: str = ""
    topic: str | None = None
    dm_recipients: frozenset[int] | None = None
    last_at: float = 0.0  # last message (real seconds)
    last_message_id: int = 0
    last_human_at: float = 0.0
    chain: int = 0  # consecutive messages by agents/bots
    agent_posts: deque[float] = field(default_factory=deque)
    revive_pending_until: float = 0.0
    revive_attempts: int = 0  # revivals tried since the last message: a failed one is retried differently
    parent: str | None = None  # a thread: its parent channel's name (followers of the parent follow it; never revived)
    exchange: frozenset[int] = frozenset()  # the two members of the current back-and-forth of replies
    exchange_len: int = 0


@dataclass(frozen=True)
class Msg:
    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    author_name: str
    author_bot: bool
    content: str
    at: float  # when it happened (real seconds)
    mentions: frozenset[int] = frozenset()
    reply_to: int | None = None  # author of the referenced message


@dataclass(frozen=True)
class Decision:
    agent_id: int
    channel_id: int
    trigger: str  # mention | reply | dm | roll | revive
    nonce: str  # at most one reply per (agent, trigger)
    reply_to_message: int | None = None
    addressed_by: str | None = None
    subject: str | None = None  # revive: what to open with
    score: float = 1.0
    attempt: int = 0  # revive: how many revivals of this silence were tried before (varies the model's seed)
    in_thread: bool = False  # the exchange grew long: answer in a thread opened from the message
    invitees: tuple[int, ...] = ()  # found: the friends invited to a new channel; reach: the one written to

    @property
    def direct(self) -> bool:
        return self.trigger in ("mention", "reply", "dm")

    @property
    def waits(self) -> bool:
        """Worth waiting for the agent's current turn: answers to people, and its own initiatives."""
        return self.direct or self.trigger in ("reach", "found")


@dataclass(frozen=True)
class Reaction:
    agent_id: int
    channel_id: int
    message_id: int
    emoji: str


def nonce(kind: str, *parts: object) -> str:
    """A message nonce (at most 25 characters) that is the same whenever the same initiative is retried."""
    return kind + hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:25 - len(kind)]


def stable_rng(*parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


Relevance = Callable[[AgentInfo, str], float]  # 0..1, how much a text touches the agent's interests


FOUNDING_FRIEND_FLOOR = 0.2  # affinity and familiarity a friend needs to be invited to a new channel
FOUNDING_INVITES = 4  # the closest friends sharing the interest that a founder invites


def keyword_relevance(agent: AgentInfo, text: str) -> float:
    """Interest words found in the text (the embedding relevance replaces it in the worker)."""
    words = set(text.lower().split())
    hits = sum(1 for interest in agent.persona.interests if set(interest.lower().split()) & words)
    return min(1.0, 0.3 + 0.35 * hits)


class SocietyState:
    def __init__(self, sim: SimClock, chain_rest_seconds: float = 60.0) -> None:
        self.sim = sim
        self.chain_rest_seconds = chain_rest_seconds
        self.agents = AgentTable()
        self.channels: dict[int, ChannelState] = {}
        self.paused_guilds: set[int] = set()
        self.topics: dict[int, list[str]] = {}  # guild -> revival topics
        # channel -> the revival topics chosen there lately (not chosen again soon); guild -> the same, society-wide
        self.topics_raised: dict[int, deque[str]] = {}
        self.topics_raised_in_guild: dict[int, deque[str]] = {}
        self.guild_names: dict[int, str] = {}
        self.last_spoke: dict[int, float] = {}
        self.moods: dict[int, tuple[Mood, float]] = {}  # agent -> (mood, at)
        self.relations = Relations()
        self.warming = False  # replaying the recent past at start: chains and cooldowns, not feelings again
        self.last_outreach: dict[int, float] = {}  # guild -> when an agent last wrote privately to a friend
        self.last_founding: dict[int, float] = {}  # guild -> when an agent last opened a channel
        self.founded_at: dict[int, float] = {}  # agent -> when it last opened a channel
        self.dirty_moods: set[int] = set()
        self.presence: Callable[[AgentInfo, ChannelState], float] | None = None  # the world: who is around a channel now

    def around(self, agent: AgentInfo, channel: ChannelState) -> float:
        """How much the agent is about in this channel now: its routine's place (agents/world), 1 without a world."""
        return self.presence(agent, channel) if self.presence is not None else 1.0

    @property
    def now(self) -> float:
        return self.sim.clock.now()

    # --- registry ---

    def set_agent(self, agent: AgentInfo, mood: Mood | None = None, mood_at: float | None = None) -> None:
        self.agents[agent.id] = agent
        if agent.id not in self.moods:
            self.moods[agent.id] = (mood or Mood.baseline(agent.persona.traits), mood_at or self.now)

    def drop_agent(self, agent_id: int) -> None:
        self.agents.pop(agent_id, None)
        self.moods.pop(agent_id, None)

    def set_channel(self, channel: ChannelState) -> ChannelState:
        known = self.channels.get(channel.id)
        if known is not None:
            known.name, known.topic, known.dm_recipients = channel.name, channel.topic, channel.dm_recipients
            return known
        self.channels[channel.id] = channel
        return channel

    # --- mood ---

    def mood(self, agent_id: int) -> Mood:
        mood, at = self.moods[agent_id]
        now = self.now
        relaxed = mood.relaxed(self.agents[agent_id].persona.traits, self.sim.sim_elapsed(now - at))
        self.moods[agent_id] = (relaxed, now)
        return relaxed

    def feel(self, agent_id: int, stimulus: Stimulus, *, tone: float = 0.0, intensity: float = 1.0) -> None:
        if agent_id not in self.agents:
            return
        felt = self.mood(agent_id).felt(stimulus, self.agents[agent_id].persona.traits, sentiment=tone, intensity=intensity)
        self.moods[agent_id] = (felt, self.now)
        self.dirty_moods.add(agent_id)
        self.agents.touched.add(agent_id)  # its label may show differently (presence)

    # --- observation ---

    def observe(self, msg: Msg) -> None:
        """Updates the state with a posted message (every worker, every message)."""
        channel = self.channels.get(msg.channel_id)
        if channel is None:
            channel = self.set_channel(ChannelState(msg.channel_id, msg.guild_id or 0))
        if msg.id <= channel.last_message_id:
            return  # already seen (replays, two readers)
        if msg.at - channel.last_at >= self.chain_rest_seconds:
            channel.chain = 0  # the conversation paused: a new one starts
        channel.last_message_id = msg.id
        channel.last_at = max(channel.last_at, msg.at)
        channel.revive_pending_until, channel.revive_attempts = 0.0, 0
        if msg.author_bot:
            channel.chain += 1
        else:
            channel.chain, channel.last_human_at = 0, msg.at
        pair = frozenset({msg.author_id, msg.reply_to}) if msg.reply_to and msg.reply_to != msg.author_id else frozenset()
        if pair and pair == channel.exchange:
            channel.exchange_len += 1
        else:
            channel.exchange, channel.exchange_len = pair, 1 if pair else 0
        if msg.author_id in self.agents:
            channel.agent_posts.append(msg.at)
            self.last_spoke[msg.author_id] = max(self.last_spoke.get(msg.author_id, 0.0), msg.at)
        if self.warming:
            return  # moods and relationships saved before the restart already hold this message
        if msg.author_id in self.agents:
            self.feel(msg.author_id, Stimulus.SPOKE)
        tone = sentiment(msg.content)
        addressed = set(msg.mentions) | ({msg.reply_to} if msg.reply_to else set())
        if channel.dm_recipients is not None:  # a private message is written to the others in it (no mention needed)
            addressed |= channel.dm_recipients
        for member in addressed - {msg.author_id}:
            self.relations.addressed(msg.author_id, member, tone, msg.at, msg.guild_id)  # humans have relationships too
            if member in self.agents:
                self.feel(member, Stimulus.REPLIED if member == msg.reply_to else Stimulus.MENTIONED, tone=tone)
        if tone:  # the channel's readers (an index, not a scan of the society)
            for agent in self.agents.followers(msg.guild_id, channel):
                if agent.id != msg.author_id and agent.id not in addressed:
                    self.feel(agent.id, Stimulus.MESSAGE, tone=tone, intensity=0.5)

    def observe_reaction(self, user_id: int, message_author_id: int | None, emoji: str, guild_id: int | None = None) -> None:
        if message_author_id and message_author_id != user_id and not self.warming:
            self.feel(message_author_id, Stimulus.REACTION, tone=0.5 * emoji_tone(emoji))
            self.relations.reacted(user_id, message_author_id, emoji, self.now, guild_id)

    @staticmethod
    def _follows(agent: AgentInfo, channel: ChannelState) -> bool:
        homes = agent.persona.home_channels
        return not homes or (channel.parent or channel.name) in homes or channel.dm_recipients is not None

    def followers(self, channel: ChannelState, guild_id: int | None = None) -> list[AgentInfo]:
        """The society's agents who read this channel (its members for a DM), in registry order:
        indexed, so a message costs its readers, not the society."""
        return self.agents.followers(channel.guild_id if guild_id is None else guild_id, channel)

    # --- queries ---

    def active(self, agent: AgentInfo) -> bool:
        return agent.state == "active" and agent.resting_until <= self.now and agent.guild_id not in self.paused_guilds

    def budget_left(self, channel: ChannelState, budget: int) -> int:
        cutoff = self.now - 60.0
        while channel.agent_posts and channel.agent_posts[0] < cutoff:
            channel.agent_posts.popleft()
        return budget - len(channel.agent_posts)


class TurnPolicy:
    def __init__(self, config: PolicyConfig, relevance: Relevance = keyword_relevance,
                 fits: Callable[[str, str], float] | None = None) -> None:
        self.config = config
        self.relevance = relevance
        self.fits = fits  # (text, text) -> 0..1: how well a revival topic suits a channel (None: not weighed)

    def rng(self, *parts: object) -> random.Random:
        """The draw for one decision: the same parts (and the same run seed) draw the same way."""
        return stable_rng(self.config.seed, *parts) if self.config.seed else stable_rng(*parts)

    def on_message(self, state: SocietyState, msg: Msg) -> list[Decision]:
        """Who answers this (already observed) message."""
        cfg, now = self.config, state.now
        channel = state.channels.get(msg.channel_id)
        if channel is None or now - msg.at > cfg.direct_stale_seconds:
            return []
        # only the agents addressed (1) and the channel's followers (2) are looked at: a lurker
        # elsewhere in the society costs nothing here (both lists in registry order, as a scan)
        def eligible(a: AgentInfo) -> bool:
            return a.id != msg.author_id and state.active(a) and (
                a.guild_id == msg.guild_id or (channel.dm_recipients is not None and a.id in channel.dm_recipients))

        addressed_ids = set(msg.mentions) | ({msg.reply_to} if msg.reply_to else set()) | set(channel.dm_recipients or ())
        hour = state.sim.hour()
        chain_open = channel.chain < cfg.chain_cap
        budget = state.budget_left(channel, cfg.channel_budget_per_minute)
        decisions: list[Decision] = []

        # 1. addressed: mentions, replies, DMs
        for agent in state.agents.in_order(addressed_ids):
            if not eligible(agent):
                continue
            trigger = None
            if channel.dm_recipients is not None and agent.id in channel.dm_recipients:
                trigger = "dm"
            elif agent.id in msg.mentions:
                trigger = "mention"
            elif msg.reply_to == agent.id:
                trigger = "reply"
            if trigger is None:
                continue
            # bots talking to bots stop at the chain cap and the budget; an agent's answer to a person
            # that mentions who would know (a hand-off) is the person's question still: it goes through
            handing_on = trigger == "mention" and msg.reply_to is not None and msg.reply_to not in state.agents
            if msg.author_bot and not handing_on and (not chain_open or budget <= len(decisions)
                                                       or self._cooling(state, agent.id, now, 0.5)):
                continue
            decisions.append(Decision(agent.id, msg.channel_id, trigger, f"ev{msg.id}", reply_to_message=msg.id,
                                      addressed_by=msg.author_name, in_thread=self._to_thread(channel, agent.id, msg)))
        if decisions or (msg.author_bot and not chain_open) or budget <= 0 or now - msg.at > cfg.stale_seconds:
            return decisions

        # 2. the talkativeness roll, then one of the willing agents picks the message up: drawn
        # (seeded) with odds urge x pull^(homophily - 1), so the pull counts `homophily` times in
        # all; not the likeliest one always (equal capped chances would favour the first listed)
        willing: list[tuple[AgentInfo, float, float]] = []  # (agent, chance, weight in the draw)
        if channel.dm_recipients is not None:
            return []
        for agent in state.followers(channel, msg.guild_id):
            if not eligible(agent) or self._cooling(state, agent.id, now):
                continue
            activity = agent.persona.rhythm.activity(hour) * state.around(agent, channel)
            if activity <= 0:
                continue
            urge, drawn = self.urge(state, agent, msg, channel, activity)
            p = min(0.95, urge)
            if self.rng("roll", msg.id, agent.id).random() < p:
                willing.append((agent, p, urge * drawn ** (cfg.homophily - 1.0)))
        if not willing:
            return []
        agent, p, _ = self.rng("pick", msg.id).choices(willing, weights=[max(w, 1e-9) for *_, w in willing])[0]
        return [Decision(agent.id, msg.channel_id, "roll", f"ev{msg.id}", reply_to_message=msg.id, addressed_by=msg.author_name,
                         score=p, in_thread=self._to_thread(channel, agent.id, msg))]

    def _to_thread(self, channel: ChannelState, agent_id: int, msg: Msg) -> bool:
        """A long back-and-forth between two members (one of them this agent) moves into a thread,
        so the channel stays open to everyone else."""
        return (self.config.social and channel.dm_recipients is None and channel.parent is None and msg.reply_to == agent_id
                and channel.exchange_len >= self.config.thread_after - 1 and agent_id in channel.exchange)

    def reactions(self, state: SocietyState, msg: Msg) -> list[Reaction]:
        """Who reacts to this message with an emoji (at most two agents): agreeable agents, those
        pulled toward the author (liking, acquaintance, shared interests) and strongly felt
        messages draw more; dislike shows too."""
        channel = state.channels.get(msg.channel_id)
        if (not self.config.social or channel is None or channel.dm_recipients is not None or not msg.content.strip()
                or state.now - msg.at > self.config.stale_seconds):
            return []
        tone, hour = sentiment(msg.content), state.sim.hour()
        out: list[Reaction] = []
        order = sorted(state.followers(channel, msg.guild_id), key=lambda a: a.id)  # the channel's readers only
        self.rng("react-order", msg.id).shuffle(order)  # no agent is always asked first
        for agent in order:
            if agent.id == msg.author_id or not state.active(agent):
                continue
            activity = agent.persona.rhythm.activity(hour)
            if activity <= 0:
                continue
            bond = state.relations.get(agent.id, msg.author_id)
            affinity = bond.affinity if bond else 0.0
            # relative to a stranger nothing is known of: a human stranger draws as many reactions as before
            drawn = self.pull_toward(state, agent, msg.author_id) / STRANGER
            p = self.config.reaction_rate * (0.5 + agent.persona.traits.agreeableness) * activity * drawn
            p *= 1.5 if abs(tone) > 0.3 or agent.id in msg.mentions else 1.0
            rng = self.rng("react", msg.id, agent.id)
            if rng.random() < p:
                out.append(Reaction(agent.id, msg.channel_id, msg.id, emoji_for(tone, affinity, msg.content, rng)))
                if len(out) >= 2:
                    break
        return out

    @staticmethod
    def pull_toward(state: SocietyState, agent: AgentInfo, author_id: int) -> float:
        """The agent's pull toward an author: liking, acquaintance, shared interests (homophily.py)."""
        author = state.agents.get(author_id)
        overlap = interest_overlap(agent.persona.interests, author.persona.interests) if author is not None else None
        return pull(state.relations.get(agent.id, author_id), overlap)

    def urge(self, state: SocietyState, agent: AgentInfo, msg: Msg, channel: ChannelState, activity: float) -> tuple[float, float]:
        """(the urge to pick the message up, uncapped; the pull toward its author, part of it)."""
        traits = agent.persona.traits
        talk = 0.25 + 0.75 * traits.extraversion
        mood = state.mood(agent.id).talkativeness(traits)
        relevance = self.relevance(agent, msg.content)
        drawn = self.pull_toward(state, agent, msg.author_id)
        if not msg.author_bot:
            drawn = max(1.0, drawn)  # a human is never taken up less than a neutral stranger, whatever the ties
        human = 1.4 if not msg.author_bot else 1.0
        urge = self.config.base_rate * talk * mood * activity * (0.35 + 0.65 * relevance) * drawn * human
        return max(0.0, urge * 0.92 ** channel.chain), drawn

    def _cooling(self, state: SocietyState, agent_id: int, now: float, factor: float = 1.0) -> bool:
        return now - state.last_spoke.get(agent_id, 0.0) < self.config.cooldown_seconds * factor

    def revivals(self, state: SocietyState) -> list[Decision]:
        """Quiet channels that an awake agent should liven up (one per society per call)."""
        cfg, now, hour = self.config, state.now, state.sim.hour()
        out: list[Decision] = []
        busy_guilds: set[int] = set()
        channels = sorted((c for c in state.channels.values() if c.dm_recipients is None and c.parent is None), key=lambda c: c.last_at)
        for channel in channels:
            if channel.guild_id in busy_guilds or channel.guild_id in state.paused_guilds or channel.revive_pending_until > now:
                continue
            jitter = 0.75 + 0.5 * self.rng("idle", channel.id, channel.last_message_id).random()
            if now - channel.last_at < cfg.revive_idle_seconds * jitter or state.budget_left(channel, cfg.channel_budget_per_minute) <= 0:
                continue
            rng = self.rng("revive", channel.id, channel.last_message_id, channel.revive_attempts)
            # those who follow the channel; when all of them sleep, whoever in the society is up
            # drops by (a channel does not go dark for hours because its regulars keep early hours)
            followers = state.followers(channel)
            if not any(state.active(a) and a.persona.rhythm.activity(hour) > 0 for a in followers):
                followers = state.agents.of_guild(channel.guild_id)
            candidates = self._revivers(state, followers, channel, hour, now)
            if not candidates:
                continue
            agent = rng.choices([a for a, _ in candidates], weights=[w for _, w in candidates])[0]
            out.append(Decision(agent.id, channel.id, "revive", f"rv{channel.last_message_id or channel.id}",
                                subject=self._subject(state, agent, channel, rng), attempt=channel.revive_attempts))
            channel.revive_pending_until = now + max(30.0, cfg.revive_idle_seconds / 2)
            channel.revive_attempts += 1
            busy_guilds.add(channel.guild_id)
        return out

    def _revivers(self, state: SocietyState, agents: list[AgentInfo], channel: ChannelState, hour: float,
                  now: float) -> list[tuple[AgentInfo, float]]:
        """The awake, rested agents among `agents` who could open a conversation in `channel`, weighted."""
        out = []
        for agent in agents:
            if not state.active(agent):
                continue
            activity = agent.persona.rhythm.activity(hour)
            if activity <= 0 or self._cooling(state, agent.id, now, 0.5):
                continue
            weight = (0.3 + agent.persona.traits.extraversion) * activity * state.mood(agent.id).talkativeness(agent.persona.traits)
            weight *= state.around(agent, channel)
            weight *= 0.5 + self.relevance(agent, channel.topic or channel.name)
            if weight > 0:
                out.append((agent, weight))
        return out

    # --- social initiatives (the tick leader asks; the worker carries them out) ---

    def _friends(self, state: SocietyState, agent: AgentInfo, floor: float) -> list[tuple[int, float]]:
        """Members this agent likes and knows (both at least `floor`), with a closeness weight."""
        return [(t, b.affinity * b.familiarity) for t, b in state.relations.of(agent.id).items()
                if t != agent.id and b.affinity >= floor and b.familiarity >= floor
                and (t not in state.agents or state.active(state.agents[t]))]

    def _awake(self, state: SocietyState, guild_id: int, hour: float) -> list[AgentInfo]:
        return [a for a in sorted(state.agents.of_guild(guild_id), key=lambda a: a.id) if state.active(a)
                and a.persona.rhythm.activity(hour) > 0 and not self._cooling(state, a.id, state.now, 0.5)]

    def outreach(self, state: SocietyState, every_seconds: float) -> list[Decision]:
        """Now and then (per society) an agent writes privately to someone it likes."""
        now, hour, out = state.now, state.sim.hour(), []
        for guild in sorted({g for g, ids in state.agents.by_guild.items() if ids} - state.paused_guilds):
            # the first period starts when the society is first seen: nobody has friends yet
            if not self.config.social or now - state.last_outreach.setdefault(guild, now) < every_seconds:
                continue
            state.last_outreach[guild] = now
            slot = int(now // every_seconds)
            pairs = [(a, t, w) for a in self._awake(state, guild, hour) for t, w in self._friends(state, a, 0.3)]
            if not pairs:
                continue
            rng = self.rng("reach", guild, slot)
            agent, target, _ = rng.choices(pairs, weights=[max(w, 1e-3) for _, _, w in pairs])[0]
            theirs = state.agents[target].persona.interests if target in state.agents else []
            shared = [i for i in agent.persona.interests if i in theirs]
            # what both care about, else the friend's own thing ("Still into sourdough?" to the baker, not the
            # mechanic's bicycles); None: how they are
            subject = rng.choice(shared or theirs) if shared or theirs else None
            out.append(Decision(agent.id, 0, "reach", nonce("dm", agent.id, target, slot), subject=subject, invitees=(target,)))
        return out

    def founding(self, state: SocietyState, every_seconds: float, max_channels: int) -> list[Decision]:
        """An outgoing, curious agent with two or more friends who share one of its interests,
        and no channel for it yet, opens one and invites its closest such friends: groups become
        visible and get a room of their own. Asked on every tick, so it fires as soon as the
        friendships exist; at most one founding per society per `every_seconds`, and per
        founder per `founder_cooldown_seconds`."""
        now, hour, out = state.now, state.sim.hour(), []
        for guild in sorted({g for g, ids in state.agents.by_guild.items() if ids} - state.paused_guilds):
            if not self.config.social or now - state.last_founding.get(guild, float("-inf")) < every_seconds:
                continue
            rooms = [c for c in state.channels.values() if c.guild_id == guild and c.dm_recipients is None and c.parent is None]
            if len(rooms) >= max_channels:
                continue
            names = {c.name for c in rooms}
            options = []
            for agent in self._awake(state, guild, hour):
                traits = agent.persona.traits
                if traits.openness + traits.extraversion < 0.9:
                    continue
                if now - state.founded_at.get(agent.id, float("-inf")) < self.config.founder_cooldown_seconds:
                    continue
                close = {t: w for t, w in self._friends(state, agent, FOUNDING_FRIEND_FLOOR)
                         if t in state.agents and state.agents[t].guild_id == guild}
                for interest in agent.persona.interests:
                    slug = channel_slug(interest)
                    if not slug or slug in names:
                        continue
                    sharing = sorted((f for f in close if interest in state.agents[f].persona.interests), key=lambda f: (-close[f], f))
                    invited = tuple(sharing[:FOUNDING_INVITES])
                    if len(invited) >= 2:  # the strongest group first: more friends, closer, a more outgoing founder
                        options.append((len(invited) + sum(close[f] for f in invited) + traits.extraversion, agent, interest, invited))
            if not options:
                continue
            options.sort(key=lambda o: (-o[0], o[1].id, o[2]))
            _, agent, interest, invited = options[0]
            state.last_founding[guild] = state.founded_at[agent.id] = now
            out.append(Decision(agent.id, 0, "found", nonce("fd", guild, channel_slug(interest)), subject=interest, invitees=invited))
        return out

    def _subject(self, state: SocietyState, agent: AgentInfo, channel: ChannelState, rng: random.Random) -> str:
        topics = state.topics.get(channel.guild_id) or []
        if not topics:
            return channel.topic or f"what is new in #{channel.name}"
        # a topic asked in this channel lately is not asked here again until half the list has had its
        # turn ("Which book should the reading circle pick next?" twice in one channel read as a loop)
        raised = state.topics_raised.setdefault(channel.id, deque(maxlen=max(1, len(topics) // 2)))
        # ... nor one asked in another channel lately, while others remain (a village run asked the
        # same eleven questions in one channel after another: a fifth of its lines were repeats)
        society = state.topics_raised_in_guild.setdefault(channel.guild_id, deque(maxlen=max(1, len(topics) // 2)))
        pool = [t for t in topics if t not in raised] or topics
        # a topical channel gets a topic of its own ("open source project you wish more people knew
        # about?" was asked in #music); the agent's interests and a draw choose among those that fit.
        # The channel's fit comes first: left to the society's rotation alone, #books got "favourite
        # running route?" when its own questions had been asked elsewhere lately
        if self.fits is not None and channel.name not in ("general", None):
            fit = {t: self.fits(t, f"{channel.name} {channel.topic or ''}") for t in pool}
            best = max(fit.values())
            pool = [t for t in pool if fit[t] >= 0.6 * best] if best > 0 else pool
        fresh = [t for t in pool if t not in society] or pool
        chosen = max(fresh, key=lambda t: self.relevance(agent, f"{t} {channel.name}") + 0.3 * rng.random())
        raised.append(chosen)
        society.append(chosen)
        return chosen


def channel_slug(text: str) -> str:
    """A channel name for a topic, Discord style: lowercase words joined by dashes."""
    words = "".join(ch if ch.isalnum() else " " for ch in text.lower()).split()
    return "-".join(words)[:30].strip("-")
