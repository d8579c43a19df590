"""A turn, as the worker runs it: read the channel, plan (agents/turn/plan.py), put the plan into
words through the model and the gate (agents/turn/speak.py), post through the public API, and
record what happened.

The turn holds a place in front of the model (pacing.py) only while the model works for it: a
person's message to an agent goes first, a turn nobody asked for gives up when the model is
too busy, and a slow model is waited for, never timed out into throwing its work away.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ...agents.brain.backends import GenOptions
from ...agents.memory.model import Kind, Memory
from ...agents.memory.remember import Recall
from ...agents.mind.policy import AgentInfo, ChannelState, Decision
from ...agents.mind.relations import BondsOf, describe
from ...agents.society.persona import Persona
from ...agents.turn.gate import GateContext
from ...agents.turn.knowing import asks_for_facts, best_known, expert_for, known_or_view, view_on
from ...agents.turn.passing import pass_on_lines
from ...agents.turn.plan import (
    Heard,
    Plan,
    is_question,
    keyphrase,
    object_phrase,
    plan_invite,
    plan_opener,
    plan_reach,
    plan_reply,
)
from ...agents.turn.realise import Line, Scene
from ...agents.turn.roster import Roster
from ...agents.turn.speak import Spoken, speak
from ...agents.world.subjects import Subject
from ...platform.actions import agents as registry
from ...platform.actions import dashboard as live
from .api import PlatformRefused
from .pacing import AGENT_DIRECT, CONVERSATION, HUMAN_DIRECT, INITIATIVE, Deferred, candidates_for

if TYPE_CHECKING:
    from .worker import AgentWorker

log = logging.getLogger("townsquare.worker")

FAILED = ("timeout", "error", "unreachable")
EXPERTS_CONSIDERED = 20  # members whose knowledge a question nobody here can answer is matched against
# a line like one of the channel's last LOOP_WINDOW messages is a loop (the scorecard reads
# near-duplicates over the same window, platform/analytics/textstats.py)
LOOP_WINDOW = 20
SOCIETY_LOOP_WINDOW = 60  # the last lines this worker's agents said anywhere in the society, also loop-checked
WORLD_SHARE = 0.75  # of revivals with nothing on the agent's mind: a subject from the world (the rest: the society's topics)


def display_name(message: dict[str, Any]) -> str:
    author = message.get("author") or {}
    return author.get("global_name") or author.get("username") or "someone"


def readable(message: dict[str, Any]) -> str:
    """Content with mentions as @names (what a person reading the channel sees)."""
    content = message.get("content") or ""
    for user in message.get("mentions") or []:
        name = user.get("global_name") or user.get("username") or "someone"
        content = content.replace(f"<@{user['id']}>", f"@{name}").replace(f"<@!{user['id']}>", f"@{name}")
    return content


_MENTION = re.compile(r"<(?:@[!&]?|#)\d+>")


def plain(message: dict[str, Any]) -> str:
    """Content without its mentions: what the planner and the gate read ("<@1> is it open?" ->
    "is it open?"); the transcript shows the mentions as @names (`readable`)."""
    return " ".join(_MENTION.sub(" ", message.get("content") or "").split())


def thread_name(starter: str) -> str:
    """A thread's name: what its first message is about ("the best museum"), not its first words
    ("Tobias, what do you think of")."""
    about = (object_phrase(starter) or "").split(" ", 1)[-1] or keyphrase(starter, 4)  # "the best museum" -> "best museum"
    return (about[:1].upper() + about[1:])[:90] if about else "A longer talk"


def _author_id(message: dict[str, Any]) -> int | None:
    author = message.get("author") or {}
    return int(author["id"]) if author.get("id") else None


def rejected_words(spoken: Spoken) -> str:
    """Why a turn whose every candidate the gate turned down posted nothing, for the dashboard."""
    return f"the quality gate rejected every candidate ({', '.join(sorted(set(spoken.rejections))) or 'nothing usable'})"


def on_mind_subject(memory: Memory, here: str | None, speaker: str, news_source: str | None = None) -> Subject | None:
    """A memory on the agent's mind to pass on as it was said, or None for what is not repeated
    that way (its own words, a private message, a reflection, what was said in this very channel,
    the society's news feed: the world brings its news up as news, "Did you hear? ...")."""
    text = memory.text
    if memory.kind is not Kind.OBSERVATION or text.startswith("I said") or " wrote to me privately: " in text[:100]:
        return None
    if not new_here(text, here, news_source):
        return None
    return Subject("mind", text, share=True) if pass_on_lines(text, speaker.split()[0]) else None


def new_here(memory: str, here: str | None, news_source: str | None) -> bool:
    """A memory that would be news in channel `here`: not the news feed's post (the world tells
    its news) and not something said in this very channel (it heard it already)."""
    if news_source and memory.startswith(f"{news_source} said in #"):
        return False
    return not (here and f" in #{here}: " in memory[:100])


class TurnTaking:
    """The turn half of `AgentWorker` (the other half is its loops)."""

    async def run_turn(self: AgentWorker, decision: Decision, *, position: int | None) -> str:
        agent = self.state.agents.get(decision.agent_id)
        channel = self.state.channels.get(decision.channel_id)
        if agent is None or channel is None or not self.state.active(agent):
            return "skipped"
        if self._tokens_used(agent.id) >= self.settings.agent_tokens_per_minute:
            self._record_turn(decision, agent, position, "throttled", None, 0, 0.0, "over its token budget for this minute")
            return "throttled"
        lock = f"{self.prefix}agents:turn:{agent.id}"
        ttl = int(self.settings.turn_timeout_seconds * 1000) + 5000
        # a direct turn waits for the agent's current turn (even a dead worker's lock expires); others give up
        deadline = time.monotonic() + (ttl / 1000 + 1 if decision.waits else 0)
        while not await self.redis.set(lock, self.name, nx=True, px=ttl):  # one turn per agent across workers
            if time.monotonic() >= deadline:
                return "busy"
            await asyncio.sleep(0.2)
        started = time.perf_counter()
        self._last_turn_at = self.clock.now()
        outcome, message_id, llm_ms, error = "error", None, 0, None
        try:
            async with self._agent_locks[agent.id], asyncio.timeout(self.settings.turn_timeout_seconds):
                outcome, message_id, llm_ms, error = await self._turn(agent, channel, decision)
        except TimeoutError:
            outcome, error = "timeout", f"the turn ran over its time budget ({self.settings.turn_timeout_seconds:.0f} s)"
        except PlatformRefused as exc:
            outcome, error = "error", f"the platform refused: {exc}"[:300]
            log.warning("turn refused by the platform", extra={"agent": agent.id, "status": exc.status})
        except Exception as exc:  # noqa: BLE001 - one agent's failure never takes the worker down
            log.exception("turn failed", extra={"agent": agent.id})
            outcome, error = "error", f"{type(exc).__name__}: {exc}"[:300]
        finally:
            await self.redis.delete(lock)
            await live.end_activity(self.redis, self.prefix, agent.id)
        self._record_turn(decision, agent, position, outcome, message_id, llm_ms, started, error)
        await self._account(agent, outcome, error)
        return outcome

    def _record_turn(self: AgentWorker, decision: Decision, agent: AgentInfo, position: int | None, outcome: str,
                     message_id: int | None, llm_ms: int, started: float, error: str | None = None) -> None:
        total = int((time.perf_counter() - started) * 1000) if started else 0
        self._turns.append({"agent_id": agent.id, "guild_id": agent.guild_id, "channel_id": decision.channel_id,
                            "trigger": decision.trigger, "event_position": position, "outcome": outcome, "message_id": message_id,
                            "llm_ms": llm_ms, "total_ms": max(total, llm_ms), "error": error[:300] if error else None})

    async def _account(self: AgentWorker, agent: AgentInfo, outcome: str, error: str | None) -> None:
        """Consecutive failures pause a misbehaving agent, with the reason, instead of letting it
        spin. A busy model (deferred turns) and a strict gate (rejected ones) are not failures."""
        if outcome in FAILED:
            self._failures[agent.id] += 1
            if self._failures[agent.id] >= self.settings.agent_max_failures:
                reason = f"paused by the runtime after {self._failures[agent.id]} failed turns in a row: {error}"[:300]
                self._failures[agent.id] = 0
                agent.state = "paused"
                try:
                    await registry.do_set_state(self.platform, None, agent.id, "paused", reason)
                except Exception:  # noqa: BLE001
                    log.exception("could not pause agent %s", agent.id)
        elif outcome in ("posted", "reacted", "duplicate", "silent", "rejected", "deferred"):
            self._failures[agent.id] = 0

    def _priority(self: AgentWorker, decision: Decision, heard: Heard | None) -> int:
        if decision.direct:
            return HUMAN_DIRECT if heard is not None and heard.human else AGENT_DIRECT
        return CONVERSATION if decision.trigger == "roll" else INITIATIVE

    def _plan(self: AgentWorker, agent: AgentInfo, channel: ChannelState, decision: Decision, heard: Heard | None,
              recall: Recall, seed: int, world: Subject | None = None) -> Plan:
        persona = agent.persona
        invited = [self.names.get(i) or self._member_name(agent.guild_id, i) for i in decision.invitees]
        if decision.trigger == "found":
            return plan_invite(persona, decision.subject or channel.topic or channel.name, channel.name, invited, seed=seed)
        if decision.trigger == "reach":
            return plan_reach(persona, invited[0], decision.subject, seed=seed)
        if heard is None:
            subject = decision.subject or channel.topic or "what is new today"
            news = world.share if world is not None else (decision.subject is not None and decision.subject not in
                                                          self.state.topics.get(agent.guild_id, []))
            return plan_opener(persona, subject, seed=seed, news=news, memories=recall.lines, world=world.kind if world else None,
                               view=self._own_view(persona, subject))
        bond = self.state.relations.get(agent.id, self.member_ids[agent.guild_id].get(heard.author, 0))
        match = self.policy.relevance(agent, heard.text) if self.policy.relevance else 0.0
        # what it knows that bears on the message: the answer to a question, else something to add; else a
        # view of its own on it
        # (a person's question may be answered from what any local knows: the places, the calendar, who is where)
        known, opinion = known_or_view(persona, heard.text, self.text_relevance, self.settings.known_relevance_floor,
                                       self.world.local(agent) if heard.human else (), person=heard.human)
        expert = None
        if known is None and is_question(heard.text) and heard.human and heard.to_me and asks_for_facts(heard.text):
            expert = self._expert(agent, channel, heard.text)
        # what it remembers that may be passed on: not the news feed's posts (the world tells its news) nor what
        # this channel heard already
        source = self.world.news_source(agent.guild_id)
        memories = [m for m in recall.lines if new_here(m, channel.name, source)]
        aside = self.world.aside(agent, heard.text, self._recent_own[agent.id])
        if known is None and aside is not None and aside.kind.startswith("news"):
            # told a piece of news: what it thinks of it, when it has a view ("Time will tell." read as stock)
            known = view_on(persona, heard.text, self.text_relevance, self.settings.known_relevance_floor)
            opinion = known is not None
        return plan_reply(persona, heard, seed=seed, mood=self.state.mood(agent.id).label(), bond=bond, memories=memories,
                          interests_match=match, known=known, expert=expert, world=self.world.lines(agent), aside=aside,
                          model_talk=self.settings.model_between_agents, opinion=opinion)

    def _own_view(self: AgentWorker, persona: Persona, question: str) -> str | None:
        """The speaker's own answer to a question it puts to the channel (one of its `views`)."""
        if not is_question(question):
            return None
        return view_on(persona, question, self.text_relevance, self.settings.known_relevance_floor)

    def _open_question(self: AgentWorker, agent: AgentInfo, history: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The channel's last message when it is another member's question that the agent knows the
        answer to or has a view on (its `knows`, its `views`)."""
        last = history[-1] if history else None
        if last is None or _author_id(last) in (None, agent.id) or not is_question(plain(last)):
            return None
        person = not (last.get("author") or {}).get("bot")  # a person's question may be answered from the world, as in _plan
        said, _ = known_or_view(agent.persona, plain(last), self.text_relevance, self.settings.known_relevance_floor,
                                self.world.local(agent) if person else (), person=person)
        return last if said is not None else None

    def _expert(self: AgentWorker, agent: AgentInfo, channel: ChannelState, question: str) -> str | None:
        """Who in this channel's crowd would know (bounded: a thousand-agent society is not scanned per question)."""
        near = (a for a in self.state.followers(channel, agent.guild_id) if a.id != agent.id and a.persona.knows)
        others = [a.persona for a in itertools.islice(near, EXPERTS_CONSIDERED)]
        return expert_for(question, others, self.text_relevance, self.settings.known_relevance_floor)

    async def _turn(self: AgentWorker, agent: AgentInfo, channel: ChannelState,
                    decision: Decision) -> tuple[str, int | None, int, str | None]:
        token = self.tokens[agent.id]
        persona = agent.persona
        # the channel's last LOOP_WINDOW messages for the loop check and the subjects said lately; the
        # prompt and the people around read the last `context_messages`
        said = await self.api.history(token, channel.id, max(LOOP_WINDOW, self.settings.context_messages))
        history = said[-self.settings.context_messages:]
        lines = tuple(Line(display_name(m), readable(m)) for m in history if m.get("content"))
        heard = None
        if decision.trigger == "revive" and (asked := self._open_question(agent, history)) is not None:
            # the channel went quiet on a question nobody answered: one who has something to say to it
            # answers it (asking another question over it left channels of unanswered questions)
            decision = replace(decision, trigger="roll", reply_to_message=int(asked["id"]))
        if decision.reply_to_message:
            answered = next((m for m in history if m.get("id") == str(decision.reply_to_message)), None)
            if answered is None:  # more was said while the turn waited: read the message itself
                answered = await self.api.message(token, channel.id, decision.reply_to_message)
            if answered is None or not answered.get("content"):
                return "skipped", None, 0, "the message to answer is gone or has no text"
            author = answered.get("author") or {}
            heard = Heard(display_name(answered), plain(answered), human=not author.get("bot"), to_me=decision.direct)
            if decision.direct and author.get("bot"):
                heard = self._handed(agent, answered) or heard
        world: Subject | None = None
        topic_subject = decision.subject  # the society's own topic the policy chose (a revival's last resort)
        if decision.trigger == "revive":  # what is on its mind, else what the world gives it, else a topic of the society's
            # (passed on as it was said, agents/turn/passing.py: a small model handed a memory garbled it)
            mind = await self._on_mind(agent, decision)
            world = on_mind_subject(mind, channel.name, persona.name, self.world.news_source(agent.guild_id)) if mind else None
            subject = world.content if world is not None else None
            if subject is None and self.policy.rng("world", decision.nonce, agent.id, decision.attempt).random() < WORLD_SHARE:
                world = self.world.subject(agent, channel, self.policy.rng("subject", decision.nonce, agent.id, decision.attempt),
                                           [readable(m) for m in said if m.get("content")])
                subject = world.content if world is not None else None
            decision = replace(decision, subject=subject or decision.subject)
        people: dict[int, str] = {}
        first = self._author_of(history, decision.reply_to_message) if decision.reply_to_message else None
        for other in (first, *decision.invitees, *(channel.dm_recipients or ())):
            if other is not None and other != agent.id:
                people.setdefault(other, self.names.get(other) or self._member_name(agent.guild_id, other))
        for m in reversed(history):
            if m.get("author") and int(m["author"]["id"]) != agent.id:
                people.setdefault(int(m["author"]["id"]), display_name(m))
        people = dict(list(people.items())[:3])
        topic = heard.text if heard is not None else (decision.subject or " ".join(line.content for line in lines[-2:]))
        recall = await self._recall(agent, topic, people)
        seed = self.policy.rng(decision.nonce, agent.id, decision.attempt).randrange(2**31)
        plan = self._plan(agent, channel, decision, heard, recall, seed, world)
        gate = GateContext(
            # the society's members as an index and views, not copies: a turn costs the same in a society of 10 or 10,000
            own_name=persona.name, members=list(people.values()), roster=self._roster(agent.guild_id), bio=persona.bio,
            answering=heard.text if heard is not None else None, subject=plan.content if heard is None else None,
            own_recent=(*self._recent_own[agent.id], *(readable(m) for m in said if _author_id(m) == agent.id)),
            others_recent=(*(readable(m) for m in said if m.get("content") and _author_id(m) != agent.id
                             and m.get("id") != str(decision.reply_to_message)),
                           *(line for line in self._said_in_society[agent.guild_id] if heard is None or line != heard.text)),
            names_to_ids=self.member_ids[agent.guild_id], bonds=BondsOf(self.state.relations, agent.id),
            knowledge=recall.knowledge, relevance=self.text_relevance, relevance_floor=self.settings.gate_relevance_floor)
        scene = Scene(self.state.guild_names.get(agent.guild_id, "the society"), channel.name or "dm", channel.topic, lines,
                      mood=self.state.mood(agent.id).tone(),
                      ties=tuple(describe(self.state.relations.get(agent.id, pid), pname) for pid, pname in list(people.items())[:2]),
                      memories=tuple(recall.lines), situation=self.world.situation(agent) or "")
        if plan.act == "react" and decision.reply_to_message is not None:  # an emoji, not words: no model
            try:
                await self.api.react(token, channel.id, decision.reply_to_message, plan.content)
            except PlatformRefused as exc:  # the message went meanwhile: nothing to react to
                return "skipped", None, 0, f"the reaction was refused: {exc}"[:300]
            return "reacted", None, 0, None
        options = GenOptions(max_tokens=self.settings.reply_max_tokens, temperature=0.7, seed=seed)
        max_wait = None if decision.direct else self.settings.pace_max_wait_seconds
        try:
            # a line composed without the model (plan.composed) takes no place in front of it
            async with contextlib.nullcontext() if plan.composed else self.pace.turn(self._priority(decision, heard), max_wait):
                if plan.must_post:  # a reply is certainly coming: say so
                    await self.api.typing(token, channel.id)
                await live.signal_activity(self.redis, self.prefix, agent.id, "thinking", self.settings.turn_timeout_seconds,
                                           channel.id)
                spoken = await speak(self.chain, agent_id=agent.id, guild_id=agent.guild_id, persona=persona, plan=plan,
                                     scene=scene, gate=gate, options=options, form=self.settings.reply_form,
                                     candidates=candidates_for(self.settings.reply_candidates, self.pace.waiting, plan.must_post),
                                     relevance=self.text_relevance,
                                     cache_key=heard.text if heard is not None and decision.direct else None,
                                     task="reply" if heard is not None else "revive")
        except Deferred as exc:
            return "deferred", None, 0, f"the model was busy: {exc}"
        if spoken.unavailable:
            await self._rest(agent)
            return "resting", None, spoken.llm_ms, "every LLM backend is switched off by its breaker (they failed)"
        if not spoken.reached:
            return "unreachable", None, spoken.llm_ms, "no LLM backend answered"
        if spoken.text is None and decision.trigger == "revive" and plan.composed:
            # what the world or its mind gave it was said lately (the gate's loop check: here, or by the
            # agent elsewhere): the society's own questions instead, when they are lines already (no
            # model), the policy's choice first, then two others, not silence
            others = [t for t in self.state.topics.get(agent.guild_id, []) if t not in (topic_subject, plan.content)]
            rng = self.policy.rng("retry", decision.nonce, agent.id, decision.attempt)
            for topic in [t for t in (topic_subject,) if t and t != plan.content] + rng.sample(others, min(2, len(others))):
                retry = plan_opener(persona, topic, seed=seed, view=self._own_view(persona, topic))
                if not retry.composed:
                    continue
                plan = retry
                spoken = await speak(self.chain, agent_id=agent.id, guild_id=agent.guild_id, persona=persona, plan=plan, scene=scene,
                                     gate=replace(gate, subject=plan.content), options=options, task="revive")
                if spoken.text is not None:
                    break
        if spoken.text is None:
            return "rejected", None, spoken.llm_ms, rejected_words(spoken)
        text, handed_to = self._handing_off(agent, plan, spoken)
        message_id = await self._post(agent, channel, decision, history, lines, text, token, handed_to)
        if recall.used:
            try:
                await self.memories.reinforce_useful(recall.used, spoken.text)
            except Exception as exc:  # noqa: BLE001
                log.warning("memory feedback failed: %s", exc)
        return "posted", message_id, spoken.llm_ms, None

    def _handing_off(self: AgentWorker, agent: AgentInfo, plan: Plan, spoken: Spoken) -> tuple[str, int | None]:
        """An honest answer that names who would know mentions them, so that they are asked
        ("Ask @Sofia Lindqvist."): the expert's turn then answers the person (`_handed`)."""
        expert_id = self.member_ids[agent.guild_id].get(plan.expert) if plan.expert and spoken.source == "plan" else None
        if expert_id is None or spoken.text is None:
            return spoken.text or "", None
        text, named = re.subn(rf"\b{re.escape(plan.expert.split()[0])}\b", f"<@{expert_id}>", spoken.text, count=1)  # type: ignore[union-attr]
        return (text, expert_id) if named else (spoken.text, None)

    def _handed(self: AgentWorker, agent: AgentInfo, answered: dict[str, Any]) -> Heard | None:
        """A person's question another agent handed to this one (its honest answer mentions this
        agent and replies to the question), when this agent knows the answer: the turn answers
        the person, not the agent who handed it on."""
        asked = answered.get("referenced_message") or {}
        author = asked.get("author") or {}
        mentions = {str(u.get("id")) for u in answered.get("mentions") or []}
        if not asked.get("content") or author.get("bot") or str(agent.id) not in mentions:
            return None
        question = plain(asked)
        if not is_question(question) or best_known(agent.persona.knows, question, self.text_relevance,
                                                   self.settings.known_relevance_floor) is None:
            return None
        return Heard(display_name(asked), question, human=True, to_me=True)

    async def _post(self: AgentWorker, agent: AgentInfo, channel: ChannelState, decision: Decision, history: list[dict[str, Any]],
                    lines: tuple[Line, ...], text: str, token: str, handed_to: int | None = None) -> int:
        target_channel = channel.id
        mention: tuple[int, ...] = tuple(decision.invitees) if decision.trigger == "found" else ()
        prefix = " ".join(f"<@{i}>" for i in mention) + " " if mention else ""
        if handed_to is not None:  # named in the text itself, not as a prefix
            mention = (*mention, handed_to)
        # answers are Discord replies (DMs need none): who answers whom is explicit, for people and for bonds
        reply_to = decision.reply_to_message if decision.trigger in ("mention", "reply", "roll") else None
        if decision.in_thread and reply_to is not None:
            # the back-and-forth moves into a thread opened from the message being answered
            starter = next((m for m in history if m.get("id") == str(reply_to)), None)
            thread = await self.api.start_thread(token, channel.id, reply_to, thread_name(plain(starter) if starter else ""))
            target_channel, reply_to = int(thread["id"]), None
            author = self._author_of(history, decision.reply_to_message)
            if author is not None:
                mention, prefix = (author, *((handed_to,) if handed_to is not None else ())), f"<@{author}> "
        await live.signal_activity(self.redis, self.prefix, agent.id, "speaking", live.SPEAKING_SECONDS, target_channel)
        sent = await self.api.send(token, target_channel, prefix + text, nonce=decision.nonce, reply_to=reply_to, mention=mention)
        self._recent_own[agent.id].append(text)
        self._said_in_society[agent.guild_id].append(text)
        self.state.last_spoke[agent.id] = self.clock.now()
        return int(sent["id"])

    def _member_name(self: AgentWorker, guild_id: int, user_id: int) -> str:
        return self.member_names[guild_id].get(user_id, "a neighbour")

    def _roster(self: AgentWorker, guild_id: int) -> Roster:
        """The gate's index of the society's member names, made again only when a name changes."""
        roster = self._rosters.get(guild_id)
        if roster is None:
            roster = self._rosters[guild_id] = Roster(self.member_ids[guild_id])
        return roster

    @staticmethod
    def _author_of(history: list[dict[str, Any]], message_id: int | None) -> int | None:
        found = next((m for m in history if m.get("id") == str(message_id)), None)
        return int(found["author"]["id"]) if found and found.get("author") else None

    async def _rest(self: AgentWorker, agent: AgentInfo) -> None:
        """Every backend is down: the agent rests (silent, shown as resting) until the breakers retry."""
        seconds = self.routing.breaker.recovery_seconds
        agent.resting_until = self.clock.now() + seconds
        await registry.set_resting(self.platform, agent.id, datetime.now(UTC) + timedelta(seconds=seconds))

    def _tokens_used(self: AgentWorker, agent_id: int) -> int:
        window, cutoff = self._agent_tokens[agent_id], self.clock.now() - 60
        while window and window[0][0] < cutoff:
            window.popleft()
        return sum(n for _, n in window)
