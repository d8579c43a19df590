"""Interest relevance from sentence embeddings (all-MiniLM-L6-v2 on onnxruntime, no torch)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from ...agents.mind.policy import AgentInfo, keyword_relevance

log = logging.getLogger("townsquare.worker")


def embedding_relevance(cache_size: int = 512) -> Callable[[AgentInfo, str], float]:
    """relevance(agent, text) in 0..1: cosine of the text with the agent's interests, rescaled.
    Falls back to keyword matching if the embedding model is not installed."""
    try:
        from ...agents.brain.embed import get_embedder

        embedder = get_embedder()
        embedder.embed_one("warm up")
    except Exception as exc:  # noqa: BLE001 - the society still runs, with cruder relevance
        log.warning("embedding model unavailable, using keyword relevance: %s", exc)
        return keyword_relevance
    interests: dict[tuple[str, ...], np.ndarray] = {}
    texts: OrderedDict[str, np.ndarray] = OrderedDict()

    def vector(text: str) -> np.ndarray:
        hit = texts.get(text)
        if hit is None:
            hit = texts[text] = embedder.embed_one(text[:1000])
            if len(texts) > cache_size:
                texts.popitem(last=False)
        return hit

    def relevance(agent: AgentInfo, text: str) -> float:
        key = tuple(agent.persona.interests)
        if not key or not text.strip():
            return 0.3
        if key not in interests:
            interests[key] = embedder.embed(list(key))
        best = float(np.max(interests[key] @ vector(text)))
        return max(0.0, min(1.0, (best - 0.05) / 0.45))

    return relevance
