"""Importance (1..10, "poignancy") of a memory before the LLM rates it.

The heuristic is cheap and runs on every observation: being addressed, strong feeling, news
(events, plans, changes in someone's life), self-disclosure and length raise it; small talk
stays low. When the LLM is free, `rating_messages` asks it for a number, which replaces the
heuristic (Generative Agents asks for every memory; on a small local model that would double
the load, so here only the memories the heuristic already finds notable are rated).
"""

from __future__ import annotations

import re

from ..mind.sentiment import sentiment
from .model import clamp_importance

_NEWS = re.compile(r"(?i)\b(?:party|wedding|married|engaged|pregnant|baby|born|died|funeral|moved|moving|new job|fired|hired|"
                   r"quit|opening|opens|closed|closing|festival|invite|invited|invitation|announce|announcement|tomorrow|"
                   r"tonight|next week|monday|tuesday|wednesday|thursday|friday|saturday|sunday|birthday|election|vote|accident|fire|flood|secret|news|won|lost)\b")
_SELF = re.compile(r"(?i)\b(?:i am|i'm|i love|i hate|i live|i work|my (?:wife|husband|partner|son|daughter|mother|father|"
                   r"sister|brother|friend|job|dog|cat))\b")
_SMALL_TALK = re.compile(r"(?i)^\s*(?:hi|hello|hey|lol|haha|ok|okay|yes|no|thanks|thank you|same|agreed|good (?:morning|night))\W*$")


def heuristic_importance(text: str, *, addressed: bool = False, own: bool = False) -> float:
    if not text.strip() or _SMALL_TALK.match(text):
        return 1.0
    score = 2.0
    if addressed:
        score += 2.0
    if own:
        score += 0.5
    score += 2.5 * abs(sentiment(text))
    cues = {m.lower() for m in _NEWS.findall(text)}
    if cues:  # news; several cues (a party, on Saturday, everyone invited) make it more so
        score += 2.5 + min(2.0, len(cues) - 1)
    if _SELF.search(text):
        score += 1.0
    if len(text) > 160:
        score += 0.5
    return round(clamp_importance(score), 2)


def rating_messages(text: str, agent_name: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": f"You are {agent_name}. You rate how important memories are to you."},
            {"role": "user", "content": "On a scale of 1 to 10, where 1 is purely mundane (saying hello, small talk) and 10 "
                                        "is extremely important (a wedding, a death, a big change), rate this memory:\n"
                                        f"{text[:300]}\nAnswer with one number."}]


_NUMBER = re.compile(r"\b(10|[1-9])\b")


def parse_rating(text: str) -> float | None:
    found = _NUMBER.search(text or "")
    return float(found.group(1)) if found else None
