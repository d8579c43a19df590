"""A document's claims: the sentences of a text that state something, each a piece of news.

No model is asked: a claim is a sentence (split at . ! ? and line breaks) of at least four words
that is not a question or a heading; repeats are dropped and the first `limit` kept, in order."""

from __future__ import annotations

import re

_SPLIT = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=\s*[-*•]\s)")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")
MIN_WORDS = 4
MAX_CLAIM = 300


def claims(text: str, limit: int = 20) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for piece in _SPLIT.split(text):
        sentence = " ".join(_BULLET.sub("", piece).split())
        if len(sentence.split()) < MIN_WORDS or sentence.endswith("?") or sentence.startswith("#"):
            continue
        key = sentence.lower().rstrip(".!")
        if key in seen:
            continue
        seen.add(key)
        out.append(sentence[:MAX_CLAIM])
        if len(out) >= limit:
            break
    return out
