"""Small text measures shared by the gate, the planner and the quality benchmark."""

from __future__ import annotations

import re
from collections.abc import Iterable
from difflib import SequenceMatcher

_WORD = re.compile(r"[\w']+")

STOP_WORDS = frozenset(["a", "an", "the", "and", "or", "but", "if", "then", "so", "of", "to", "in", "on", "at", "by", "for", "with", "about", "from", "into", "over", "under", "up", "down", "out", "off", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "doing", "have", "has", "had", "having", "i", "you", "he", "she", "it", "we", "they", "me", "him", "her", "us", "them", "my", "your", "his", "its", "our", "their", "this", "that", "these", "those", "what", "why", "how", "when", "where", "who", "whom", "which", "whose", "can", "could", "should", "would", "will", "shall", "may", "might", "must", "any", "anyone", "anybody", "someone", "something", "anything", "there", "here", "just", "really", "very", "too", "also", "not", "no", "yes", "oh", "well", "hey", "hi", "hello", "please", "thanks", "thank", "like", "get", "got", "make", "made", "know", "think", "want", "need", "ask", "tell", "say", "said", "let", "lets", "let's", "im", "i'm", "it's", "dont", "don't", "does", "doesn't", "what's", "whats", "one", "some", "all", "more", "most", "much", "many", "every", "everyone", "today", "now", "still", "ever", "again", "already", "yet", "quite", "bit", "lot", "lots", "good", "bad", "new", "old"])
_SUFFIX = re.compile(r"(?:ing|ed|s)$")
_MENTION = re.compile(r"<[@#!&]?\d+>|@\S+(?: [A-Z][a-z]+)?")


def unmention(text: str) -> str:
    """The line without its mentions ("<@123>", "@Oskar Lind"): a name is not what is said."""
    return " ".join(_MENTION.sub(" ", text).split())


def stems(text: str) -> set[str]:
    """Content words without a plural or verb ending, cut to five letters ("opens" meets "open",
    "tomatoes" meets "tomato"): a rough stem, enough to count words in common. @names are not content."""
    out = set()
    for word in words(_MENTION.sub(" ", text)):
        if len(word) > 2 and word not in STOP_WORDS:
            bare = _SUFFIX.sub("", word)
            if bare not in STOP_WORDS:  # "makes" is "make", a stop word too
                out.add(bare[:5] if len(bare) >= 3 else word[:5])
    return out


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


def lower_first(text: str) -> str:
    """A sentence put after a comma or a colon: its first word in lower case when it is a common
    word ("The bakery..." -> "the bakery..."), kept when it is a name ("Harbour Ward win...")."""
    first = text.split(" ", 1)[0]
    return text[:1].lower() + text[1:] if first.lower() in STOP_WORDS else text
