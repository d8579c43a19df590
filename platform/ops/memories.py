"""The agents' memories in a backup: each agent's Chroma collection, and each society's (what
its members witnessed, stored once: agents/memory/store.py), read through the Chroma client (ids, documents, metadatas and the embeddings themselves, so a restore needs no embedder)
and written back the same way. Works the same against Chroma's server and an embedded store.

Chroma's client is synchronous: these functions run on a worker thread (`asyncio.to_thread`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

PAGE = 1000  # memories per request


def collection_name(agent_id: int, kind: str = "agent") -> str:
    return f"{kind}-{agent_id}"  # the store's naming (agents/memory/store.py): agent-<id>, society-<guild id>


@dataclass
class AgentMemories:
    agent_id: int  # or the society's guild id (kind "society")
    metadata: dict[str, Any] = field(default_factory=dict)  # the collection's (its distance space)
    ids: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    metadatas: list[dict[str, Any]] = field(default_factory=list)
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    kind: str = "agent"

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def name(self) -> str:
        return collection_name(self.agent_id, self.kind)


def _missing(exc: Exception) -> bool:
    try:
        from chromadb.errors import NotFoundError
    except ImportError:  # pragma: no cover - older clients said ValueError
        return isinstance(exc, ValueError)
    return isinstance(exc, (NotFoundError, ValueError))


def _get_collection(client: Any, agent_id: int, kind: str = "agent") -> Any | None:
    try:
        # no embedding function: the embeddings are read and written as they are, and Chroma's
        # default one would load onnxruntime (and its telemetry) for nothing
        return client.get_collection(name=collection_name(agent_id, kind), embedding_function=None)
    except Exception as exc:
        if _missing(exc):
            return None
        raise


def export_agent(client: Any, agent_id: int, kind: str = "agent") -> AgentMemories:
    """Every memory of one agent (or society), sorted by id (none without a collection)."""
    out = AgentMemories(agent_id, kind=kind)
    collection = _get_collection(client, agent_id, kind)
    if collection is None:
        return out
    out.metadata = dict(collection.metadata or {})
    rows: dict[str, tuple[str, dict[str, Any], Any]] = {}
    offset = 0
    while True:
        got = collection.get(include=["documents", "metadatas", "embeddings"], limit=PAGE, offset=offset)
        ids = got["ids"]
        embeddings = got["embeddings"] if got["embeddings"] is not None else [None] * len(ids)
        for i, memory_id in enumerate(ids):
            rows[memory_id] = (got["documents"][i] or "", dict(got["metadatas"][i] or {}), embeddings[i])
        if len(ids) < PAGE:
            break
        offset += PAGE
    for memory_id in sorted(rows):
        document, metadata, _ = rows[memory_id]
        out.ids.append(memory_id)
        out.documents.append(document)
        out.metadatas.append(metadata)
    if out.ids:
        out.embeddings = np.asarray([rows[i][2] for i in out.ids], dtype=np.float32)
    return out


def import_agent(client: Any, memories: AgentMemories) -> None:
    """Creates the agent's collection as the store makes it and writes every memory (upsert)."""
    metadata = memories.metadata or {"hnsw:space": "cosine", ("guild_id" if memories.kind == "society" else "agent_id"): str(memories.agent_id)}
    collection = client.get_or_create_collection(name=memories.name, embedding_function=None,
                                                 metadata=metadata)
    for start in range(0, len(memories), PAGE):
        end = start + PAGE
        collection.upsert(ids=memories.ids[start:end], documents=memories.documents[start:end],
                          metadatas=[m or None for m in memories.metadatas[start:end]], embeddings=memories.embeddings[start:end].tolist())


def drop_agent(client: Any, agent_id: int, kind: str = "agent") -> None:
    if _get_collection(client, agent_id, kind) is not None:
        client.delete_collection(name=collection_name(agent_id, kind))


def count(client: Any, agent_id: int, kind: str = "agent") -> int:
    collection = _get_collection(client, agent_id, kind)
    return 0 if collection is None else int(collection.count())
