"""What the agents say, measured: turns from both bundled societies through the real model
server, the real planner, prompt form and quality gate, and the figures of issue 14.

    .venv/bin/python bench/quality.py [--turns 200] [--model smollm2:135m | PATH.gguf] [--form transcript|chat]
                                      [--candidates 2] [--threads 1] [--sample out.md]
                                      [--subjects topics|world] [--only openers]

The turns are played as conversations, so their states are real: in each channel of the
village and the city an agent opens (a revival topic or news), others answer what was just said
(their lines become the next one's history), a person @mentions an agent with a question, and
people and agents write DMs. Each turn is planned (agents/turn/plan.py), realised through
`townsquare model serve` on loopback (the Ollama client, as the worker does), gated
(agents/turn/gate.py) and, if it passes (or the plan's own line when a person's direct question
got nothing usable), becomes part of the conversation.

`--subjects world` takes the openers' subjects from the society's world (agents/world: the event
on now or coming up, the news released so far, what the agent is doing), at a simulated time
drawn for each opener within the first two days and the speaker's waking hours, and puts the
speaker's whereabouts in the scene, as the worker does; `topics` (the default) opens with the
society's revival topics. `--only openers` plays openers alone (the opener pass rate:
`opener_pass_rate`, posted / opener turns; `opener_candidate_pass_rate`, candidates the gate let
through / candidates generated), each channel keeping its earlier openers as its history, as a
quiet channel that is revived again and again does (so repeats count as loops).

Writes a blind sample of 60 posted messages with their context (shuffled, no source labels) to
--sample, and the key to <sample>.key.json. The LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from townsquare.agents.brain.backends import GenOptions  # noqa: E402
from townsquare.agents.brain.chain import FallbackChain  # noqa: E402
from townsquare.agents.brain.routing import BackendSpec, Routes, Routing  # noqa: E402
from townsquare.agents.mind.clock import SystemClock  # noqa: E402
from townsquare.agents.society.persona import Persona, Society, load_society  # noqa: E402
from townsquare.agents.turn.gate import GateContext  # noqa: E402
from townsquare.agents.turn.knowing import best_known, expert_for, known_or_view, view_on  # noqa: E402
from townsquare.agents.turn.passing import pass_on_lines  # noqa: E402
from townsquare.agents.memory.importance import heuristic_importance  # noqa: E402
from townsquare.agents.memory.news import NOTABLE  # noqa: E402
from townsquare.agents.turn.plan import Heard, Plan, is_question, plan_opener, plan_reach, plan_reply  # noqa: E402
from townsquare.agents.turn.realise import Line, Scene  # noqa: E402
from townsquare.agents.turn.speak import speak  # noqa: E402
from townsquare.agents.turn.text import distinct_n  # noqa: E402
from townsquare.platform.analytics.message import Msg  # noqa: E402
from townsquare.platform.analytics.textstats import TextQuality  # noqa: E402
from townsquare.platform.core.config import Settings  # noqa: E402
from townsquare.agents.world.life import WorldTime, at_minutes, due_news  # noqa: E402
from townsquare.agents.world.facts import local_knowledge  # noqa: E402
from townsquare.worker.runtime.turns import SOCIETY_LOOP_WINDOW  # noqa: E402
from townsquare.agents.world.replies import aside_for  # noqa: E402
from townsquare.agents.world.subjects import pick_subject, situation, world_lines  # noqa: E402

HUMAN = "Sam Carter"  # the person asking questions (a human member of both societies)

# questions a newcomer asks in each kind of channel (the village's and the city's channel names)
QUESTIONS = {
    "general": ["why do the cobbles dip in the middle of the square?", "is the bus running on Sunday, does anyone know?",
                "what's a good place for lunch around here?", "is it going to rain tomorrow, do you think?",
                "who should I ask about the broken street lamp?", "what do people here do on a Friday night?"],
    "market": ["what's in season right now?", "where can I get good eggs on Saturday?", "is the honey stall still there?",
               "how early should I come to the market to get bread?"],
    "garden": ["slugs ate my lettuces, what should I do?", "when should I plant tomatoes outside?",
               "my basil keeps dying, any idea why?", "is it too late to sow carrots?"],
    "history": ["who built the old mill?", "was there ever a flood in the village?", "why is the church bell cracked?"],
    "food": ["what's the best way to keep kimchi from getting too sour?", "any tips for a first sourdough?",
             "where do you get good coffee beans around here?"],
    "music": ["any gigs worth seeing this weekend?", "how do I start learning bass?", "which record shop is best for jazz?"],
    "tech": ["should I learn Python or JavaScript first?", "my laptop is really slow, what should I check?",
             "is a mechanical keyboard worth it?"],
    "books": ["what's a good book for a long train ride?", "anyone want to start a book club?", "is chess hard to learn as an adult?"],
    "fitness": ["how do I start running without hurting my knees?", "where's a good place to cycle on Sunday?",
                "is climbing expensive to get into?"],
    "art": ["where can I take a drawing class?", "who painted the mural by the station?", "any tips for photographing at night?"],
    "late-night": ["anyone else awake? can't sleep.", "what do you do when you can't sleep?"],
}
# the same kind of questions, written after the personas' `knows` were extended (which looked at
# the set above): `--questions heldout` measures answers to questions nobody tuned the society for
HELDOUT = {
    "general": ["where's the post office?", "is there a doctor in the village?", "what's the oldest building here?",
                "does anyone know a good plumber?", "where do people walk their dogs?", "is there anything on this weekend?"],
    "market": ["do the stalls take cards?", "who sells the best cheese?", "what time does the market close?",
               "is there a butcher at the market?"],
    "garden": ["how often should I water my courgettes?", "what can I plant in the shade?", "is it worth getting a greenhouse?",
               "how do I start a compost heap?"],
    "history": ["how old is the church?", "what was the village like a hundred years ago?", "who lived in the big house?"],
    "food": ["where can I get good dumplings?", "how do I make a proper ramen broth?", "what's a good cheap place to eat?"],
    "music": ["where can I hear live music on a weekday?", "is there a choir I could join?", "how do I get a gig at the open mic?"],
    "tech": ["what's a good first laptop for coding?", "how do I back up my photos?", "where can I get my phone screen fixed?"],
    "books": ["is there a good second-hand bookshop?", "what should I read after The Hobbit?", "when is the library open?"],
    "fitness": ["what's a good beginner gym routine?", "where can I swim in the city?", "how do I get back into running after an injury?"],
    "art": ["where can I buy paints and brushes?", "is there a life drawing class?", "what's the best gallery in town?"],
    "late-night": ["what's open late around here?", "any tips for falling asleep?"],
}
DM_OPENERS = ["hi, do you have a minute? I wanted to ask you something.", "thanks for the tip yesterday, it really helped!",
              "are you coming to the meeting on Thursday?", "good morning! how are you today?"]


@dataclass
class Turn:
    society: str
    channel: str
    kind: str  # opener | reply_agent | reply_human | dm
    speaker: str
    act: str
    heard: str | None
    context: list[str]
    text: str | None
    source: str
    seconds: float
    rejections: tuple[str, ...] = ()
    generations: int = 0  # model calls the turn made (each candidate, passed or rejected)
    subject: str | None = None  # an opener's subject


@dataclass
class Run:
    turns: list[Turn] = field(default_factory=list)


def start_model_server(model_arg: str, threads: int) -> tuple[subprocess.Popen[bytes], str, str, Path]:
    """`townsquare model serve` on a free loopback port; a .gguf path is served by its stem."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TOWNSQUARE_MODEL_THREADS": str(threads)}
    model = model_arg
    logs = Path(tempfile.mkdtemp(prefix="quality-bench-"))
    if model_arg.endswith(".gguf"):
        env["TOWNSQUARE_MODELS_DIR"] = str(Path(model_arg).resolve().parent)
        model = Path(model_arg).stem
    proc = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "model", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=(logs / "modelserver.log").open("wb"))
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/tags", timeout=1).status_code == 200:
                return proc, url, model, logs
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the model server did not start")


class Bench:
    def __init__(self, chain: FallbackChain, relevance, form: str, candidates: int, floor: float) -> None:  # type: ignore[no-untyped-def]
        self.chain, self.relevance, self.form, self.candidates, self.floor = chain, relevance, form, candidates, floor
        self.knows, self.known_floor, self.asides, self.local = True, 0.5, True, True
        self.run = Run()
        self.recent_own: dict[str, list[str]] = {}
        self.said_in_society: dict[str, deque[str]] = {}  # the worker's society-wide loop window (turns.SOCIETY_LOOP_WINDOW)
        self.calls = 0  # model calls so far (the chain's record hook counts them)

    def reply(self, persona: Persona, heard: Heard, seed: int, present: list[Persona], society: Society | None = None,
              t: WorldTime | None = None, memories: list[str] | None = None) -> Plan:
        """A reply planned as the worker plans it (worker/runtime/turns.py): what the speaker knows
        that answers a question, else who present would know; at world time `t`, what its day says."""
        known = expert = aside = None
        opinion = False
        world: list[str] = []
        if self.knows:
            local = local_knowledge(society.world, persona.name, t) if society is not None and heard.human and self.local else ()
            known, opinion = known_or_view(persona, heard.text, self.relevance, self.known_floor, local, person=heard.human)
            if known is None and is_question(heard.text) and heard.human and heard.to_me:
                expert = expert_for(heard.text, [p for p in present if p.name != persona.name], self.relevance, self.known_floor)
        if society is not None and society.world is not None and t is not None:
            released = {n.id: n.at for n in due_news(society.world, t)}
            follows = (lambda c: not persona.home_channels or c in persona.home_channels)
            world = world_lines(society.world, persona.name, t, released, follows)
            if self.asides:
                aside = aside_for(society.world, persona.name, t, heard.text, released, follows, self.recent_own.get(persona.name, [])[-6:])
                if self.knows and known is None and aside is not None and aside.kind.startswith("news"):  # its view of the news
                    known = view_on(persona, heard.text, self.relevance, self.known_floor)
                    opinion = known is not None
        # what it remembers: lines said in the society's other channels (the worker recalls them from memory)
        return plan_reply(persona, heard, seed=seed, memories=[m for m in memories or [] if not m.startswith(persona.name)],
                          known=known, expert=expert, world=world, aside=aside, opinion=opinion)

    async def turn(self, society: Society, persona: Persona, plan: Plan, channel: str, topic: str | None, history: list[Line],
                   kind: str, where: str = "") -> str | None:
        heard = plan.heard
        names = [a.name for a in society.agents if a.name != persona.name] + [HUMAN]
        gate = GateContext(own_name=persona.name, members=names, bio=persona.bio,
                           answering=heard.text if heard else None, subject=plan.content if heard is None else None,
                           own_recent=tuple(self.recent_own.get(persona.name, [])[-10:]),
                           others_recent=(*(line.content for line in history[-6:] if line.author != persona.name and
                                            (heard is None or line.content != heard.text)),
                                          *(text for text in self.said_in_society.get(society.guild, ())
                                            if heard is None or text != heard.text)),
                           relevance=self.relevance, relevance_floor=self.floor)
        scene = Scene(society.guild, channel, topic, tuple(history[-6:]), mood="You feel calm and thoughtful.", situation=where)
        started, calls = time.perf_counter(), self.calls
        spoken = await speak(self.chain, agent_id=None, guild_id=None, persona=persona, plan=plan, scene=scene, gate=gate,
                             options=GenOptions(max_tokens=60, temperature=0.7, seed=plan.seed), form=self.form,
                             candidates=self.candidates, relevance=self.relevance)
        seconds = time.perf_counter() - started
        self.run.turns.append(Turn(society.guild, channel, kind, persona.name, plan.act, heard.text if heard else None,
                                   [f"{line.author}: {line.content}" for line in history[-4:]], spoken.text, spoken.source,
                                   seconds, spoken.rejections, self.calls - calls, plan.content if heard is None else None))
        if spoken.text:
            self.recent_own.setdefault(persona.name, []).append(spoken.text)
            self.said_in_society.setdefault(society.guild, deque(maxlen=SOCIETY_LOOP_WINDOW)).append(spoken.text)
            history.append(Line(persona.name, spoken.text))
        return spoken.text


def _world_time(society: Society, persona: Persona, rng: random.Random) -> WorldTime:
    """A moment of the first two simulated days when the speaker is awake."""
    assert society.world is not None
    while True:
        t = at_minutes(rng.randrange(2 * 24 * 60), society.world.first_day)
        if persona.rhythm.awake(t.minute / 60):
            return t


TOPICS_RAISED: dict[str, deque[str]] = {}  # society#channel -> the revival topics asked there lately
RELEVANCE: list = []  # the text relevance (set in main): how well a topic fits a channel
MIND_SHARE = 0.4 * 0.5  # the worker looks at what is on an agent's mind in 4 revivals of 10; about half find something notable


def opener_plan(society: Society, persona: Persona, channel: str, subjects: str, rng: random.Random,
                said: list[str] | None = None, raised: dict[str, int] | None = None,
                heard_elsewhere: list[str] | None = None) -> tuple[Plan, str, WorldTime | None]:
    """The opener's plan, the speaker's whereabouts for the scene and the world time (the replies'
    too): from the world, or a revival topic. `raised`: what openers brought up in this society
    already (as the worker keeps it)."""
    raised = {} if raised is None else raised
    seed = rng.randrange(2**31)
    if heard_elsewhere and rng.random() < MIND_SHARE:
        # what is on its mind: a notable line said in another channel (the worker's on-mind revival),
        # passed on as it was said
        notable = [m for m in heard_elsewhere if m.split(": ", 1)[0].split(" said in ")[0] != persona.name
                   and heuristic_importance(m.split(": ", 1)[1]) >= NOTABLE and f" in #{channel}: " not in m
                   and pass_on_lines(m, persona.name.split()[0]) and m not in raised]
        if notable:
            memory = rng.choice(notable[-6:])
            raised[memory] = 0
            return plan_opener(persona, memory, seed=seed, news=True, world="mind"), "", None
    if subjects == "world" and society.world is not None:
        t = _world_time(society, persona, rng)
        released = {n.id: n.at for n in due_news(society.world, t)}
        follows = (lambda c: not persona.home_channels or c in persona.home_channels)
        found = pick_subject(society.world, persona.name, channel, t, released, follows, random.Random(seed), said or [], raised)
        if found is not None:
            raised[found.content] = t.total
            return (plan_opener(persona, found.content, seed=seed, news=found.share, world=found.kind),
                    situation(society.world, persona.name, t) or "", t)
    topic = channel
    if society.revival_topics:  # a topic asked lately is not asked again soon (the worker's policy: `_subject`)
        lately = TOPICS_RAISED.setdefault(f"{society.guild}#{channel}", deque(maxlen=max(1, len(society.revival_topics) // 2)))
        fresh = [t for t in society.revival_topics if t not in lately] or society.revival_topics
        where = f"{channel} {next((c.topic or '' for c in society.channels if c.name == channel), '')}"
        if RELEVANCE and channel != "general":  # a topic of the channel's own (the worker's `_subject`)
            fit = {t: RELEVANCE[0](t, where) for t in fresh}
            fresh = [t for t in fresh if fit[t] >= 0.6 * max(fit.values())] if max(fit.values()) > 0 else fresh
        topic = rng.choice(fresh)
        lately.append(topic)
    view = view_on(persona, topic, RELEVANCE[0], Settings().known_relevance_floor) if RELEVANCE else None
    return plan_opener(persona, topic, seed=seed, view=view), "", None


async def play(bench: Bench, turns: int, seed: int, subjects: str = "topics", only: str | None = None,
               questions: str = "tuned") -> None:
    rng = random.Random(seed)
    societies = [("village", load_society("village")), ("city", load_society("city"))]
    raised: dict[str, dict[str, int]] = {}  # society -> subject -> simulated minute an opener brought it up
    kept: dict[tuple[str, str], list[Line]] = {}  # each channel keeps what was said in it (revived again and again)
    unasked: dict[tuple[str, str], list[str]] = {}  # each channel's questions not asked yet in this round of them
    rounds = 0
    while len(bench.run.turns) < turns:
        for _, society in societies:
            for spec in society.channels:
                if len(bench.run.turns) >= turns:
                    return
                here = [a for a in society.agents if not a.home_channels or spec.name in a.home_channels] or society.agents
                # each channel keeps what was said in it, round after round, as a real channel does: its
                # subjects are not raised again at once and the gate's loop check sees its history
                history: list[Line] = kept.setdefault((society.guild, spec.name), [])
                opener = rng.choice(here)
                elsewhere = [f"{line.author} said in #{name}: {line.content}" for (guild, name), lines in kept.items()
                             if guild == society.guild and name != spec.name for line in lines[-6:] if line.author != HUMAN]
                plan, where, t = opener_plan(society, opener, spec.name, subjects, rng, [line.content for line in history[-8:]],
                                          raised.setdefault(society.guild, {}), elsewhere)
                if t is None and society.world is not None:  # the worker always knows the time of its world
                    t = _world_time(society, opener, rng)
                await bench.turn(society, opener, plan, spec.name, spec.topic, history, "opener", where)
                if only == "openers":
                    continue
                for _ in range(2):  # agents answer what was just said
                    if not history:
                        break
                    last = history[-1]
                    speaker = rng.choice([a for a in here if a.name != last.author] or society.agents)
                    plan = bench.reply(speaker, Heard(last.author, last.content, human=False, to_me=rng.random() < 0.3),
                                       rng.randrange(2**31), here, society, t, elsewhere)
                    await bench.turn(society, speaker, plan, spec.name, spec.topic, history, "reply_agent")
                asked = rng.choice(here)
                asked_set = HELDOUT if questions == "heldout" else QUESTIONS
                # a person does not ask a channel the same question twice: each channel's questions are
                # asked in a shuffled order, all of them before any again
                pending = unasked.setdefault((society.guild, spec.name), [])
                if not pending:
                    pending += rng.sample(asked_set.get(spec.name, asked_set["general"]), len(asked_set.get(spec.name, asked_set["general"])))
                question = pending.pop()
                history.append(Line(HUMAN, f"@{asked.name} {question}"))
                plan = bench.reply(asked, Heard(HUMAN, f"@{asked.name} {question}", human=True, to_me=True), rng.randrange(2**31), here,
                                   society, t)
                answer = await bench.turn(society, asked, plan, spec.name, spec.topic, history, "reply_human")
                expert = next((a for a in society.agents if a.name == plan.expert), None)
                if answer and expert is not None and best_known(expert.knows, question, bench.relevance, bench.known_floor):
                    # the honest answer mentions who would know (the worker's `_handing_off`): they answer the person
                    plan = bench.reply(expert, Heard(HUMAN, question, human=True, to_me=True), rng.randrange(2**31), here, society, t)
                    await bench.turn(society, expert, plan, spec.name, spec.topic, history, "reply_human")
                elif answer:
                    other = rng.choice([a for a in here if a.name != asked.name] or society.agents)
                    plan = bench.reply(other, Heard(asked.name, answer, human=False, to_me=False), rng.randrange(2**31), here,
                                       society, t, elsewhere)
                    await bench.turn(society, other, plan, spec.name, spec.topic, history, "reply_agent")
            if only == "openers":
                continue
            # DMs: a person writes to an agent; an agent writes to a friend
            agent = rng.choice(society.agents)
            dm: list[Line] = [Line(HUMAN, rng.choice(DM_OPENERS))]
            # the worker reads a DM with the agent's day too ("are you coming to the meeting?")
            when = _world_time(society, agent, rng) if society.world is not None else None
            plan = bench.reply(agent, Heard(HUMAN, dm[0].content, human=True, to_me=True), rng.randrange(2**31), society.agents,
                               society, when)
            await bench.turn(society, agent, plan, "dm", None, dm, "dm")
            friend = rng.choice([a for a in society.agents if a.name != agent.name])
            shared = [i for i in agent.interests if i in friend.interests]  # as the worker chooses (policy.outreach)
            await bench.turn(society, agent, plan_reach(agent, friend.name, rng.choice(shared or friend.interests or ["the weekend"]),
                                                        seed=rng.randrange(2**31)), "dm", None, [], "dm")
        rounds += 1


def figures(run: Run, relevance, model: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    posted = [t for t in run.turns if t.text]
    texts = [t.text or "" for t in posted]
    # the scorecard's measures (platform/analytics/textstats.py), over every earlier posted line
    # (not the channel's last 20: the turns are short conversations in many channels)
    speakers = {name: i for i, name in enumerate(sorted({t.speaker for t in posted}))}
    quality = TextQuality({i: name for name, i in speakers.items()}, window=None, by_channel=False, ngram_window=None)
    for i, t in enumerate(posted):
        quality.feed(Msg(i + 1, 0.0, 0, 0, speakers[t.speaker], True, t.text or ""))
    q = quality.result()
    recital = sum(1 for t in posted if re.search(r"(?i)^you are\b|your way of speaking|speaks in ", t.text or ""))
    replies = [t for t in posted if t.heard]
    above, baseline = 0.0, 0.0
    if len(replies) >= 3:
        rng = random.Random(1)
        shuffled = []
        for i, t in enumerate(replies):
            j = rng.choice([k for k in range(len(replies)) if k != i])
            shuffled.append(relevance(t.text or "", replies[j].heard or ""))
        baseline = float(np.percentile(shuffled, 90))
        above = sum(relevance(t.text or "", t.heard or "") > baseline for t in replies) / len(replies)
    rejections = Counter(r for t in run.turns for r in t.rejections)
    seconds = sorted(t.seconds for t in run.turns)
    human = [t for t in run.turns if t.kind == "reply_human"]
    openers = [t for t in run.turns if t.kind == "opener"]
    return {
        "turns": len(run.turns), "posted": len(posted), "posted_from_plan": sum(1 for t in posted if t.source == "plan"),
        "reacted": sum(1 for t in run.turns if t.source == "react"),
        "human_questions": len(human), "human_answered": sum(1 for t in human if t.text),
        "wrong_voice": q["posted_wrong_voice"], "self_address": q["posted_self_naming"], "assistant_speak": q["posted_assistant_speak"],
        "recital": recital, "near_duplicate_rate": round(q["near_rate"] or 0.0, 3),
        "repeated_5gram_rate": round(q["repeated_5gram_rate"] or 0.0, 3),
        "relevance_above_baseline": round(above, 3), "shuffled_p90": round(baseline, 3),
        "distinct_2": round(distinct_n(texts, 2), 3), "gate_rejections": dict(rejections.most_common()),
        "acts": dict(Counter(t.act for t in posted).most_common()),
        "openers": len(openers), "opener_pass_rate": round(sum(1 for t in openers if t.text) / len(openers), 3) if openers else 0.0,
        "opener_rejections": dict(Counter(r for t in openers for r in t.rejections).most_common()),
        "opener_candidates": sum(t.generations for t in openers),
        "opener_candidate_pass_rate": round(1 - sum(len(t.rejections) for t in openers) / max(1, sum(t.generations for t in openers)), 3),
        "turn_p50_s": round(statistics.median(seconds), 2) if seconds else 0.0,
        "turn_p99_s": round(seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))], 2) if seconds else 0.0,
        "model": model,
    }


def write_sample(run: Run, path: Path, n: int = 60, seed: int = 7) -> None:
    posted = [t for t in run.turns if t.text]
    rng = random.Random(seed)
    picked = rng.sample(posted, min(n, len(posted)))
    lines, key = ["# Blind sample: rate each reply 0/1/2 (2 coherent, in character, on topic; 1 plausible but generic; "
                  "0 broken, off-topic, echoing or wrong voice)", ""], []
    for i, t in enumerate(picked, 1):
        lines.append(f"## {i}. {t.society} #{t.channel} — {t.speaker}")
        lines += [f"    {c}" for c in t.context] or ["    (quiet channel)"]
        lines += [f"  > {t.speaker}: {t.text}", "  rating: ", ""]
        key.append({"n": i, "kind": t.kind, "act": t.act, "source": t.source})
    path.write_text("\n".join(lines), encoding="utf-8")
    path.with_suffix(".key.json").write_text(json.dumps(key, indent=1), encoding="utf-8")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--model", default="smollm2:135m", help="a model name the server knows, or a .gguf file")
    parser.add_argument("--form", choices=["transcript", "chat"], default="transcript")
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--floor", type=float, default=0.25, help="the gate's off-topic floor (embedding cosine; the product's default)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-knows", action="store_true", help="ignore the personas' `knows` (answers from the model alone)")
    parser.add_argument("--no-local", action="store_true", help="a person's question is not answered from the world's facts (places, calendar, routines)")
    parser.add_argument("--no-asides", action="store_true", help="replies ignore what the speaker's own day says (going, doing, news seen)")
    parser.add_argument("--subjects", choices=["topics", "world"], default="topics", help="where openers take their subjects from")
    parser.add_argument("--only", choices=["openers"], default=None, help="play only openers")
    parser.add_argument("--questions", choices=["tuned", "heldout"], default="tuned",
                        help="the person's questions: the set the society files were written against, or a held-out one")
    parser.add_argument("--sample", type=Path, default=Path("bench/out/quality-sample.md"))
    args = parser.parse_args()
    from townsquare.worker.runtime.relevance import embedding_text_relevance

    relevance = embedding_text_relevance()
    RELEVANCE.append(relevance)
    proc, url, model, logs = start_model_server(args.model, args.threads)
    try:
        routing = Routing(backends={"local": BackendSpec(host=url, model=model)}, routes=Routes(default=["local"]))
        counter: list[Bench] = []
        chain = FallbackChain(routing, SystemClock(), record=lambda call: setattr(counter[0], "calls", counter[0].calls + 1))
        bench = Bench(chain, relevance, args.form, args.candidates, args.floor)
        counter.append(bench)
        bench.knows, bench.known_floor, bench.asides = not args.no_knows, Settings().known_relevance_floor, not args.no_asides
        bench.local = not args.no_local
        started = time.perf_counter()
        await play(bench, args.turns, args.seed, args.subjects, args.only, args.questions)
        await chain.close()
        result = figures(bench.run, relevance, model)
        result |= {"knows": not args.no_knows, "local": not args.no_local, "asides": not args.no_asides, "subjects": args.subjects, "only": args.only, "questions": args.questions, "form": args.form, "candidates": args.candidates, "threads": args.threads, "floor": args.floor,
                   "wall_s": round(time.perf_counter() - started, 1), "load_1min": round(os.getloadavg()[0], 2)}
        args.sample.parent.mkdir(parents=True, exist_ok=True)
        write_sample(bench.run, args.sample)
        with args.sample.with_suffix(".all.jsonl").open("w", encoding="utf-8") as f:
            for t in bench.run.turns:
                f.write(json.dumps(t.__dict__, ensure_ascii=False) + "\n")
    finally:
        proc.terminate()
        proc.wait(10)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
