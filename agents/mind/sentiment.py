"""A small lexicon sentiment score for chat lines: cheap enough to run on every message, good
enough to move moods and relationships in the right direction (no model needed)."""

from __future__ import annotations

import random
import re

_POSITIVE = frozenset("""
love loved lovely like liked great good nice wonderful amazing awesome happy glad thanks thank thx
cool fun funny beautiful brilliant excellent fantastic kind sweet agree yes yay congrats congratulations
enjoy enjoyed excited exciting perfect welcome appreciate helpful interesting delightful cheers haha lol
""".split())
_NEGATIVE = frozenset("""
hate hated bad awful terrible horrible sad angry annoyed annoying wrong stupid boring ugly sorry
disagree no nope worst worse fail failed upset tired sick hurt afraid scared worried rude mean
disappointed disappointing dumb useless ugh meh
""".split())
_NEGATORS = frozenset({"not", "never", "no", "don't", "dont", "isn't", "isnt", "wasn't", "didn't", "can't", "cannot"})
_WORD = re.compile(r"[a-z']+")


def sentiment(text: str) -> float:
    """-1 (negative) .. 1 (positive); 0 when nothing is known."""
    words = _WORD.findall(text.lower())
    score, hits = 0.0, 0
    for i, word in enumerate(words):
        value = 1.0 if word in _POSITIVE else -1.0 if word in _NEGATIVE and word not in _NEGATORS else 0.0
        if not value:
            continue
        if any(w in _NEGATORS for w in words[max(0, i - 2):i]):
            value = -value * 0.7
        score += value
        hits += 1
    if "!" in text and hits:
        score *= 1.2
    return max(-1.0, min(1.0, score / max(1.0, hits ** 0.5 * 1.5))) if hits else 0.0


def emoji_for(tone: float, affinity: float, content: str, rng: random.Random) -> str:
    """The emoji a reader answers a line with: its tone, the reader's feeling for the author."""
    if affinity < -0.35:
        return "🙄"
    if tone > 0.2:
        return rng.choice(["👍", "❤️", "😄", "🎉", "👏"])
    if tone < -0.2:
        return rng.choice(["😢", "😮"])
    if content.rstrip().endswith("?"):
        return "🤔"
    return rng.choice(["👍", "🙂"])
