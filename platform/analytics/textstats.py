"""How the agents' lines read: exact and near-duplicates, repeated 5-grams, and lines that
slipped past the quality gate in another member's voice, naming themselves, or as an assistant.

Near-duplicate: `agents.turn.text.similarity` (the gate's own measure: the larger of word
Jaccard and character-sequence ratio) >= 0.8 with one of the previous `window` messages of the
same channel (any author: an agent repeating what was just said counts too). The sequence
ratio is the costly part (~250 us a pair): it is computed only when rapidfuzz's Indel
similarity, an upper bound of it (matching blocks are a common subsequence, and Indel is
2 * LCS / total length), reaches the threshold, so the result is the same, ~50x faster.

Repeated 5-gram: the message shares a word 5-gram with one of the previous `ngram_window`
agent messages of the society (a phrase, not a pair of common words; hashed, so memory stays
bounded by the window). Exact: the normalised text equals an earlier agent message's.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from difflib import SequenceMatcher
from typing import Any

from rapidfuzz.distance import Indel

from ...agents.turn.text import five_grams, norm
from .message import Msg

NEAR_THRESHOLD = 0.8
NEAR_WINDOW = 20
NGRAM_WINDOW = 1000
EXAMPLES = 6

# Independent of the gate: how a posted line can still be wrong (quality bench and scorecard).
WRONG_VOICE = re.compile(r"(?m)^\s*[*_]{0,2}[A-Z][a-z]+(?: [A-Z][a-z]+)?[*_]{0,2}\s*(?:\([^)]*\))?\s*:")
ASSISTANT_SPEAK = re.compile(r"(?i)as an ai|language model|i apologi[sz]e|certainly!|i'll (?:reply|respond) as|how can i (?:help|assist)")


def names_itself(text: str, speaker: str) -> bool:
    """The line names its own speaker (by first name): an agent addressing or narrating itself."""
    first = (speaker or "").split()[0] if speaker and speaker.split() else ""
    return bool(first) and re.search(rf"(?i)\b{re.escape(first)}\b", text) is not None


class _Line:
    __slots__ = ("text", "normed", "words")

    def __init__(self, text: str) -> None:
        self.text = text
        self.normed = norm(text)
        self.words = frozenset(self.normed.split())


def similar_at_least(a: _Line, b: _Line, threshold: float) -> float:
    """`similarity(a, b)` when it is >= threshold, else 0.0 (cheap bounds first)."""
    if not a.normed or not b.normed:
        return 0.0
    jaccard = len(a.words & b.words) / len(a.words | b.words)
    if jaccard >= threshold:
        return max(jaccard, SequenceMatcher(None, a.normed, b.normed, autojunk=False).ratio())
    # no score_cutoff: rapidfuzz turns it into an integer distance bound that cuts a ratio of exactly 0.8
    if Indel.normalized_similarity(a.normed, b.normed) < threshold - 1e-9:
        return 0.0
    ratio = SequenceMatcher(None, a.normed, b.normed, autojunk=False).ratio()
    return ratio if ratio >= threshold else 0.0


class TextQuality:
    """Feed messages in id order; agent messages that are `counted` are measured, every message
    is history for the ones after it."""

    def __init__(self, names: dict[int, str] | None = None, *, window: int | None = NEAR_WINDOW, by_channel: bool = True,
                 ngram_window: int | None = NGRAM_WINDOW, threshold: float = NEAR_THRESHOLD) -> None:
        self.names = names or {}
        self.window, self.by_channel, self.threshold = window, by_channel, threshold
        self.history: dict[int, deque[_Line]] = {}
        self.exact_seen: set[int] = set()
        self.gram_window: deque[frozenset[int]] = deque()
        self.gram_counts: Counter[int] = Counter()
        self.ngram_window = ngram_window
        self.measured = self.exact = self.near = self.repeated = 0
        self.flagged: Counter[str] = Counter()
        self.examples: list[dict[str, Any]] = []
        self.by_author: Counter[int] = Counter()  # near-duplicates per author (the anomalies' loops)
        self.near_ids: dict[int, list[int]] = {}  # per author, its first near-duplicates' ids (for the alerts' links)
        self.flags: list[tuple[int, int, str]] = []  # (author, message id, what) of posted lines in the wrong voice etc.

    def _channel(self, m: Msg) -> deque[_Line]:
        key = m.channel_id if self.by_channel else 0
        found = self.history.get(key)
        if found is None:
            found = self.history[key] = deque(maxlen=self.window)
        return found

    def near_match(self, line: _Line, previous: Any) -> tuple[float, _Line | None]:
        best, match = 0.0, None
        for other in previous:
            s = similar_at_least(line, other, self.threshold)
            if s > best:
                best, match = s, other
        return best, match

    def feed(self, m: Msg) -> None:
        line = _Line(m.content or "")
        history = self._channel(m)
        if m.counted and m.agent:
            self.measured += 1
            key = hash(line.normed) if line.normed else None
            if key is not None and key in self.exact_seen:
                self.exact += 1
            best, match = self.near_match(line, history)
            if best >= self.threshold:
                self.near += 1
                self.by_author[m.author_id] += 1
                ids = self.near_ids.setdefault(m.author_id, [])
                if len(ids) < 10:
                    ids.append(m.id)
                if len(self.examples) < EXAMPLES:
                    self.examples.append({"message_id": str(m.id), "text": line.text[:160], "similar_to": (match.text if match else "")[:160],
                                          "similarity": round(best, 3)})
            if key is not None:
                self.exact_seen.add(key)
            grams = frozenset(hash(g) for g in five_grams(line.text))
            if any(g in self.gram_counts for g in grams):
                self.repeated += 1
            self.gram_window.append(grams)
            self.gram_counts.update(grams)
            if self.ngram_window is not None and len(self.gram_window) > self.ngram_window:
                for g in self.gram_window.popleft():
                    left = self.gram_counts[g] - 1
                    if left:
                        self.gram_counts[g] = left
                    else:
                        del self.gram_counts[g]
            text = m.content or ""
            for flag, hit in (("wrong_voice", WRONG_VOICE.search(text) is not None),
                              ("self_naming", names_itself(text, self.names.get(m.author_id, ""))),
                              ("assistant_speak", ASSISTANT_SPEAK.search(text) is not None)):
                if hit:
                    self.flagged[flag] += 1
                    if len(self.flags) < 200:
                        self.flags.append((m.author_id, m.id, flag))
        if self.window != 0:
            history.append(line)

    def result(self) -> dict[str, Any]:
        n = self.measured

        def rate(x: int) -> float | None:
            return round(x / n, 4) if n else None

        return {"agent_messages": n, "exact_duplicates": self.exact, "exact_rate": rate(self.exact),
                "near_duplicates": self.near, "near_rate": rate(self.near), "near_threshold": self.threshold,
                "near_window": self.window, "repeated_5gram": self.repeated, "repeated_5gram_rate": rate(self.repeated),
                "ngram_window": self.ngram_window,
                "posted_wrong_voice": self.flagged["wrong_voice"], "posted_wrong_voice_rate": rate(self.flagged["wrong_voice"]),
                "posted_self_naming": self.flagged["self_naming"], "posted_self_naming_rate": rate(self.flagged["self_naming"]),
                "posted_assistant_speak": self.flagged["assistant_speak"], "examples": self.examples}
