"""What a memory is, and how it travels through Chroma's flat metadata.

Chroma metadata holds only scalars, so the people a memory is about become one boolean key per
person (`about_<user id>`), which Chroma can filter on; the list is rebuilt from those keys.
Times are Unix seconds of real time; recency and fact decay run on real time too (not the
simulation clock), so at a high simulation speed memories age slowly per simulated day.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    OBSERVATION = "observation"  # what the agent saw or said
    REFLECTION = "reflection"  # a higher-level thought drawn from many memories
    SUMMARY = "summary"  # a conversation, condensed (consolidation)
    FACT = "fact"  # subject-predicate-object about someone, with a confidence


MIN_IMPORTANCE, MAX_IMPORTANCE = 1.0, 10.0
ABOUT = "about_"


@dataclass(frozen=True)
class Memory:
    id: str
    agent_id: int
    kind: Kind
    text: str
    importance: float  # 1..10 (Generative Agents' poignancy scale)
    created_at: float
    last_access: float
    about: tuple[int, ...] = ()  # user ids this memory concerns
    channel_id: int | None = None
    source: str | None = None  # what produced it: "message:<id>", "api", "reflection", ...
    rated: bool = False  # importance confirmed by the LLM
    uses: int = 0  # times it was retrieved into a prompt that produced a reply
    # facts only
    subject: str | None = None
    predicate: str | None = None
    object: str | None = None
    confidence: float = 1.0  # at `confirmed_at`; decays with age (see facts.py)
    confirmed_at: float | None = None

    def with_(self, **changes: Any) -> Memory:
        return replace(self, **changes)


def memory_id(*parts: object) -> str:
    """Deterministic ids: the same observation written twice (an event handled twice) is one memory."""
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:24]


def clamp_importance(value: float) -> float:
    return max(MIN_IMPORTANCE, min(MAX_IMPORTANCE, float(value)))


def to_metadata(m: Memory) -> dict[str, Any]:
    meta: dict[str, Any] = {"agent_id": str(m.agent_id), "kind": m.kind.value, "importance": float(m.importance),
                            "created_at": float(m.created_at), "last_access": float(m.last_access), "rated": m.rated,
                            "uses": int(m.uses), "confidence": float(m.confidence)}
    if m.channel_id is not None:
        meta["channel_id"] = str(m.channel_id)
    if m.source:
        meta["source"] = m.source
    if m.confirmed_at is not None:
        meta["confirmed_at"] = float(m.confirmed_at)
    for key in ("subject", "predicate", "object"):
        value = getattr(m, key)
        if value is not None:
            meta[key] = value
    for user in m.about:
        meta[f"{ABOUT}{user}"] = True
    return meta


def from_metadata(memory_id_: str, text: str, meta: dict[str, Any]) -> Memory:
    about = tuple(sorted(int(k[len(ABOUT):]) for k, v in meta.items() if k.startswith(ABOUT) and v))
    return Memory(
        id=memory_id_, agent_id=int(meta.get("agent_id", 0)), kind=Kind(meta.get("kind", "observation")), text=text,
        importance=float(meta.get("importance", 1.0)), created_at=float(meta.get("created_at", 0.0)),
        last_access=float(meta.get("last_access", meta.get("created_at", 0.0))), about=about,
        channel_id=int(meta["channel_id"]) if meta.get("channel_id") else None, source=meta.get("source"),
        rated=bool(meta.get("rated", False)), uses=int(meta.get("uses", 0)), subject=meta.get("subject"),
        predicate=meta.get("predicate"), object=meta.get("object"), confidence=float(meta.get("confidence", 1.0)),
        confirmed_at=float(meta["confirmed_at"]) if meta.get("confirmed_at") is not None else None,
    )


def memory_object(m: Memory, **scores: float) -> dict[str, Any]:
    """The API's shape of a memory (ids as strings, Discord style)."""
    obj: dict[str, Any] = {"id": m.id, "agent_id": str(m.agent_id), "kind": m.kind.value, "text": m.text,
                           "importance": round(m.importance, 2), "created_at": m.created_at, "last_access": m.last_access,
                           "about": [str(u) for u in m.about], "channel_id": str(m.channel_id) if m.channel_id else None,
                           "source": m.source, "uses": m.uses}
    if m.kind is Kind.FACT:
        obj["fact"] = {"subject": m.subject, "predicate": m.predicate, "object": m.object,
                       "confidence": round(m.confidence, 3), "confirmed_at": m.confirmed_at}
    if scores:
        obj["score"] = {k: round(v, 4) for k, v in scores.items()}
    return obj
