"""`townsquare worker`: runs the agents.

Perception: every worker reads the whole event stream to keep `SocietyState` (who spoke where,
moods, chains), and reads its share of the same stream as a member of the Redis consumer group
`agents` to act: for each event it gets, the turn policy decides who answers, the turns run,
and only then is the event acknowledged. A worker that dies leaves its events pending; another
worker claims them (XAUTOCLAIM) after `worker_claim_idle_ms` and decides the same way (seeded
rolls). Replies carry a nonce derived from the event, so an event handled twice is answered
once. Quiet channels are revived by whichever worker holds the tick lease.

Turns act through the public REST API with the agent's own bot token; the worker touches the
database only for the registry (agents, societies), moods, and the records of turns and LLM
calls, through the platform's action layer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import defaultdict, deque
from datetime import datetime
from typing import Any

import httpx
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...agents.brain.backends import GenOptions
from ...agents.brain.chain import FallbackChain, ReplyCache
from ...agents.brain.routing import load_routing
from ...agents.memory.importance import parse_rating, rating_messages
from ...agents.memory.model import Memory
from ...agents.memory.news import on_mind, on_mind_window
from ...agents.memory.remember import Memories, Recall, Seen, open_memories
from ...agents.mind.clock import Clock, SimClock, SystemClock
from ...agents.mind.mood import Mood
from ...agents.mind.policy import (
    AgentInfo,
    ChannelState,
    Decision,
    Msg,
    PolicyConfig,
    Reaction,
    SocietyState,
    TurnPolicy,
    channel_slug,
    keyword_relevance,
)
from ...platform.actions import agents as registry
from ...platform.actions import relationships as bonds_db
from ...platform.actions.context import Platform
from ...platform.core.config import Settings
from ...platform.core.metrics import count_records
from ...platform.core.snowflake import EPOCH_MS
from ...platform.events.publisher import decode_entry, stream_key
from .api import AgentAPI, PlatformRefused
from .pacing import BACKGROUND, Deferred, ModelPace
from .presence import AgentPresence
from .relevance import keyword_text_relevance
from .turns import SOCIETY_LOOP_WINDOW, TurnTaking, readable
from .world import WorldRuntime

log = logging.getLogger("townsquare.worker")

GROUP = "agents"
ON_MIND_LIMIT = 400  # memories of the last simulated day read for what is on an agent's mind (newest first)
_LOST = (RedisConnectionError, RedisTimeoutError, OSError)  # Redis gone for a moment: retry, never end the loop


async def ensure_group(redis: Any, key: str) -> None:
    """The agents' consumer group starts at the stream's end when first made: agents answer what
    happens from then on, not the whole history. `up` makes it before the server takes requests,
    so nothing said while the worker boots is missed."""
    try:
        await redis.xgroup_create(key, GROUP, id="$", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def snowflake_time(snowflake: int) -> float:
    return ((snowflake >> 22) + EPOCH_MS) / 1000.0


def entry_key(entry_id: bytes | str) -> tuple[int, int]:
    """Stream ids compare as numbers, not as strings ("10-1" comes after "9-1")."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def parse_time(iso: str | None, default: float) -> float:
    if not iso:
        return default
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return default


class AgentWorker(TurnTaking):
    def __init__(self, settings: Settings, platform: Platform, *, clock: Clock | None = None, name: str | None = None,
                 api_url: str | None = None, relevance: Any = None, enqueue: Any = None, memories: Memories | None = None,
                 text_relevance: Any = None) -> None:
        self.settings, self.platform = settings, platform
        self._memories = memories
        self.enqueue = enqueue  # (job path, **kwargs) -> None: hands slow work to rq
        self.clock = clock or SystemClock()
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.redis = platform.redis
        self.key = stream_key(settings.redis_prefix)
        self.prefix = settings.redis_prefix
        self.config = PolicyConfig(chain_cap=settings.chain_cap, channel_budget_per_minute=settings.channel_budget_per_minute,
                                   cooldown_seconds=settings.agent_cooldown_seconds, revive_idle_seconds=settings.revive_idle_seconds,
                                   social=settings.social_actions, reaction_rate=settings.reaction_rate,
                                   thread_after=settings.thread_after, homophily=settings.turn_homophily,
                                   founder_cooldown_seconds=settings.founding_cooldown_seconds, seed=settings.seed)
        self.state = SocietyState(SimClock(self.clock, epoch=self.clock.now(), speed=settings.sim_speed,
                                           start_hour=settings.sim_start_hour), chain_rest_seconds=self.config.chain_rest_seconds)
        self.text_relevance = text_relevance or keyword_text_relevance  # (line, what it answers) -> 0..1, for the gate
        self.policy = TurnPolicy(self.config, relevance or keyword_relevance, fits=self.text_relevance)
        self.pace = ModelPace(settings.model_slots)  # turns wait for the model here, a person's question first
        self._handling: set[bytes] = set()  # stream entries being acted on (kept from being claimed as abandoned)
        ollama_host = settings.ollama_host or f"http://127.0.0.1:{settings.model_port}"
        self.routing = load_routing(settings.routing_file, ollama_host)
        self.chain = FallbackChain(self.routing, self.clock, cache=ReplyCache(self.redis, self.prefix), record=self._calls_append)
        self.api = AgentAPI(api_url or settings.base_url)
        self.tokens: dict[int, str] = {}
        self.names: dict[int, str] = {}
        self._calls: list[dict[str, Any]] = []
        self._turns: list[dict[str, Any]] = []
        self._registry_version: Any = None
        self._registry_dirty = True
        self._state_id = b"0-0"
        self._tasks: list[asyncio.Task[Any]] = []
        self._inflight: set[asyncio.Task[Any]] = set()
        self._slots = asyncio.Semaphore(settings.worker_concurrency)
        self._agent_locks: dict[int, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(settings.agent_llm_concurrency))
        self._agent_tokens: dict[int, deque[tuple[float, int]]] = defaultdict(deque)
        self._failures: dict[int, int] = defaultdict(int)
        self._recent_own: dict[int, deque[str]] = defaultdict(lambda: deque(maxlen=10))
        # guild -> what this worker's agents said lately in any of its channels (the gate's loop check: the same
        # "X? No clue. I'll ask around." in two channels reads as a template to whoever reads both)
        self._said_in_society: dict[int, deque[str]] = defaultdict(lambda: deque(maxlen=SOCIETY_LOOP_WINDOW))
        self.member_ids: dict[int, dict[str, int]] = defaultdict(dict)  # guild -> display name -> user id
        self.member_names: dict[int, dict[int, str]] = defaultdict(dict)  # guild -> user id -> latest display name
        self._rosters: dict[int, Any] = {}  # guild -> the gate's Roster of its members, made when first needed
        self._bonds_loaded = False
        self._unrated: dict[int, None] = {}  # agents with notable memories the LLM has not rated yet (insertion-ordered)
        self._last_turn_at = self.clock.now()  # the LLM counts as free only after a quiet spell
        self._stopping = asyncio.Event()
        self.presence = AgentPresence(self.redis, self.prefix, platform.read, self.clock)  # agents hold no gateway session
        self.world = WorldRuntime(platform, self.redis, self.prefix, self.state.sim, self.clock, lambda: self.memories)
        self.state.presence = self.world.presence  # routines: who is around which channel

    @property
    def memories(self) -> Memories:
        if self._memories is None:
            self._memories = open_memories(self.settings, self.platform.engine)
        return self._memories

    # --- lifecycle ---

    async def start(self) -> None:
        await ensure_group(self.redis, self.key)
        await self.refresh_registry(force=True)
        await self._warm_state()
        for loop in (self._state_loop, self._work_loop, self._claim_loop, self._keep_loop, self._tick_loop, self._flush_loop,
                     self._rating_loop):
            self._tasks.append(asyncio.create_task(loop(), name=f"worker.{loop.__name__}"))
        log.info("worker started", extra={"worker": self.name, "agents": len(self.state.agents)})

    async def stop(self, drain_seconds: float = 20.0) -> None:
        """Graceful: stop taking events, let turns in flight finish (up to `drain_seconds`);
        whatever is still unacknowledged stays pending for another worker to claim."""
        self._stopping.set()
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=drain_seconds)
        for task in [*self._tasks, *self._inflight]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._inflight, return_exceptions=True)
        await self._flush()
        await self._save_moods()
        await self.chain.close()
        await self.api.close()

    async def run_forever(self) -> None:
        await self.start()
        await self._stopping.wait()

    # --- registry ---

    async def refresh_registry(self, force: bool = False) -> None:
        version = await registry.registry_version(self.platform)
        if not force and not self._registry_dirty and version == self._registry_version:
            return
        self._registry_version, self._registry_dirty = version, False
        agents, societies = await registry.load_registry(self.platform)
        seen = set()
        for a in agents:
            seen.add(a.id)
            resting = a.resting_until.timestamp() if a.resting_until else 0.0
            known = self.state.agents.get(a.id)
            if known is None:
                mood = Mood.from_json(a.mood, a.persona.traits)
                self.state.set_agent(AgentInfo(a.id, a.guild_id, a.persona, a.state, resting), mood,
                                     a.mood_at.timestamp() if a.mood_at else None)
            elif (known.guild_id, known.persona, known.state, known.resting_until) != (a.guild_id, a.persona, a.state, resting):
                self.state.agents[a.id] = AgentInfo(a.id, a.guild_id, a.persona, a.state, resting)  # unchanged agents stay as they are
            self.tokens[a.id], self.names[a.id] = a.token, a.persona.name
            self._note_member(a.guild_id, a.persona.name, a.id)
        for gone in set(self.state.agents) - seen:
            self.state.drop_agent(gone)
        if not self._bonds_loaded:  # relationships survive restarts: the saved ones are the starting point
            for row in await bonds_db.load_relationships(self.platform, list(societies)):
                if self.state.relations.get(row.source_id, row.target_id) is None:
                    self.state.relations.load(row.source_id, row.target_id, bonds_db.bond_of(row), row.guild_id)
            self._bonds_loaded = True
        self.state.paused_guilds = {g for g, s in societies.items() if s["paused"]}
        self.state.topics = {g: list(s["revival_topics"]) for g, s in societies.items()}
        self.state.guild_names = {g: s.get("guild_name") or s["name"] for g, s in societies.items()}
        if societies:  # simulated time runs from the founding, so a restart does not rewind the day
            self.state.sim.epoch = min(parse_time(s["created_at"], self.clock.now()) for s in societies.values())
        self.world.load(societies, lambda s: parse_time(s["created_at"], self.clock.now()))
        rows = await registry.society_channels(self.platform, list(societies))
        names = {row.id: row.name or "" for row in rows}
        for row in rows:
            if registry.channel_closed(row.permission_overwrites, row.guild_id):  # closed by an intervention: nobody posts there
                self.state.channels.pop(row.id, None)
                continue
            channel = self.state.set_channel(ChannelState(row.id, row.guild_id, row.name or "", row.topic))
            if row.type in (11, 12):  # a thread: followed with its parent, never revived
                channel.parent = names.get(row.parent_id) or channel.parent or ""
            if row.last_message_id and row.last_message_id > channel.last_message_id:
                channel.last_message_id, channel.last_at = row.last_message_id, snowflake_time(row.last_message_id)
            elif not channel.last_at:
                channel.last_at = self.clock.now() - self.config.revive_idle_seconds  # never spoken in: revive soon

    def _note_member(self, guild_id: int, name: str, user_id: int) -> None:
        """Who is called what in a society, both ways (a change makes the gate's roster anew)."""
        if self.member_ids[guild_id].get(name) != user_id:
            self.member_ids[guild_id][name] = user_id
            self.member_names[guild_id][user_id] = name
            self._rosters.pop(guild_id, None)

    # --- perception ---

    async def _warm_state(self) -> None:
        """The recent past (chains, cooldowns, budgets) from the stream's tail."""
        entries = await self.redis.xrevrange(self.key, count=500)
        self.state.warming = True  # moods and relationships were saved with these events in them already
        try:
            for entry_id, fields in reversed(entries):
                self._observe(decode_entry(fields), live=False)
        finally:
            self.state.warming = False
        self._state_id = entries[0][0] if entries else b"0-0"

    async def _state_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                found = await self.redis.xread({self.key: self._state_id}, count=500, block=1000)
            except _LOST as exc:
                log.warning("state read failed: %s", exc)
                await asyncio.sleep(1)
                continue
            for _, entries in found or []:
                for entry_id, fields in entries:
                    self._observe(decode_entry(fields), live=True)
                    self._state_id = entry_id

    def _message(self, env: dict[str, Any], live: bool) -> Msg | None:
        data = env["data"]
        try:
            author = data["author"]
            ref = data.get("referenced_message") or {}
            at = self.clock.now() if live else parse_time(env.get("created_at"), self.clock.now())
            guild_id = int(env["guild_id"]) if env.get("guild_id") else None
            channel_id = int(data["channel_id"])
            if guild_id is None:  # a DM: known to the state only if an agent takes part
                recipients = frozenset(int(u) for u in env.get("user_ids") or [])
                agents_in = [a for a in recipients if a in self.state.agents]
                if not agents_in:
                    return None
                guild_id = self.state.agents[agents_in[0]].guild_id
                self.state.set_channel(ChannelState(channel_id, guild_id, "dm", None, recipients))
            name = author.get("global_name") or author.get("username", "?")
            self._note_member(guild_id, name, int(author["id"]))
            return Msg(int(data["id"]), channel_id, guild_id, int(author["id"]), name,
                       bool(author.get("bot")), data.get("content") or "", at,
                       frozenset(int(m["id"]) for m in data.get("mentions") or []),
                       int(ref["author"]["id"]) if ref.get("author") else None)
        except (KeyError, TypeError, ValueError):
            return None

    def _observe(self, env: dict[str, Any], live: bool) -> None:
        kind, data = env.get("type"), env.get("data") or {}
        if kind == "MESSAGE_CREATE":
            msg = self._message(env, live)
            if msg is not None and (msg.guild_id in self.state.guild_names or msg.channel_id in self.state.channels):
                self.state.observe(msg)
        elif kind == "MESSAGE_REACTION_ADD":
            author = data.get("message_author_id")
            emoji = data.get("emoji") or {}
            self.state.observe_reaction(int(data.get("user_id", 0)), int(author) if author else None,
                                        str(emoji.get("name") if isinstance(emoji, dict) else emoji),
                                        int(data["guild_id"]) if data.get("guild_id") else None)
        elif kind == "THREAD_CREATE" and data.get("guild_id") and int(data["guild_id"]) in self.state.guild_names:
            parent = self.state.channels.get(int(data.get("parent_id") or 0))
            thread = self.state.set_channel(ChannelState(int(data["id"]), int(data["guild_id"]), data.get("name") or "", None))
            thread.parent = parent.name if parent else None
            if not thread.last_at:
                thread.last_at = self.clock.now()
        elif kind in ("AGENT_CREATE", "AGENT_UPDATE", "AGENT_DELETE", "SOCIETY_UPDATE", "CHANNEL_CREATE", "CHANNEL_DELETE",
                      "CHANNEL_UPDATE"):
            self._registry_dirty = True
            if kind == "CHANNEL_DELETE":
                self.state.channels.pop(int(data.get("id", 0)), None)

    # --- acting on the group's share ---

    async def _work_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                found = await self.redis.xreadgroup(GROUP, self.name, {self.key: ">"}, count=10, block=1000)
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # the stream was recreated (Redis flushed): join again
                    await ensure_group(self.redis, self.key)
                    continue
                raise
            except _LOST as exc:
                log.warning("group read failed: %s", exc)
                await asyncio.sleep(1)
                continue
            for _, entries in found or []:
                self._handling.update(entry_id for entry_id, _ in entries)  # ours from the moment they are read
                for entry_id, fields in entries:
                    await self._dispatch(entry_id, fields)

    async def _keep_loop(self) -> None:
        """Entries this worker read and has not finished (turns waiting for a busy model, events
        waiting for a slot) stay its own: their idle time is reset well before another worker
        (or this one's claim loop) would take them as abandoned."""
        every = max(0.2, self.settings.worker_claim_idle_ms / 3000)
        while not self._stopping.is_set():
            await asyncio.sleep(every)
            if not self._handling:
                continue
            try:
                await self.redis.xclaim(self.key, GROUP, self.name, 0, list(self._handling), justid=True)
            except (ResponseError, *_LOST) as exc:
                log.warning("keeping entries failed: %s", exc)

    async def _claim_loop(self) -> None:
        """Takes over events a dead (or stuck) worker left pending."""
        idle = self.settings.worker_claim_idle_ms
        while not self._stopping.is_set():
            await asyncio.sleep(max(0.2, idle / 2000))
            try:
                _, claimed, _deleted = await self.redis.xautoclaim(self.key, GROUP, self.name, min_idle_time=idle, start_id="0-0", count=20)
            except (ResponseError, *_LOST) as exc:
                log.warning("claim failed: %s", exc)
                continue
            for entry_id, fields in claimed:
                if entry_id in self._handling:
                    continue  # in progress here
                if fields:
                    log.info("claimed a pending event", extra={"worker": self.name, "entry": entry_id.decode()})
                    await self._dispatch(entry_id, fields)
                else:
                    await self.redis.xack(self.key, GROUP, entry_id)

    async def _dispatch(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        self._handling.add(entry_id)
        await self._slots.acquire()
        if self._stopping.is_set():
            self._slots.release()
            self._handling.discard(entry_id)
            return  # left pending: another worker claims it
        task = asyncio.create_task(self._handle(entry_id, fields))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        task.add_done_callback(lambda _: self._slots.release())

    async def _handle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            await self._act(entry_id, fields)
        except Exception:  # noqa: BLE001 - a bad event must not come back forever (it is logged, then acknowledged)
            log.exception("event handling failed", extra={"entry": entry_id.decode()})
        finally:
            self._handling.discard(entry_id)
        await self.redis.xack(self.key, GROUP, entry_id)

    async def _act(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        env = decode_entry(fields)
        decisions: list[Decision] = []
        if env.get("type") == "MESSAGE_CREATE":
            # the state reader must have seen this message (and what came before) first
            deadline = time.monotonic() + 2.0
            while entry_key(self._state_id) < entry_key(entry_id) and time.monotonic() < deadline and not self._stopping.is_set():
                await asyncio.sleep(0.01)
            msg = self._message(env, live=False)
            if msg is not None and msg.channel_id in self.state.channels:
                self.state.observe(msg)  # no-op if the state reader got it already
                decisions = self.policy.on_message(self.state, msg)
                reactions = self.policy.reactions(self.state, msg)
                # remembering runs beside the turns: the transcript already holds this message
                await asyncio.gather(self._remember(msg, env["data"]), *(self._react(r) for r in reactions),
                                     *(self.run_turn(d, position=env.get("position")) for d in decisions))

    async def _react(self, reaction: Reaction) -> None:
        token = self.tokens.get(reaction.agent_id)
        if token is None:
            return
        try:
            await self.api.react(token, reaction.channel_id, reaction.message_id, reaction.emoji)
        except (PlatformRefused, httpx.HTTPError) as exc:  # a reaction is a nicety: never worth a failure
            log.info("reaction refused: %s", exc)

    # --- memory ---

    async def _remember(self, msg: Msg, data: dict[str, Any]) -> None:
        """The message becomes a memory of each agent that saw it (once per event: the group's share)."""
        channel = self.state.channels.get(msg.channel_id)
        if channel is None or msg.guild_id is None:
            return
        dm = channel.dm_recipients is not None
        # the channel's readers from the followers index (not a scan of the society), and the author
        witnesses = [a.id for a in self.state.followers(channel, msg.guild_id)]
        author = self.state.agents.get(msg.author_id)
        if author is not None and author.guild_id == msg.guild_id and msg.author_id not in witnesses:
            witnesses.append(msg.author_id)
        if not witnesses:
            return
        ids = dict(self.member_ids[msg.guild_id])
        seen = Seen(msg.id, msg.channel_id, None if dm else (channel.name or "a channel"), msg.author_id, msg.author_name,
                    readable(data), snowflake_time(msg.id), msg.mentions, msg.reply_to, ids, guild_id=msg.guild_id)
        try:
            gained = await asyncio.wait_for(self.memories.observe(seen, witnesses, {i: n for n, i in ids.items()}), timeout=20.0)
            await self._pile_up(gained)
            for agent_id, importance in gained.items():
                if importance >= 3:
                    self._unrated[agent_id] = None
        except Exception as exc:  # noqa: BLE001 - a memory outage must not stop the society talking
            log.warning("remembering failed: %s", exc)

    async def _pile_up(self, gained: dict[int, float]) -> None:
        """Importance piles up per agent (one Redis round trip for all witnesses); past the
        threshold a reflection is written (an rq job)."""
        if not gained:
            return
        key = f"{self.prefix}memory:pending"
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id, importance in gained.items():
                pipe.hincrbyfloat(key, str(agent_id), importance)
            totals = await pipe.execute()
        for (agent_id, _), total in zip(gained.items(), totals):
            if float(total) >= self.settings.memory_reflect_threshold:
                await self._maybe_reflect(agent_id, 0.0)

    async def _maybe_reflect(self, agent_id: int, importance: float) -> None:
        """Importance piles up; past the threshold a reflection is written (an rq job)."""
        key = f"{self.prefix}memory:pending"
        total = float(await self.redis.hincrbyfloat(key, str(agent_id), importance))
        if total < self.settings.memory_reflect_threshold or self.enqueue is None:
            return
        if await self.redis.set(f"{self.prefix}memory:reflecting:{agent_id}", self.name, nx=True, ex=120):
            await self.redis.hincrbyfloat(key, str(agent_id), -total)
            await asyncio.to_thread(self.enqueue, "townsquare.worker.jobs.memory.reflect", agent_id=agent_id)

    async def _on_mind(self, agent: AgentInfo, decision: Decision) -> Memory | None:
        """Sometimes an agent opens with what is on its mind (news.py: its most notable memory
        of the last simulated day) instead of the society's list of topics: that is how news
        travels from one conversation to the next."""
        draw = self.policy.rng("mind", decision.nonce, agent.id, decision.attempt).random()
        if draw >= min(1.0, 2 * self.settings.mind_share):
            return None
        now = self.clock.now()
        try:
            recent = await asyncio.wait_for(self.memories.recent(agent.id, ON_MIND_LIMIT, since=now - on_mind_window(self.settings.sim_speed)),
                                            timeout=5.0)
        except Exception as exc:  # noqa: BLE001
            log.warning("on-mind lookup failed: %s", exc)
            return None
        found = on_mind(recent, now=now, sim_speed=self.settings.sim_speed)
        # its own plan comes up twice as often as what it heard: Generative Agents' party spread because
        # the host kept bringing it up (a host with one revival in a quarter of an hour often never did)
        own_plan = found is not None and found.text.startswith("My plan:")
        return found if draw < (2 if own_plan else 1) * self.settings.mind_share else None

    async def _recall(self, agent: AgentInfo, topic: str, people: dict[int, str]) -> Recall:
        if self.settings.memory_recall <= 0:
            return Recall([], {}, [])
        try:
            return await asyncio.wait_for(self.memories.recall(agent.id, topic, people, k=self.settings.memory_recall, per_person=1),
                                          timeout=5.0)
        except Exception as exc:  # noqa: BLE001 - without memory the agent still talks (and the guard blocks claims)
            log.warning("recall failed: %s", exc)
            return Recall([], {}, [])

    # --- ticks: revival, registry, moods ---

    async def _tick_loop(self) -> None:
        # each chore: (seconds between runs, coroutine); the first run of each is on the first tick
        chores: list[tuple[float, Any]] = [
            (10.0, self._save_moods), (10.0, self._save_bonds), (600.0, self._rate_peers), (3600.0, self._enqueue_maintenance),
            (max(60.0, self.settings.graph_snapshot_minutes * 60), self._enqueue_snapshot), (15.0, self._initiatives),
            (300.0, self._enqueue_backup), (0.0, lambda: self.presence.refresh(self.state)),  # presence: renews or on change
            (5.0, self._world_tick)]
        last = [float("-inf")] * len(chores)
        while not self._stopping.is_set():
            await asyncio.sleep(1.0)
            try:
                await self.refresh_registry()
                await self.world.sync(self.channel_named)  # which news is out (every worker: turns talk about it)
                if not await self._lead():
                    continue
                for decision in self.policy.revivals(self.state):
                    task = asyncio.create_task(self.run_turn(decision, position=None))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
                for i, (every, chore) in enumerate(chores):
                    if time.monotonic() - last[i] >= every:
                        last[i] = time.monotonic()
                        await chore()
            except Exception:  # noqa: BLE001 - a failed tick must not end the loop
                log.exception("tick failed")

    def channel_named(self, guild_id: int, name: str) -> int | None:
        return next((c.id for c in self.state.channels.values()
                     if c.guild_id == guild_id and c.name == name and c.dm_recipients is None and c.parent is None), None)

    async def _world_tick(self) -> None:
        """The world moves on: due news is released, agents at an event that is on remember it."""
        await self.world.release(self.channel_named, self.state.paused_guilds)
        await self.world.attend(list(self.state.agents.values()), self.state.active)

    async def _initiatives(self) -> None:
        """Private messages to friends and channels for shared interests (rare, per society)."""
        decisions = [*self.policy.outreach(self.state, self.settings.outreach_seconds),
                     *self.policy.founding(self.state, self.settings.founding_seconds, self.settings.max_society_channels)]
        for decision in decisions:
            task = asyncio.create_task(self._initiative(decision))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _initiative(self, decision: Decision) -> str:
        """Makes the place (a DM, a new channel) for the agent's opening line, then takes the turn."""
        agent = self.state.agents.get(decision.agent_id)
        if agent is None:
            return "skipped"
        token = self.tokens[agent.id]
        try:
            if decision.trigger == "reach":
                dm = await self.api.open_dm(token, decision.invitees[0])
                channel = self.state.set_channel(ChannelState(int(dm["id"]), agent.guild_id, "dm", None,
                                                              frozenset({agent.id, decision.invitees[0]})))
            else:
                name = channel_slug(decision.subject or "")
                existing = next((c for c in await self.api.channels(token, agent.guild_id) if c.get("name") == name), None)
                made = existing or await self.api.create_channel(token, agent.guild_id, name, f"{decision.subject}: everyone welcome")
                channel = self.state.set_channel(ChannelState(int(made["id"]), agent.guild_id, name, made.get("topic")))
                channel.last_at = channel.last_at or self.clock.now()
                await registry.join_channel(self.platform, [agent.id, *decision.invitees], name)
        except (PlatformRefused, httpx.HTTPError) as exc:
            log.info("initiative refused: %s", exc)
            return "refused"
        return await self.run_turn(Decision(agent.id, channel.id, decision.trigger, decision.nonce, subject=decision.subject,
                                            invitees=decision.invitees), position=None)

    async def _enqueue(self, job: str, **kwargs: Any) -> None:
        if self.enqueue is not None:
            await asyncio.to_thread(self.enqueue, job, **kwargs)

    async def _enqueue_maintenance(self) -> None:
        """Hourly: prune old records, keep every agent's memory bounded."""
        await self._enqueue("townsquare.worker.jobs.maintenance.prune_records", keep_days=self.settings.records_retention_days)
        await self._enqueue("townsquare.worker.jobs.memory.consolidate", max_per_agent=self.settings.memory_max_per_agent)

    async def _enqueue_snapshot(self) -> None:
        await self._enqueue("townsquare.worker.jobs.graph.snapshot_graph", reason="schedule",
                            keep_days=self.settings.graph_retention_days)

    async def _enqueue_backup(self) -> None:
        """The job decides whether a backup is due (the folder's newest scheduled backup)."""
        if self.settings.backup_every_hours > 0:
            await self._enqueue("townsquare.worker.jobs.backup.scheduled_backup")

    async def _save_bonds(self) -> None:
        changed = self.state.relations.take_dirty()
        try:
            await bonds_db.save_relationships(self.platform, changed)
        except Exception:  # noqa: BLE001
            self.state.relations.mark_dirty(changed)
            log.exception("saving relationships failed")

    async def _rate_peers(self) -> None:
        """Agents rate the peers they know (1..5): the peer-rating half of reputation."""
        now = self.clock.now()
        for agent in list(self.state.agents.values()):
            if not self.state.active(agent):
                continue
            for target, bond in list(self.state.relations.of(agent.id).items()):  # its own ties: linear in ties, not quadratic
                if bond.familiarity >= 0.2:
                    rating = round(2 * max(1.0, min(5.0, 3.0 + 2.0 * bond.affinity + 2.0 * (bond.trust - 0.5)))) / 2
                    if rating != bond.rating:
                        self.state.relations.rated(agent.id, target, rating, now)

    async def _rating_loop(self) -> None:
        """Every worker rates what it remembered (not only the leader), beside the tick loop."""
        while not self._stopping.is_set():
            await asyncio.sleep(1.0)
            try:
                await asyncio.wait_for(self._rate_memories(), timeout=max(30.0, self.settings.turn_timeout_seconds))
            except Exception as exc:  # noqa: BLE001 - rating is optional work
                log.warning("memory rating failed: %s", exc)

    async def _rate_memories(self) -> None:
        """When the LLM has been free for a while, it rates the importance of notable new memories
        (the heuristic's guess stands until then), one agent at a time."""
        if not self._unrated or self._inflight or self.clock.now() - self._last_turn_at < self.settings.memory_rate_idle_seconds:
            return
        agent_id = next(iter(self._unrated))
        del self._unrated[agent_id]
        agent = self.state.agents.get(agent_id)
        if agent is None or not self.state.active(agent):
            return
        try:
            recent = await self.memories.recent(agent.id, 20)
        except Exception as exc:  # noqa: BLE001
            log.warning("memory rating skipped: %s", exc)
            return
        pending = [m for m in recent if not m.rated and m.importance >= 3 and m.kind.value == "observation"]
        if len(pending) > 3:
            self._unrated[agent_id] = None  # the rest next time
        for memory in pending[:3]:
            if self._inflight:
                return  # a turn came in: it has the model
            try:
                async with self.pace.turn(BACKGROUND, max_wait=0):  # only a model nobody waits for
                    thought = await self.chain.think(agent_id=agent.id, guild_id=agent.guild_id, agent_name=agent.persona.name,
                                                     task="rate", messages=rating_messages(memory.text, agent.persona.name),
                                                     options=GenOptions(max_tokens=4, temperature=0.0, seed=1),
                                                     accept=lambda text: text if parse_rating(text) is not None else None)
            except Deferred:
                self._unrated[agent_id] = None
                return
            rating = parse_rating(thought.text or "")
            await self.memories.rated(memory, rating or memory.importance)

    async def _lead(self) -> bool:
        """One worker at a time revives channels and saves moods (a Redis lease)."""
        key = f"{self.prefix}agents:tick-leader"
        if await self.redis.set(key, self.name, nx=True, px=5000):
            return True
        holder = await self.redis.get(key)
        if holder and holder.decode() == self.name:
            await self.redis.pexpire(key, 5000)
            return True
        return False

    async def _save_moods(self) -> None:
        dirty, self.state.dirty_moods = self.state.dirty_moods, set()
        moods = {a: self.state.mood(a).to_json() for a in dirty if a in self.state.agents}
        try:
            await registry.save_moods(self.platform, moods)
        except Exception:  # noqa: BLE001
            self.state.dirty_moods |= dirty
            log.exception("saving moods failed")

    # --- records ---

    def _calls_append(self, call: dict[str, Any]) -> None:
        self._calls.append(call)
        if call["agent_id"] is not None:
            self._agent_tokens[call["agent_id"]].append((self.clock.now(), call["prompt_tokens"] + call["completion_tokens"]))

    async def _flush_loop(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(1.0)
            await self._flush()

    async def _flush(self) -> None:
        calls, self._calls = self._calls, []
        turns, self._turns = self._turns, []
        try:
            await registry.record_llm_calls(self.platform, calls)
            await registry.record_turns(self.platform, turns)
        except Exception:  # noqa: BLE001 - records are kept for the next flush
            self._calls[:0], self._turns[:0] = calls, turns
            log.exception("recording turns failed")
            return
        await count_records(self.redis, self.settings.redis_prefix, calls, turns)  # /metrics: the society's counters
