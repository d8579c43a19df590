"""Homophily: members mostly take up the words of people they like, know and resemble.

"Birds of a feather" (McPherson, Smith-Lovin & Cook 2001): contact between similar people
happens at a higher rate than between dissimilar ones, and a tie grows with the time spent on it
(Granovetter 1973). The turn policy uses `pull` in the chance that an agent picks a message up
and again in a logit (discrete) choice among the agents willing to answer it (McFadden): odds
urge x pull^(h - 1), the urge holding the pull once, so pull^h in all (h: PolicyConfig.homophily,
TURN_HOMOPHILY). A friend who shares the author's interests usually answers, a stranger with
nothing in common rarely does, and nobody is ever ruled out.

Likeness is the overlap of two personas' interests: the same interest counts fully, two
interests sharing a content word ("street food" and "spicy food") half.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from .relations import Bond

LIKING = 0.8  # affinity -1..1 scales the pull by 1 -/+ this (floored at PULL_FLOOR)
KNOWING_BASE, KNOWING = 0.75, 0.6  # familiarity 0..1 scales it from 0.75 (a stranger) to 1.35 (an old acquaintance)
ALIKE_BASE, ALIKE = 0.6, 1.2  # interest overlap 0..1: nothing in common 0.6, one interest of five (0.2) 0.84, all 1.8
PULL_FLOOR = 0.1  # even someone disliked can be answered now and then
RELATED = 0.5  # an interest that shares a content word with one of the other's counts this much

STRANGER = KNOWING_BASE  # the pull toward a stranger whose interests are unknown

_STOP = frozenset({"a", "an", "and", "at", "for", "in", "of", "on", "the", "to", "with"})


@lru_cache(maxsize=4096)
def _words(interest: str) -> frozenset[str]:
    return frozenset(w for w in interest.lower().split() if w not in _STOP)


def _match(interest: str, others: tuple[str, ...]) -> float:
    lowered = interest.lower()
    if any(lowered == o.lower() for o in others):
        return 1.0
    words = _words(interest)
    return RELATED if words and any(words & _words(o) for o in others) else 0.0


@lru_cache(maxsize=8192)
def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    return sum(_match(i, big) for i in small) / len(small)


def interest_overlap(a: Sequence[str], b: Sequence[str]) -> float:
    """0..1: how much of the shorter list of interests the other list shares (the overlap
    coefficient, so a member with few interests is not penalised for it)."""
    if not a or not b:
        return 0.0
    return _overlap(tuple(a), tuple(b))


def pull(bond: Bond | None, overlap: float | None) -> float:
    """How strongly a member is drawn to take up another's words: liking x acquaintance x
    likeness. `overlap` None: the other's interests are unknown (a human, a third-party bot),
    which counts as neither like nor unlike (1.0)."""
    affinity, familiarity = (bond.affinity, bond.familiarity) if bond else (0.0, 0.0)
    liking = max(PULL_FLOOR, 1.0 + LIKING * affinity)
    knowing = KNOWING_BASE + KNOWING * familiarity
    alike = 1.0 if overlap is None else ALIKE_BASE + ALIKE * overlap
    return liking * knowing * alike
