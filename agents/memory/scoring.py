"""Retrieval scoring: recency x importance x relevance, as in Generative Agents.

Each component is min-max normalised over the candidates, then weighted (their code weighs
recency 0.5, importance 3, relevance 2) and summed. Recency decays exponentially with the hours
since the memory was last accessed (0.995 per hour by default, Generative Agents' factor);
a fact's importance counts at its current confidence, so stale or contradicted facts sink.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .facts import current_confidence
from .model import Kind, Memory


@dataclass(frozen=True)
class Weights:
    recency: float = 0.5
    importance: float = 3.0
    relevance: float = 2.0


@dataclass(frozen=True)
class Scored:
    memory: Memory
    score: float
    recency: float  # normalised 0..1 among the candidates
    importance: float
    relevance: float
    similarity: float  # raw cosine similarity to the query

    def parts(self) -> dict[str, float]:
        return {"total": self.score, "recency": self.recency, "importance": self.importance, "relevance": self.relevance,
                "similarity": self.similarity}


def recency(last_access: float, now: float, decay_per_hour: float = 0.995) -> float:
    return float(decay_per_hour ** max(0.0, (now - last_access) / 3600.0))


def effective_importance(m: Memory, now: float, half_life_seconds: float) -> float:
    if m.kind is Kind.FACT:
        return m.importance * current_confidence(m, now, half_life_seconds)
    return m.importance


def normalise(values: Sequence[float]) -> list[float]:
    """Min-max to 0..1; all equal gives 0.5 each (as Generative Agents does)."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        return [0.5] * len(values)
    return [(v - lo) / (hi - lo) for v in values]


def rank(candidates: Sequence[tuple[Memory, float]], now: float, *, weights: Weights = Weights(),
         decay_per_hour: float = 0.995, fact_half_life_seconds: float = 14 * 86400.0) -> list[Scored]:
    """`candidates` are (memory, cosine similarity to the query); best first."""
    if not candidates:
        return []
    rec = normalise([recency(m.last_access, now, decay_per_hour) for m, _ in candidates])
    imp = normalise([effective_importance(m, now, fact_half_life_seconds) for m, _ in candidates])
    rel = normalise([s for _, s in candidates])
    out = [Scored(m, weights.recency * r + weights.importance * i + weights.relevance * v, r, i, v, s)
           for (m, s), r, i, v in zip(candidates, rec, imp, rel)]
    out.sort(key=lambda x: (-x.score, -x.similarity, x.memory.id))
    return out
