"""An interview answer in the agent's words: the basis chosen in code (evidence.py), a prompt
that states it, the model's candidates through the quality gate, and when every candidate
fails, a plain line made from the evidence itself (never a rejected candidate).

The prompt forms follow the turn's (agents/turn/realise.py, `TOWNSQUARE_REPLY_FORM`): a
transcript of the interview ending with the agent's own name and the first words of its answer
(the model cannot speak for the interviewer), or the model's chat template. Beyond the turn's
gate, an answer must carry what the evidence holds: from memory, words of the memory; when the
agent knows nothing, that it does not know.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from ..brain.backends import GenOptions
from ..brain.chain import FallbackChain
from ..mind.mood import Mood
from ..mind.relations import Bond, describe
from ..society.persona import Persona
from ..turn.gate import GateContext, Verdict, judge
from ..turn.plan import in_own_words
from ..turn.realise import Prompt, persona_card, prompt_texts, third_person
from ..turn.text import lower_first, sentences, words
from .evidence import Evidence

TASK = "interview"  # the LLM-call records' task: analytics tell interviews from the society's own talk
INTERVIEWER = "Interviewer"
MEMORY_CHARS = 160  # characters of one remembered line in the prompt
RULE = "answers the interviewer in the first person, briefly and honestly, and never makes things up"

_NOT_KNOWING = re.compile(r"(?i)\b(?:(?:do not|don't|didn't|did not) know|not sure|haven't heard|have not heard|hadn't heard|no idea|"
                          r"never heard|can't say|cannot say|couldn't (?:tell|say)|nobody (?:has )?told me|news to me)\b")
_NUMBER = re.compile(r"\d+")
# the model narrating the scene ("The interviewer leans in...") instead of answering (seen in the chat form)
_NARRATION = re.compile(r"(?i)\b(?:the|an|my|this) interviewer\b|\binterviewer(?:'s)? (?:asks|asked|says|said|leans|smiles|nods)\b")
_BUT = re.compile(r"(?i),?\s+(?:but|though|although|however)\b")
_YES_NO = re.compile(r"(?i)^\s*(?:have|has|had|do|does|did|is|are|was|were|will|can|could|would|should)\b")
_WORDLESS = frozenset(["that", "this", "with", "have", "heard", "about", "what", "when", "where", "there", "their", "they",
                       "from", "been", "were", "said", "will", "would", "just", "some", "know", "your", "yours"])


@dataclass(frozen=True)
class Interviewee:
    """The agent as it is questioned: who it is, how it feels, whom it knows."""

    persona: Persona
    guild: str
    mood: Mood
    ties: Mapping[int, tuple[str, Bond | None]] = field(default_factory=dict)  # user id -> (name, its bond to them)
    members: Mapping[str, int] = field(default_factory=dict)  # display name -> user id, the agent's own excluded

    @property
    def first(self) -> str:
        return self.persona.name.split()[0]


@dataclass(frozen=True)
class Answer:
    text: str
    source: str  # "llm": the model's words that passed the gate; "plan": a line made from the evidence
    model: str | None  # the model asked (None when no backend answered)
    llm_ms: int = 0
    rejections: tuple[str, ...] = ()
    reached: bool = True  # some backend answered
    unavailable: bool = False  # every backend is switched off by its breaker


def first_person(tie: str) -> str:
    """`describe`'s words ("you are a bit wary of Bob") as the agent says them ("I am ...")."""
    return re.sub(r"\byou\b", "I", re.sub(r"^you are\b", "I am", tie))


def _clip(text: str, limit: int = MEMORY_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def ties_in_view(who: Interviewee, evidence: Evidence, most: int = 3) -> list[tuple[str, Bond | None]]:
    """The people named in the question first, then those it knows best."""
    named = [who.ties.get(pid, (name, None)) for pid, name in evidence.people]
    known = sorted((t for pid, t in who.ties.items() if pid not in dict(evidence.people) and t[1] is not None),
                   key=lambda t: -(t[1].familiarity if t[1] else 0.0))
    return [*named, *known][:most]


def direction(who: Interviewee, question: str, evidence: Evidence, *, you: bool = False) -> str:
    """What the answer must do: a stage direction in the third person (transcript), or a note
    to the agent in the second person (`you`: chat form)."""
    first = who.first
    my = "your" if you else f"{first}'s"
    if evidence.basis == "memory":
        memory = _clip(evidence.memories[0].memory.text, 120)
        return f"Answer from what you remember: {memory}" if you else f"{first} answers from what {first} remembers: {memory}"
    if evidence.basis == "person":
        name, bond = who.ties.get(evidence.people[0][0], (evidence.people[0][1], None))
        tie = describe(bond, name) if you else third_person(describe(bond, name), first)
        return (f"Say honestly how you get on with {name.split()[0]}: {tie}." if you
                else f"{first} says honestly how {first} gets on with {name.split()[0]}: {tie}.")
    if evidence.basis == "self":
        return (f"Say how you are feeling today ({who.mood.label()}) and what you care about." if you
                else f"{first} says how {first} is feeling today ({who.mood.label()}) and what {first} cares about.")
    if evidence.basis == "opinion":
        return (f"Give your own opinion, from {my} interest in {evidence.interest}, without claiming any news." if you
                else f"{first} gives a personal opinion from {my} own interest in {evidence.interest}, without claiming any news.")
    return ("You have not heard anything about this: say so honestly, without guessing." if you
            else f"{first} has not heard anything about this and says so honestly, without guessing.")


def lead(who: Interviewee, question: str, evidence: Evidence, rng: random.Random) -> str:
    """The answer's first words, chosen with its basis (the model goes on from them)."""
    if evidence.basis == "unknown":
        return rng.choice(["I haven't heard", "I don't know", "Honestly, I'm not sure", "I have no idea"])
    if evidence.basis == "memory":
        return "Yes," if _YES_NO.match(question) else rng.choice(["From what I heard,", "As far as I know,", "I remember"])
    if evidence.basis == "opinion":
        return rng.choice(["I think", "For me,", "Honestly,"])
    if evidence.basis == "person":  # the relationship record, in its own words: "I hardly know Ines,"
        name, bond = who.ties.get(evidence.people[0][0], (evidence.people[0][1], None))
        tie = first_person(describe(bond, name))
        return f"{tie[0].upper()}{tie[1:]},"
    if evidence.basis == "self":
        return rng.choice([f"I'm {who.mood.label()} today,", f"Feeling {who.mood.label()},"])
    return ""


def _memory_lines(evidence: Evidence) -> list[str]:
    return [_clip(r.memory.text) for r in evidence.memories[:3]]


def transcript_prompt(who: Interviewee, question: str, evidence: Evidence, opening: str) -> Prompt:
    first = who.first
    head = [f"Interview with {who.persona.name} of {who.guild}. {first} {RULE}.", persona_card(who.persona),
            f"{first} feels {who.mood.label()} today."]
    ties = ties_in_view(who, evidence)
    if ties:
        head.append("About the people " + first + " knows: " + "; ".join(third_person(describe(b, n), first) for n, b in ties) + ".")
    lines = _memory_lines(evidence)
    head.append(f"{first} remembers: " + " ".join(f"- {m}" for m in lines) if lines else f"{first} remembers nothing about this.")
    said = direction(who, question, evidence)
    text = "\n".join([*head, "", f"{INTERVIEWER}: {' '.join(question.split())}", f"({said})",
                      f"{who.persona.name}:" + (f" {opening}" if opening else "")])
    return Prompt("transcript", text=text, stop=("\n", "(", f" {INTERVIEWER}:", f"{INTERVIEWER}:"), lead=opening, direction=said)


def chat_prompt(who: Interviewee, question: str, evidence: Evidence) -> Prompt:
    persona, first = who.persona, who.first
    ties = ties_in_view(who, evidence)
    lines = _memory_lines(evidence)
    system = " ".join(filter(None, [
        f"You are {persona.name} of {who.guild}. {' '.join(persona.bio.split())}",
        f"You care about {', '.join(persona.interests[:5])}." if persona.interests else "",
        f"You speak in {persona.style}." if persona.style else "",
        who.mood.tone(),
        ("About the people you know: " + "; ".join(describe(b, n) for n, b in ties) + ".") if ties else "",
        ("You remember: " + " ".join(f"- {m}" for m in lines)) if lines else "You remember nothing about this.",
        "An interviewer asks you a question. Answer in the first person, in one or two short sentences, only from what you "
        "remember; never make anything up.",
    ]))
    said = direction(who, question, evidence, you=True)
    user = f'The interviewer asks: "{" ".join(question.split())}"\n({said}) Answer as {first}.'
    return Prompt("chat", messages=({"role": "system", "content": system}, {"role": "user", "content": user}),
                  stop=("\n", "<|im_end|>"), direction=said)


def _content(text: str) -> set[str]:
    """Content words, possessives folded ("mill's" is "mill")."""
    return {w.removesuffix("'s").removesuffix("’s") for w in words(text) if len(w) > 3} - _WORDLESS


def carries(answer: str, question: str, evidence: Evidence) -> bool:
    """Whether the answer holds what its basis says. From memory: two words of what it remembers
    that the question did not already say (one is too easy to hit by chance: "what is happening on
    Friday?" -> "is a new mill"), no number it does not hold, and no "I have no idea".
    Knowing nothing: that it does not know."""
    # a number neither remembered nor asked ("in 2015", "for 40 years") is made up, whatever the basis
    numbers = set(_NUMBER.findall(" ".join([question, *(r.memory.text for r in evidence.memories[:3])])))
    if not set(_NUMBER.findall(answer)) <= numbers:
        return False
    if evidence.basis == "unknown":
        return bool(_NOT_KNOWING.search(answer))
    if evidence.basis == "memory":
        remembered = set().union(*(_content(r.memory.text) for r in evidence.memories[:3]))
        asked = _content(question)
        new = _content(answer) & (remembered - asked)
        return len(new) >= max(1, min(2, len(remembered - asked))) and not _NOT_KNOWING.search(answer)
    return True


def trim(answer: str, question: str, evidence: Evidence) -> str | None:
    """The answer cut to what its basis backs, or None when that is not in its first sentences:
    a small model goes on after answering, and what follows is mostly invented. From memory: up
    to the first sentence that carries it (two at most); knowing nothing: the first sentence,
    which must say so; about a person: the first sentence (the relationship record says no more);
    otherwise two sentences."""
    parts = sentences(answer)
    if not parts:
        return None
    if evidence.basis == "memory":
        for end in (1, 2):
            kept = " ".join(parts[:end])
            if carries(kept, question, evidence):
                return kept
        return None
    if evidence.basis == "unknown":  # "I'm not sure, but the bakery is open." says more than it knows
        said = _NOT_KNOWING.search(parts[0])
        if said is None:
            return None
        cut = _BUT.search(parts[0], said.end())
        kept = parts[0] if cut is None else parts[0][:cut.start()].rstrip(" ,;:-") + "."
    else:
        kept = parts[0] if evidence.basis == "person" else " ".join(parts[:2])
    return kept if carries(kept, question, evidence) else None


def narrates(text: str) -> bool:
    """A line about the interview scene rather than an answer in the agent's own voice."""
    return bool(_NARRATION.search(text))


def _remembered_line(text: str) -> str:
    body = " ".join(text.split()).rstrip(".")
    return body if body.endswith(("!", "?", "…")) else body + "."


def fallbacks(who: Interviewee, question: str, evidence: Evidence, rng: random.Random) -> list[str]:
    """Plain answers made from the evidence alone (no model), in a seeded order."""
    if evidence.statement is not None:
        said = in_own_words(evidence.statement, who.persona.name)
        options = ([said, f"For me? {said}", f"Honestly? {said}", f"If you ask me, {lower_first(said)}"] if evidence.basis == "view"
                   else [said, f"As far as I know, {lower_first(said)}", f"That I know: {said}"])
    elif evidence.basis == "memory":
        memory = _remembered_line(evidence.memories[0].memory.text)
        yes = "Yes. " if _YES_NO.match(question) else ""
        options = [f"{yes}What I remember is this: {memory}", f"{yes}Here's what I know: {memory}",
                   f"All I can tell you is what I remember: {memory}"]
    elif evidence.basis == "person":
        name, bond = who.ties.get(evidence.people[0][0], (evidence.people[0][1], None))
        tie = first_person(describe(bond, name))
        options = [f"{tie[0].upper()}{tie[1:]}.", f"Well, {tie}.", f"Honestly? {tie[0].upper()}{tie[1:]}."]
    elif evidence.basis in ("self", "opinion"):
        cares = who.persona.interests[:2]
        about = " and ".join(cares) if cares else "the people around me"
        mood = who.mood.label()
        options = [f"I'm feeling {mood} today. Mostly I think about {about}.", f"{mood.capitalize()}, I'd say. {about.capitalize()} keep me busy.",
                   f"I'm {mood}, thanks for asking. My mind is on {about} as usual."]
        if evidence.basis == "opinion":
            options = [f"I can only speak for myself: {evidence.interest} matters a lot to me.",
                       f"I'm no expert, but {evidence.interest} is close to my heart."]
    else:
        options = ["I haven't heard anything about that.", "I don't know, I'm afraid. Nobody has told me about it.",
                   "No idea, honestly. I haven't heard a thing about it.", "I'm not sure. That's news to me."]
    rng.shuffle(options)
    return options


def gate_context(who: Interviewee, question: str, evidence: Evidence, *, relevance: Callable[[str, str], float] | None,
                 relevance_floor: float) -> GateContext:
    """The turn's gate, with what applies to an answer given out of band: no channel, so no loop."""
    knowledge: dict[int, list[str]] = {}
    for r in evidence.memories:
        for person in r.memory.about:
            knowledge.setdefault(person, []).append(r.memory.text)
    from_memory = evidence.basis == "memory"
    return GateContext(own_name=who.persona.name, members=[INTERVIEWER, *who.members], bio=who.persona.bio, answering=question,
                       subject=evidence.memories[0].memory.text if from_memory else None, names_to_ids=dict(who.members),
                       bonds={pid: bond for pid, (_, bond) in who.ties.items()}, knowledge=knowledge,
                       relevance=relevance if from_memory else None, relevance_floor=relevance_floor if from_memory else 0.0)


async def answer(chain: FallbackChain, who: Interviewee, question: str, evidence: Evidence, *, agent_id: int | None,
                 guild_id: int | None, options: GenOptions, form: str = "transcript", candidates: int = 2,
                 relevance: Callable[[str, str], float] | None = None, relevance_floor: float = 0.0) -> Answer:
    """Asks the model for up to `candidates` + 2 lines (stopping at the first that passes) and
    returns the first one that passes the gate and carries the evidence; else a fallback line.
    No backend reaching the model is the caller's error to report (`reached` False)."""
    rng = random.Random(zlib.crc32(f"{agent_id}:{question}".encode()))
    if evidence.statement is not None:  # what it knows or thinks, said as it is (the model's rewording was worse)
        plain = gate_context(who, question, evidence, relevance=None, relevance_floor=0.0)
        lines = fallbacks(who, question, evidence, rng)
        line = next((line for line in lines if judge(line, plain).ok), in_own_words(evidence.statement, who.persona.name))
        return Answer(line, "plan", _first_model(chain, who.persona.name))
    opening = lead(who, question, evidence, rng) if form == "transcript" else ""
    prompt = transcript_prompt(who, question, evidence, opening) if form == "transcript" else chat_prompt(who, question, evidence)
    # a recital repeats the persona or the instructions; repeating the memory is the answer (so
    # the direction, which quotes it, is not counted)
    recital = (*prompt_texts(who.persona, replace(prompt, direction="", messages=())), RULE)
    ctx = replace(gate_context(who, question, evidence, relevance=relevance, relevance_floor=relevance_floor),
                  prompt_texts=recital, lead=opening)
    rejections: list[str] = []

    def accept(text: str) -> Verdict:
        own = text.strip()
        if opening:
            if len(words(own.removeprefix(opening))) < 2:
                rejections.append("unfinished")
                return Verdict(None, "unfinished")
            if not own.startswith(opening):
                own = opening + ("" if own[:1] in "'’,.!?;:" else " ") + own
        verdict = Verdict(None, "wrong_voice") if narrates(own) else judge(own, ctx)
        if verdict.ok:
            kept = trim(verdict.text or "", question, evidence)
            verdict = Verdict(kept) if kept else Verdict(None, "invented_fact" if evidence.basis == "unknown" else "off_topic")
        if verdict.reason:
            rejections.append(verdict.reason)
        return verdict

    llm_ms, model, reached = 0, None, False
    for i in range(max(1, candidates) + 2):
        opts = replace(options, stop=prompt.stop, seed=(options.seed or 0) + 7919 * i, temperature=options.temperature + 0.1 * i)
        thought = await chain.think(agent_id=agent_id, guild_id=guild_id, agent_name=who.persona.name, task=TASK,
                                    messages=list(prompt.messages), prompt=prompt.text or None, options=opts, accept=accept)
        llm_ms += thought.llm_ms
        reached = reached or thought.reached
        if thought.backend and thought.backend in chain.backends:
            model = chain.backends[thought.backend].model
        if thought.unavailable or not thought.reached:
            return Answer("", "none", model, llm_ms, tuple(rejections), reached=False, unavailable=thought.unavailable)
        if thought.text:
            return Answer(thought.text, "llm", model, llm_ms, tuple(rejections))
    plain = replace(ctx, relevance=None, prompt_texts=(), lead="")
    lines = fallbacks(who, question, evidence, rng)
    line = next((line for line in lines if judge(line, plain).ok), lines[0])
    return Answer(line, "plan", model or _first_model(chain, who.persona.name), llm_ms, tuple(rejections), reached=reached)


def _first_model(chain: FallbackChain, agent_name: str) -> str | None:
    route = chain.routing.chain(agent=agent_name, task=TASK)
    return chain.backends[route[0]].model if route else None

