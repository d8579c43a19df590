"""Words from the model: the prompt forms that turn a plan into one or two sentences.

Two forms, measured against each other in bench/quality.py (docs/benchmarks.md):

- `transcript`: a plain-text chat log that already ends with the agent's own name ("Maren
  Holt:"), completed raw (Ollama's `/api/generate` with `raw`). The model can only write the
  agent's line, and stops at the line's end; the plan goes in as a stage direction just above.
  Needs no chat template, so it works the same for every model a user points to.
- `chat`: the persona as the system message, the conversation and the act as the user's
  request, through the model's own chat template (`/api/chat`).

Both put what lasts first (persona, channel) so the model server's prefix cache reuses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..society.persona import Persona
from .plan import Plan

FORMS = ("transcript", "chat")
MAX_LINE = 200  # characters of one transcript line


@dataclass(frozen=True)
class Line:
    author: str
    content: str


@dataclass(frozen=True)
class Scene:
    """Where the line is said: the society, the channel, its recent lines, the speaker's state."""

    guild: str
    channel: str  # a name, or "dm"
    topic: str | None
    lines: tuple[Line, ...]
    mood: str = ""  # a few words for the tone (Mood.tone())
    ties: tuple[str, ...] = ()  # how the speaker sees the people present, from the relationship record ("you like Bob")
    memories: tuple[str, ...] = ()  # what the speaker recalls about the topic and the people, best first
    situation: str = ""  # where the speaker is and what it does now, in the third person (agents/world)


@dataclass(frozen=True)
class Prompt:
    form: str
    messages: tuple[dict[str, str], ...] = ()  # chat form
    text: str = ""  # transcript form (raw completion)
    stop: tuple[str, ...] = ()
    lead: str = ""  # words the prompt already put in the agent's mouth: the line is lead + completion
    direction: str = ""  # the act as the prompt states it (a line that repeats it is reciting)


def persona_card(persona: Persona) -> str:
    parts = [f"{persona.name}: {' '.join(persona.bio.split())}"]
    if persona.interests:
        parts.append(f"Cares about {', '.join(persona.interests[:5])}.")
    if persona.style:
        parts.append(f"Speaks in {persona.style}.")
    return " ".join(parts)


def _log(lines: tuple[Line, ...], limit: int = 8) -> str:
    return "\n".join(f"{line.author}: {' '.join(line.content.split())[:MAX_LINE]}" for line in lines[-limit:])


def transcript_prompt(persona: Persona, plan: Plan, scene: Scene) -> Prompt:
    where = "a private conversation" if scene.channel == "dm" else f"#{scene.channel}" + (f" ({scene.topic[:90]})" if scene.topic else "")
    head = [f"Chat log of {scene.guild}, {where}. Everyone writes short, natural messages in the first person.",
            persona_card(persona)]
    first = persona.name.split()[0]
    if scene.situation:
        head.append(scene.situation)
    if scene.ties:  # "you like Bob" -> "Ana likes Bob": the log's third person
        head.append("About the people here: " + "; ".join(_third_person(t, first) for t in scene.ties) + ".")
    if scene.memories:
        head.append(f"{first} remembers: " + " ".join(f"- {_clip(m, 140)}" for m in scene.memories[:3]))
    log = _log(scene.lines)
    direction = f"({plan.narration()})"
    text = "\n".join([*head, "", *([log] if log else []), direction, f"{persona.name}:" + (f" {plan.lead}" if plan.lead else "")])
    names = {line.author for line in scene.lines} | {persona.name}
    stops = ("\n", "(", *[f" {n}:" for n in sorted(names)][:6])
    # a line passing on what the speaker knows is not reciting the prompt: the direction left out of the check omits it
    return Prompt("transcript", text=text, stop=stops, lead=plan.lead, direction=plan.narration(with_known=False))


def chat_prompt(persona: Persona, plan: Plan, scene: Scene) -> Prompt:
    first = persona.name.split()[0]
    system = " ".join(filter(None, [
        f"You are {persona.name}, a member of {scene.guild}'s group chat. {' '.join(persona.bio.split())}",
        f"You care about {', '.join(persona.interests[:5])}." if persona.interests else "",
        f"You speak in {persona.style}." if persona.style else "",
        scene.mood,
        f"Right now: {scene.situation}" if scene.situation else "",
        ("About the people here: " + "; ".join(scene.ties) + ".") if scene.ties else "",
        ("You remember: " + " ".join(f"- {_clip(m, 140)}" for m in scene.memories[:3])) if scene.memories else "",
        f"Write only {first}'s next chat message: one or two short sentences, first person, no name prefix.",
    ]))
    where = "privately" if scene.channel == "dm" else f"in #{scene.channel}"
    context = ""
    if plan.heard is not None:
        earlier = [line for line in scene.lines if line.content != plan.heard.text][-2:]
        if earlier:
            context = "Earlier " + "; ".join(f'{line.author} said "{_clip(line.content)}"' for line in earlier) + ". "
        context += f'{plan.heard.author} just wrote {where}: "{_clip(plan.heard.text)}"\n'
    elif scene.lines:
        context = f'Last said {where}: ' + "; ".join(f'{line.author}: "{_clip(line.content)}"' for line in scene.lines[-2:]) + "\n"
    user = f"{context}{plan.instruction()} Reply as {first} in one or two sentences."
    return Prompt("chat", messages=({"role": "system", "content": system}, {"role": "user", "content": user}),
                  stop=("\n", "<|im_end|>"), direction=replace(plan, known=None, hint=None).instruction())


def _third_person(tie: str, first: str) -> str:
    tie = re.sub(r"^you (\w+)", lambda m: f"{first} {_VERB_S.get(m.group(1), m.group(1) + 's')}", tie)
    tie = re.sub(r"\byou\b", first, tie)
    return tie.replace("hardly know ", "hardly knows ").replace(f"{first} trust", f"{first} trusts").replace(" do not ", " does not ")


_VERB_S = {"hardly": "hardly", "are": "is", "have": "has", "find": "finds", "know": "knows", "like": "likes"}


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def build_prompt(form: str, persona: Persona, plan: Plan, scene: Scene) -> Prompt:
    return transcript_prompt(persona, plan, scene) if form == "transcript" else chat_prompt(persona, plan, scene)


def prompt_texts(persona: Persona, prompt: Prompt) -> tuple[str, ...]:
    """The parts of a prompt a recital would repeat: the persona and the instructions."""
    texts = [persona.bio, persona.style, persona_card(persona), prompt.direction]
    if prompt.messages:
        texts.append(prompt.messages[0]["content"])
    return tuple(t for t in texts if t)
