"""How a scenario's questions are judged, apart from where the data comes from.

"Who knows fact F" is an interview of each agent's memory, as Generative Agents checked their
party's diffusion: the agent's memories are searched with the fact, and the agent knows it when
a memory found holds every keyword of the fact (default: its two longest words) or, when a
threshold is given, when a memory found is at least that similar to it (cosine). It replaces
bench/society.py's --tell/--checkpoints check, which now lives here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ..mind.sentiment import sentiment

_WORD = re.compile(r"[a-z0-9']+")
_STOP = frozenset("""a an the and or but of to in on at for with from by is are was were be been being this that these those
it its it's i me my we our you your he she they them their his her there here have has had will would can could should
about into over after before than then when what who which where why how all any some every each not no yes do does did
""".split())
SEARCH_K = 8  # memories looked at per agent (bench/society.py's Diffusion looked at 8)


def default_keywords(fact: str, n: int = 2) -> list[str]:
    """The fact's `n` longest words that are not stop words (ties: the earlier first)."""
    words = [w for w in dict.fromkeys(_WORD.findall(fact.lower())) if w not in _STOP and len(w) > 2]
    return sorted(words, key=lambda w: -len(w))[:n] or fact.lower().split()[:n]


def holds(text: str, keywords: Sequence[str]) -> bool:
    """Every keyword is in the text (case-insensitive, as a substring: "harbour" in "harbour's")."""
    low = text.lower()
    return bool(keywords) and all(k.lower() in low for k in keywords)


def knows(found: Iterable[tuple[str, float]], keywords: Sequence[str], threshold: float | None) -> bool:
    """Whether an agent knows the fact, from the memories its search found: (text, similarity)."""
    for text, similarity in found:
        if threshold is not None and similarity >= threshold:
            return True
        if threshold is None and holds(text, keywords):
            return True
    return False


def topic_words(topic: str, keywords: Sequence[str] | None) -> list[str]:
    return [k.lower() for k in keywords] if keywords else [w for w in _WORD.findall(topic.lower()) if w not in _STOP] or [topic.lower()]


def mentions(text: str, words: Sequence[str]) -> bool:
    """A message is about the topic when it holds any of its words."""
    low = text.lower()
    return any(w in low for w in words)


def mean_sentiment(texts: Iterable[str]) -> tuple[float | None, int]:
    """The mean lexicon sentiment (-1..1) of these texts, and how many there were."""
    scores = [sentiment(t) for t in texts]
    return (sum(scores) / len(scores) if scores else None), len(scores)
