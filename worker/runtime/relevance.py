"""Interest relevance from sentence embeddings (all-MiniLM-L6-v2 on onnxruntime, no torch)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from ...agents.mind.policy import AgentInfo, keyword_relevance

log = logging.getLogger("townsquare.worker")


def _cached_vectors(cache_size: int) -> tuple[Any, Callable[[str], np.ndarray]] | None:
    """(the agents' embedder, its `embed_one` behind an LRU of recent texts (a line is judged and ranked several
    times per turn)), or None when the embedding model is not installed."""
    try:
        from ...agents.brain.embed import get_embedder

        embedder = get_embedder()
        embedder.embed_one("warm up")
    except Exception as exc:  # noqa: BLE001 - the society still runs, with cruder relevance
        log.warning("embedding model unavailable, using keyword relevance: %s", exc)
        return None
    texts: OrderedDict[str, np.ndarray] = OrderedDict()

    def vector(text: str) -> np.ndarray:
        hit = texts.get(text)
        if hit is None:
            hit = texts[text] = embedder.embed_one(text[:1000])
            if len(texts) > cache_size:
                texts.popitem(last=False)
        else:
            texts.move_to_end(text)
        return hit

    return embedder, vector


def embedding_relevance(cache_size: int = 512) -> Callable[[AgentInfo, str], float]:
    """relevance(agent, text) in 0..1: cosine of the text with the agent's interests, rescaled.
    Falls back to keyword matching if the embedding model is not installed."""
    cached = _cached_vectors(cache_size)
    if cached is None:
        return keyword_relevance
    embedder, vector = cached
    # indexed by interest, not by agent: a society of thousands shares a few hundred interests, each
    # embedded once (the first message in a channel of 5,000 readers must not embed 5,000 lists),
    # and a text's cosine to each interest is kept for the text's recent readers
    interest_vectors: dict[str, np.ndarray] = {}
    by_text: OrderedDict[str, dict[str, float]] = OrderedDict()

    def relevance(agent: AgentInfo, text: str) -> float:
        key = agent.persona.interests
        if not key or not text.strip():
            return 0.3
        missing = [i for i in dict.fromkeys(key) if i not in interest_vectors]
        if missing:
            interest_vectors.update(zip(missing, embedder.embed(missing)))
        sims = by_text.get(text)
        if sims is None:
            sims = by_text[text] = {}
            if len(by_text) > 64:
                by_text.popitem(last=False)
        for interest in key:
            if interest not in sims:
                sims[interest] = float(interest_vectors[interest] @ vector(text))
        best = max(sims[i] for i in key)
        return max(0.0, min(1.0, (best - 0.05) / 0.45))

    return relevance


def keyword_text_relevance(a: str, b: str) -> float:
    """Word overlap of two lines (Jaccard on content words): the cruder stand-in for embeddings."""
    from ...agents.turn.text import words

    wa, wb = {w for w in words(a) if len(w) > 3}, {w for w in words(b) if len(w) > 3}
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def embedding_text_relevance(cache_size: int = 1024) -> Callable[[str, str], float]:
    """relevance(line, what it answers): the cosine of their sentence embeddings (the gate's
    off-topic test and the choice among candidates). Keyword overlap without the model."""
    cached = _cached_vectors(cache_size)
    if cached is None:
        return keyword_text_relevance
    _, vector = cached

    def relevance(a: str, b: str) -> float:
        if not a.strip() or not b.strip():
            return 0.0
        return float(vector(a) @ vector(b))

    return relevance
