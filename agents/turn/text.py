"""Small text measures shared by the gate, the planner and the quality benchmark."""

from __future__ import annotations

import re
from collections.abc import Iterable
from difflib import SequenceMatcher

_WORD = re.compile(r"[\w']+")


def norm(text: str) -> str:
    """Lowercase words only: what two lines are compared on."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def similarity(a: str, b: str) -> float:
    """0..1: the larger of character-sequence similarity and word overlap (Jaccard)."""
    na, nb = norm(a), norm(b)
    if not na or not nb:
        return 0.0
    wa, wb = set(na.split()), set(nb.split())
    jaccard = len(wa & wb) / len(wa | wb)
    return max(jaccard, SequenceMatcher(None, na, nb, autojunk=False).ratio())


def five_grams(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """The text's word n-grams (5 by default: a phrase, not a common pair of words)."""
    w = words(text)
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?…])\s+", text.strip()) if s]


def distinct_n(texts: Iterable[str], n: int = 2) -> float:
    """Distinct n-grams over all n-grams of a corpus (Li et al. 2016): 1.0 = nothing repeats."""
    total, seen = 0, set()
    for text in texts:
        w = words(text)
        grams = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0
