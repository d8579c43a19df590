"""A planned turn put into words: candidates from the model, each through the gate, the most
relevant kept; a turn that must happen and got nothing usable posts the plan's own line.

Nothing the gate rejected is ever posted, and every rejection is recorded with its reason in
the LLM-call records (the chain logs the call with `error = "gate:<reason>"`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ..brain.backends import GenOptions
from ..brain.chain import FallbackChain
from ..society.persona import Persona
from .gate import GateContext, Verdict, judge
from .knowing import carries
from .plan import Plan
from .realise import Scene, build_prompt, prompt_texts
from .text import sentences, stems, words


@dataclass(frozen=True)
class Spoken:
    text: str | None
    source: str  # llm | cache | plan (the fallback line) | none
    llm_ms: int = 0
    rejections: tuple[str, ...] = ()
    unavailable: bool = False  # every backend is switched off by its breaker
    reached: bool = True  # some backend answered


SMALL_TALK = ("agree", "disagree", "joke", "answer", "ask", "share")


def _vocatives_dropped(text: str, names: Sequence[str]) -> str:
    """The line without calling on these members by name ("Guess what, Sam, ..." in a reply to
    Maren: a small model names whoever the transcript named last)."""
    for name in names:
        first = re.escape(name.split()[0])
        text = re.sub(rf",\s*{first}\s*,", ",", text)
        text = re.sub(rf",\s*{first}\s*(?=[.!?])", "", text)
        text = re.sub(rf"^{first},\s*", "", text)
    return text[:1].upper() + text[1:] if text else text


def small_talk(text: str, plan: Plan, members: Sequence[str] = ()) -> str:
    """Agents chatting among themselves say one thing: a reply to another agent that carries
    nothing known keeps its first sentence (two when the first is a word or two: "Honestly,
    yes."); a reply to a person, two. A small model's later sentences are where it drifts."""
    if plan.heard is None or plan.known or plan.act not in SMALL_TALK:
        return text
    said = sentences(text)
    if plan.heard.human:  # a person gets a fuller answer, still not a ramble
        keep = said[:2]
    else:
        keep = said[:2] if len(said) > 1 and len(words(said[0])) < 3 else said[:1]
    short = " ".join(keep) if keep else text
    if not plan.heard.human:  # an agent answers the agent it answers, not whoever else was named
        short = _vocatives_dropped(short, [m for m in members if m.split()[0] != (plan.to_first or "")])
    return short


def anchor(plan: Plan) -> str:
    """What the line must be about: the message answered, else the plan's subject."""
    return plan.heard.text if plan.heard is not None else plan.content


async def speak(chain: FallbackChain, *, agent_id: int | None, guild_id: int | None, persona: Persona, plan: Plan, scene: Scene,
                gate: GateContext, options: GenOptions, form: str = "transcript", candidates: int = 2,
                relevance: Callable[[str, str], float] | None = None, cache_key: str | None = None,
                task: str = "reply") -> Spoken:
    if plan.act == "react":  # an emoji on the message (the caller adds it), no words
        return Spoken(None, "react", 0, (), reached=True)
    if plan.composed:  # an honest "I don't know" (no guess from the model), what the speaker knows or its own day says
        composed = replace(gate, relevance=None, prompt_texts=())
        line = next((line for line in plan.fallbacks() if judge(line, composed).ok), None)
        if line is None and plan.must_post:  # a person asked again: answered again (a repeat, not silence)
            again = replace(composed, own_recent=(), others_recent=())
            line = next((line for line in plan.fallbacks() if judge(line, again).ok), None)
            if line is None and (plan.known or plan.aside is not None):
                # what it knows could not be said (the gate refused every way of saying it): a person who asked
                # still gets an honest line, not silence
                honest = replace(plan, act="answer", known=None, opinion=False, aside=None, honest=True, hint=None)
                line = next((line for line in honest.fallbacks() if judge(line, again).ok), None)
        return Spoken(line, "plan" if line else "none", 0, (), reached=True)
    prompt = build_prompt(form, persona, plan, scene)
    ctx = replace(gate, prompt_texts=(*gate.prompt_texts, *prompt_texts(persona, prompt)), lead=prompt.lead)
    if prompt.lead:  # a cached line began with another plan's first words: never glued to these
        cache_key = None
    rejections: list[str] = []

    def accept(text: str) -> Verdict:
        if prompt.lead:  # the line starts with the plan's words; a completion that repeats them is not doubled
            own = text.lstrip().removeprefix(prompt.lead)
            if len(words(own)) < 3:  # "Marcus, what" + " ?": the plan's words alone say nothing
                rejections.append("unfinished")
                return Verdict(None, "unfinished")
            own = text.lstrip()
            if not own.startswith(prompt.lead):
                text = prompt.lead + ("" if own[:1] in "'’,.!?;:" else " ") + own
        verdict = judge(text, ctx)
        if verdict.reason:
            rejections.append(verdict.reason)
        return verdict

    kept: list[tuple[float, str, str]] = []
    llm_ms, reached = 0, False
    wanted = max(1, candidates)
    tries = wanted + 2  # nothing passed yet: two more tries (a rejected turn ends a conversation; a person's gets the plan's line)
    for i in range(tries):
        if kept and i >= wanted:
            break
        opts = replace(options, stop=prompt.stop, seed=(options.seed or 0) + 7919 * i,
                       temperature=options.temperature + 0.1 * i)
        thought = await chain.think(agent_id=agent_id, guild_id=guild_id, agent_name=persona.name, task=task,
                                    messages=list(prompt.messages), prompt=prompt.text or None, options=opts, accept=accept,
                                    cache_key=cache_key)
        llm_ms += thought.llm_ms
        reached = reached or thought.reached
        if thought.unavailable:
            if kept:  # a line already passed: the backends going down after it does not undo it
                break
            return Spoken(None, "none", llm_ms, tuple(rejections), unavailable=True, reached=False)
        if thought.text:
            score = relevance(thought.text, anchor(plan)) if relevance else 0.0
            kept.append((score, thought.text, thought.source))
            if relevance is None or thought.source == "cache":
                break
    plain = replace(ctx, relevance=None, prompt_texts=())
    if plan.must_post:  # a person asked: the answer may repeat what was said before (asked again, answered again)
        plain = replace(plain, own_recent=(), others_recent=())

    def from_plan() -> Spoken | None:
        """The first of the plan's own lines that the gate passes, as what is said."""
        line = next((line for line in plan.fallbacks() if judge(line, plain).ok), None)
        return Spoken(line, "plan", llm_ms, tuple(rejections), reached=True) if line is not None else None

    def passing_on(says: Callable[[str], bool]) -> list[tuple[float, str, str]]:
        """The kept lines that say what they must; the others are counted as `strayed`."""
        rejections.extend("strayed" for k in kept if not says(k[1]))
        return [k for k in kept if says(k[1])]

    if plan.recalled and plan.heard is not None and not plan.heard.human and reached:
        # agents chatting: a line shaped by a memory says something of it, or nothing is said (the
        # model, handed "the mill was built in 1794", wrote "it's a big mill, 20 stories high")
        recalled = stems(plan.hint or "") - stems(anchor(plan))
        kept = passing_on(lambda line: len(stems(line) & recalled) >= 2)
    if plan.heard is None and plan.act == "share" and reached:
        # what is on its mind (a memory of what someone said, an event it went to) is passed on, or
        # nothing is said: "Actually, Sam will make the sourdough." passes on nothing but a name
        # (an opener about the world is made from its subject, `Plan.composed`, and never gets here)
        kept = passing_on(lambda line: carries(line, plan.content, ""))
    if kept:
        _, text, source = max(kept, key=lambda k: k[0])
        short = small_talk(text, plan, ctx.members)
        if short != text and judge(short, ctx).ok:  # the cut line passes the gate on its own too
            text = short
        return Spoken(text, source, llm_ms, tuple(rejections), reached=True)
    if plan.must_post and reached and (spoken := from_plan()) is not None:
        return spoken
    return Spoken(None, "none", llm_ms, tuple(rejections), reached=reached)
