"""Prompts for a turn, and the cleaning every completion goes through before it may be posted.

Small local models drift: they prefix a speaker name ("bot2: ..."), continue the transcript
with other people's lines, repeat themselves, or answer with nothing. The persona goes in the
system prompt, the recent conversation in a bounded transcript, generation stops at the next
speaker's line, and `clean_reply` / `is_near_duplicate` decide what is fit to post.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from ..mind.mood import Mood
from ..society.persona import Persona

MAX_LINE = 160  # characters of one transcript line (prompt evaluation dominates a small model's turn)
MAX_REPLY = 400  # characters of a posted reply


@dataclass(frozen=True)
class Line:
    author: str
    content: str


def _traits_words(persona: Persona) -> str:
    t = persona.traits
    words = [
        "outgoing and talkative" if t.extraversion > 0.65 else "reserved" if t.extraversion < 0.35 else "",
        "warm and kind" if t.agreeableness > 0.65 else "blunt" if t.agreeableness < 0.35 else "",
        "curious and imaginative" if t.openness > 0.65 else "practical" if t.openness < 0.35 else "",
        "organised" if t.conscientiousness > 0.65 else "easy-going" if t.conscientiousness < 0.35 else "",
        "a worrier" if t.neuroticism > 0.65 else "calm under pressure" if t.neuroticism < 0.35 else "",
    ]
    return ", ".join(w for w in words if w)


def system_prompt(persona: Persona, mood: Mood, *, guild: str, channel: str, topic: str | None,
                  memories: Iterable[str] = (), ties: Iterable[str] = ()) -> str:
    """Ordered from the most to the least lasting, so that consecutive prompts of one agent share
    the longest start (the model server restores a saved KV state for it, prefix_cache.py): the
    persona and the standing instruction (the same in every turn of the agent), the channel (the
    same in its home channel), the mood (one of a few labels), then who is here and what is
    recalled (new almost every turn); the transcript follows in the user message."""
    parts = [f"You are {persona.name}. {persona.bio}"]
    traits = _traits_words(persona)
    if traits:
        parts.append(f"You are {traits}.")
    if persona.interests:
        parts.append(f"You care about {', '.join(persona.interests[:6])}.")
    if persona.style:
        parts.append(f"Your way of speaking: {persona.style}.")
    parts.append(f"You live in {guild}. Write one short chat message as yourself: no name prefix, no lists, nothing already said.")
    where = f"#{channel}" + (f" ({topic[:80]})" if topic else "")
    parts.append(f"You are chatting with neighbours in {where}.")
    parts.append(mood.tone())
    known = [t for t in ties if t][:3]
    if known:  # stated from the relationship record only (the invented-tie guard checks replies against it)
        parts.append("About the people here: " + "; ".join(known) + ".")
    recalled = [m for m in memories if m][:6]
    if recalled:
        parts.append("You remember: " + " ".join(f"- {m}" for m in recalled))
    return " ".join(parts)


def transcript(lines: list[Line]) -> str:
    return "\n".join(f"{line.author}: {' '.join(line.content.split())[:MAX_LINE]}" for line in lines)


def reply_messages(persona: Persona, mood: Mood, lines: list[Line], *, guild: str, channel: str, topic: str | None,
                   addressed_by: str | None = None, memories: Iterable[str] = (), nudge: str | None = None,
                   ties: Iterable[str] = ()) -> list[dict[str, str]]:
    """Chat messages asking for the agent's next line in this conversation."""
    ask = f"Reply to {addressed_by}" if addressed_by else "Write your next message"
    user = f"Recent conversation:\n{transcript(lines)}\n\n{ask} as {persona.name}." if lines else f"{ask} as {persona.name}."
    if nudge:
        user += f" {nudge}"
    return [{"role": "system", "content": system_prompt(persona, mood, guild=guild, channel=channel, topic=topic, memories=memories,
                                                        ties=ties)},
            {"role": "user", "content": user}]


def opener_messages(persona: Persona, mood: Mood, *, guild: str, channel: str, topic: str | None, subject: str,
                    memories: Iterable[str] = (), ties: Iterable[str] = ()) -> list[dict[str, str]]:
    """Chat messages asking the agent to start a conversation about `subject` in a quiet channel."""
    # the subject goes in as the agent's own thought: small models parrot meta-instructions
    # ("The channel has been quiet...") when they are the user's words
    system = system_prompt(persona, mood, guild=guild, channel=channel, topic=topic, memories=memories, ties=ties)
    return [{"role": "system", "content": f"{system} Something on your mind today: {subject}"},
            {"role": "user", "content": f"What do you say to your neighbours about it, {persona.name.split()[0]}? Ask them something."}]


def stop_sequences(names: Iterable[str]) -> tuple[str, ...]:
    """Generation ends where the model starts writing someone else's line."""
    stops = ["\n\n", "<|im_end|>", "<|im_start|>"]
    stops += [f"\n{n}:" for n in list(dict.fromkeys(names))[:8]]
    return tuple(stops)


_PREFIX = re.compile(r"^\s*(?:\*\*)?(?:@?[\w .\-]{1,32}?)(?:\*\*)?\s*[:：]\s*")
_SPEAKER_LINE = re.compile(r"\n\s*@?[\w .\-]{1,32}\s*:")
_MENTION = re.compile(r"<(?:@[!&]?|#)\d+>")
_INVENTED_SPEAKER = re.compile(r"[A-Z][a-z]{1,14}")  # a capitalised single word before a colon is a speaker, not prose
# phrases of our own prompts: a completion that repeats them is the model reciting, not talking
_ECHO = re.compile(r"(?i)\b(?:the channel has been quiet|start a conversation about|your way of speaking|you are chatting with|"
                   r"write one short chat message|recent conversation:|no name prefix|reply to \w+ as|write your next message)")


def clean_reply(text: str, *, own_name: str, names: Iterable[str]) -> str | None:
    """The postable part of a completion, or None when nothing fit to post remains."""
    if not text:
        return None
    text = text.replace("<|im_end|>", "").replace("<|im_start|>", "").strip()
    known = {n.lower() for n in (own_name, *names)} | {"assistant", "user", "system", "ai", own_name.split()[0].lower()}
    for _ in range(2):  # "Ana: Bob: hi" -> "hi"; also an invented one-word speaker ("Bella: ...")
        match = _PREFIX.match(text)
        if not match:
            break
        speaker = match.group(0).split(":")[0].strip(" *@")
        if speaker.lower() not in known and not _INVENTED_SPEAKER.fullmatch(speaker):
            break
        text = text[match.end():]
    if _ECHO.search(text):
        return None  # the model recited its instructions instead of speaking
    cut = _SPEAKER_LINE.search(text)  # the model went on with someone else's line
    if cut:
        text = text[:cut.start()]
    text = _MENTION.sub("", text)  # never invent mentions of ids it cannot know
    text = " ".join(text.split()).strip().strip('"“”').strip()
    if len(text) > MAX_REPLY:
        end = max(text.rfind(p, 0, MAX_REPLY) for p in ".!?")
        text = text[: end + 1] if end > 40 else text[:MAX_REPLY].rsplit(" ", 1)[0] + "…"
    if text and text[-1] not in ".!?…)\"'":  # cut off by the token limit: end at the last whole sentence
        end = max(text.rfind(p) for p in (". ", "! ", "? "))
        if end >= 25:
            text = text[: end + 1]
    letters = sum(ch.isalpha() for ch in text)
    if letters < 3 or len(text) < 4:
        return None
    return text


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def similarity(a: str, b: str) -> float:
    """0..1: the larger of character-sequence similarity and word overlap (Jaccard)."""
    na, nb = _norm(a), _norm(b)
    if not na or not nb:
        return 0.0
    wa, wb = set(na.split()), set(nb.split())
    jaccard = len(wa & wb) / len(wa | wb)
    return max(jaccard, SequenceMatcher(None, na, nb, autojunk=False).ratio())


def is_near_duplicate(text: str, recent: Iterable[str], threshold: float = 0.8) -> bool:
    return any(similarity(text, other) >= threshold for other in recent)
