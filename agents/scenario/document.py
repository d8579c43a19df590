"""A document's claims: the sentences of a text that state something, each a piece of news.

No model is asked: a claim is a sentence (split at . ! ?; paragraphs and bullets apart) of at
least four words that is not a question; headings (# ...) are left out, repeats dropped, and the
first `limit` kept, in order."""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
MIN_WORDS = 4
MAX_CLAIM = 300


def _pieces(text: str) -> list[str]:
    """Paragraphs (a wrapped sentence is joined again), headings left out, each bullet its own."""
    out: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or _BULLET.match(line):
            if current:
                out.append(" ".join(current))
                current = []
            if stripped and not stripped.startswith("#"):
                out.append(_BULLET.sub("", line))
            continue
        current.append(stripped)
    if current:
        out.append(" ".join(current))
    return out


def claims(text: str, limit: int = 20) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for piece in _pieces(text):
        for part in _SENTENCE.split(piece):
            sentence = " ".join(part.split())
            if len(sentence.split()) < MIN_WORDS or sentence.endswith("?"):
                continue
            key = sentence.lower().rstrip(".!")
            if key in seen:
                continue
            seen.add(key)
            out.append(sentence[:MAX_CLAIM])
            if len(out) >= limit:
                return out
    return out
