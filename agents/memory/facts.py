"""Facts about people as subject-predicate-object, with a confidence that decays and that a
contradiction lowers.

Facts come from what people say about themselves ("I work at the bakery") and about members
named in a message ("Ana loves jazz"). Some predicates hold one value at a time (lives in,
works at, is from): a new value contradicts the old one. Liking and disliking the same thing
contradict each other. Confidence is stored as of `confirmed_at` and halves every
`half_life_seconds` after; hearing the same fact again raises it and restarts the clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .model import Memory

SINGLE_VALUED = {"lives in", "works at", "is from"}
OPPOSITE = {"likes": "dislikes", "dislikes": "likes"}
SELF_CONFIDENCE = 0.9  # someone saying it about themselves
HEARSAY_CONFIDENCE = 0.6  # someone saying it about someone else
CONTRADICTION_FACTOR = 0.4


@dataclass(frozen=True)
class Fact:
    subject: str
    predicate: str
    object: str
    confidence: float

    def text(self) -> str:
        return f"{self.subject} {self.predicate} {self.object}"


_END = r"(?=$|[.,;!?]| and | but | because | so | though | when | with me)"
_OBJ = r"([\w'\-]+(?: [\w'\-]+){0,3}?)"  # one to four words; the space between them is required (no backtracking blow-up)
MAX_TEXT = 500  # characters of a message read for facts
_FIRST_PERSON: list[tuple[str, re.Pattern[str]]] = [
    ("likes", re.compile(rf"(?i)\bI (?:really |truly |just )?(?:love|like|enjoy|adore) {_OBJ}{_END}")),
    ("dislikes", re.compile(rf"(?i)\bI (?:really |truly )?(?:hate|dislike|can't stand|cannot stand|despise) {_OBJ}{_END}")),
    ("lives in", re.compile(rf"(?i)\bI live (?:in|on|at|near|by) {_OBJ}{_END}")),
    ("works at", re.compile(rf"(?i)\bI work (?:at|in|for) {_OBJ}{_END}")),
    ("is from", re.compile(rf"(?i)\bI(?:'m| am) (?:originally )?from {_OBJ}{_END}")),
    ("is", re.compile(rf"(?i)\bI(?:'m| am) an? {_OBJ}{_END}")),
    ("has", re.compile(rf"(?i)\bI (?:have|own|got) (?:an?|two|three|\d+) {_OBJ}{_END}")),
]
_THIRD_PERSON = [
    ("likes", r"(?:loves|likes|enjoys|adores)"),
    ("dislikes", r"(?:hates|dislikes|can't stand)"),
    ("lives in", r"lives (?:in|on|at|near|by)"),
    ("works at", r"works (?:at|in|for)"),
    ("is from", r"is (?:originally )?from"),
    ("is", r"is an?"),
    ("has", r"(?:has|owns) (?:an?|two|three|\d+)"),
]
_ARTICLE = re.compile(r"(?i)^(?:the|a|an|my|our|some) ")
_STOP_OBJECTS = {"it", "this", "that", "them", "you", "him", "her", "so", "too", "lot", "bit", "here", "there", "sure", "not"}
# first words that make "I have a question", "I love your idea", "I like to read", "I live in hope" non-facts
_STOP_FIRST = _STOP_OBJECTS | {"your", "his", "their", "its", "how", "what", "when", "where", "why", "to", "little", "question",
                               "point", "minute", "moment", "myself", "yourself", "hope", "feeling", "good", "great", "nice",
                               "bad", "idea", "thought", "the", "all", "every", "everything", "anything", "something",
                               "nothing", "doing", "going", "being", "getting", "because", "if", "whatever", "fear", "doubt"}


def _clean_object(raw: str) -> str | None:
    obj = " ".join(raw.lower().split()).strip(" '-")
    obj = _ARTICLE.sub("", obj)
    if not obj or obj in _STOP_OBJECTS or len(obj) < 2 or obj.split()[0] in _STOP_FIRST or obj.split()[0].endswith("ing"):
        return None
    return obj[:60]


def extract_facts(text: str, *, speaker: str, members: Iterable[str] = ()) -> list[Fact]:
    """Facts stated in `text` (already readable: mentions turned into @names) by `speaker`."""
    text = text[:MAX_TEXT]
    out: dict[tuple[str, str, str], Fact] = {}
    for predicate, pattern in _FIRST_PERSON:
        for found in pattern.finditer(text):
            obj = _clean_object(found.group(1))
            if obj:
                out[(speaker, predicate, obj)] = Fact(speaker, predicate, obj, SELF_CONFIDENCE)
    lowered = text.lower()
    # only the members named in the text: a society may know hundreds of names
    for name in {n for n in members if n and n != speaker and n.split()[0].lower() in lowered}:
        # "Bob" names "Bob Stone" too: people use first names
        who = re.escape(name) if " " not in name else f"(?:{re.escape(name)}|{re.escape(name.split()[0])})"
        for predicate, verb in _THIRD_PERSON:
            pattern = re.compile(rf"(?i)(?<![\w@])@?{who}\b,? {verb} {_OBJ}{_END}")
            for found in pattern.finditer(text):
                obj = _clean_object(found.group(1))
                if obj:
                    out[(name, predicate, obj)] = Fact(name, predicate, obj, HEARSAY_CONFIDENCE)
    return list(out.values())


def contradicts(a_predicate: str, a_object: str, b_predicate: str, b_object: str) -> bool:
    """Does (p, o) contradict (p', o') for the same subject?"""
    if a_predicate == b_predicate and a_predicate in SINGLE_VALUED:
        return a_object != b_object
    return OPPOSITE.get(a_predicate) == b_predicate and a_object == b_object


def current_confidence(m: Memory, now: float, half_life_seconds: float) -> float:
    since = m.confirmed_at if m.confirmed_at is not None else m.created_at
    return float(m.confidence * 0.5 ** (max(0.0, now - since) / max(1.0, half_life_seconds)))


def reinforced(confidence_now: float, new_confidence: float) -> float:
    """Hearing it again: the doubt left shrinks by the new source's confidence."""
    return min(0.99, 1.0 - (1.0 - confidence_now) * (1.0 - new_confidence * 0.6))


def weakened(confidence_now: float) -> float:
    return confidence_now * CONTRADICTION_FACTOR
