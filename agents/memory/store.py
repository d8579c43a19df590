"""The memory store: one Chroma collection per society for what its members witnessed (each
message once, see ledger.py for who may see it), and one per agent for its own memories
(reflections, summaries, memories the API adds, and everything written before migration 0005,
which is read as it was). Vectors come from our own embedder.

Chroma runs embedded (a `PersistentClient` on `DATA_DIR/chroma`) or as a server (`CHROMA_URL`).
An embedded store belongs to one process: Chroma keeps its vector index in that process's
memory, so several processes writing one folder would not see each other. `townsquare up`
therefore starts Chroma's server on the data folder and gives its URL to every process; a
single process (a test, a benchmark, `townsquare worker` on its own) may open the folder itself.

Embeddings are always computed here (all-MiniLM-L6-v2, padded to each batch's longest input,
see agents/brain/embed.py) and handed to Chroma; Chroma's own embedding function (which pads
to 256 tokens and would download its model) is never used. Telemetry is off.

Chroma's client is synchronous: async callers go through `asyncio.to_thread`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ..brain.embed import Embedder, get_embedder
from .model import ABOUT, Kind, Memory, from_metadata, to_metadata
from .scoring import Scored, Weights, rank

SPACE = "cosine"
REQUEST_TIMEOUT = 10.0  # seconds for one request to Chroma's server


def society_collection(guild_id: int) -> str:
    return f"society-{guild_id}"


class MemoryUnavailable(RuntimeError):
    """Chroma could not be reached or opened."""


_held: dict[str, int] = {}  # embedded folders this process owns -> the lock file's descriptor


def _own(folder: Path) -> None:
    """An embedded store is one process's: a second process gets a clear error, not a silently
    diverging copy of the index (or a hang on Chroma's files)."""
    import fcntl
    import os

    key = str(folder.resolve())
    if key in _held:
        return
    fd = os.open(folder / ".townsquare-owner.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise MemoryUnavailable(f"the memory store in {folder} belongs to another process: set CHROMA_URL to share it "
                                "(`townsquare up` serves it with `townsquare memory serve`)") from exc
    _held[key] = fd


def open_client(chroma_url: str | None, path: str | Path | None) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if chroma_url:
            url = urlparse(chroma_url)
            client = chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or (443 if url.scheme == "https" else 8000),
                                         ssl=url.scheme == "https", settings=settings)
            session = getattr(getattr(client, "_server", None), "_session", None)
            if session is not None:  # Chroma's client waits forever by default: a stalled server must not stall us
                import httpx

                session.timeout = httpx.Timeout(REQUEST_TIMEOUT)
            return client
        if path is None:
            raise MemoryUnavailable("an embedded memory store needs a folder")
        Path(path).mkdir(parents=True, exist_ok=True)
        _own(Path(path))
        return chromadb.PersistentClient(path=str(path), settings=settings)
    except MemoryUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - chromadb raises many kinds; one error for callers
        raise MemoryUnavailable(f"cannot open the memory store: {exc}") from exc


class MemoryStore:
    def __init__(self, client: Any, embedder: Embedder | None = None, *, weights: Weights = Weights(),
                 decay_per_hour: float = 0.995, fact_half_life_seconds: float = 14 * 86400.0) -> None:
        self.client = client
        self._embedder = embedder
        self.weights = weights
        self.decay_per_hour = decay_per_hour
        self.fact_half_life_seconds = fact_half_life_seconds
        self._collections: dict[int, Any] = {}
        self._nonempty: set[int] = set()  # agents whose collection held memories when last looked at
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder()
        return self._embedder

    # --- collections ---

    def _collection(self, agent_id: int) -> Any:
        found = self._collections.get(agent_id)
        if found is None:
            with self._lock:
                found = self._collections.get(agent_id)
                if found is None:
                    found = self.client.get_or_create_collection(name=f"agent-{agent_id}", embedding_function=None,
                                                                 metadata={"hnsw:space": SPACE, "agent_id": str(agent_id)})
                    self._collections[agent_id] = found
        return found

    def _society(self, guild_id: int) -> Any:
        key = -guild_id  # societies and agents share the cache (ids never collide: snowflakes are positive)
        found = self._collections.get(key)
        if found is None:
            with self._lock:
                found = self._collections.get(key)
                if found is None:
                    found = self.client.get_or_create_collection(name=society_collection(guild_id), embedding_function=None,
                                                                 metadata={"hnsw:space": SPACE, "guild_id": str(guild_id)})
                    self._collections[key] = found
        return found

    def put_shared(self, guild_id: int, ids: Sequence[str], documents: Sequence[str], embeddings: np.ndarray,
                   metadatas: Sequence[dict[str, Any]]) -> None:
        """One upsert for a message and the facts it states, whoever witnessed it."""
        if ids:
            self._society(guild_id).upsert(ids=list(ids), documents=list(documents), embeddings=[v.tolist() for v in embeddings],
                                           metadatas=list(metadatas))

    def nearest_shared(self, guild_id: int, vector: np.ndarray, n: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """The ids of the `n` nearest in the society's collection with their cosine similarity:
        distances only (Chroma's metadata reads are the expensive part, the records are in SQL)."""
        collection = self._society(guild_id)
        if -guild_id not in self._nonempty:
            if collection.count() == 0:
                return []
            self._nonempty.add(-guild_id)
        got = collection.query(query_embeddings=[np.asarray(vector, dtype=np.float32).tolist()], n_results=max(1, n), where=where,
                               include=["distances"])
        return [(i, 1.0 - float(d)) for i, d in zip(got["ids"][0], got["distances"][0])]

    def drop_agent(self, agent_id: int) -> None:
        with self._lock:
            self._collections.pop(agent_id, None)
            self._nonempty.discard(agent_id)
        try:
            self.client.delete_collection(name=f"agent-{agent_id}")
        except Exception:  # noqa: BLE001 - nothing stored for this agent yet
            pass

    # --- writing ---

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.embedder.embed(list(texts))

    def add(self, memories: Sequence[Memory], embeddings: np.ndarray | None = None) -> None:
        """Upserts (same id: replaced). Memories may belong to several agents."""
        if not memories:
            return
        vectors = embeddings if embeddings is not None else self.embed([m.text for m in memories])
        by_agent: dict[int, list[int]] = {}
        for i, m in enumerate(memories):
            by_agent.setdefault(m.agent_id, []).append(i)
        for agent_id, rows in by_agent.items():
            self._collection(agent_id).upsert(ids=[memories[i].id for i in rows], documents=[memories[i].text for i in rows],
                                              embeddings=[vectors[i].tolist() for i in rows],
                                              metadatas=[to_metadata(memories[i]) for i in rows])

    def patch(self, agent_id: int, changes: dict[str, dict[str, Any]]) -> None:
        """Only the named metadata keys of each memory (Chroma merges them): a concurrent change
        to another key (a recall's access time, a rating) is never overwritten by a stale copy."""
        if changes:
            self._collection(agent_id).update(ids=list(changes), metadatas=list(changes.values()))

    def existing(self, agent_id: int, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        return set(self._collection(agent_id).get(ids=list(ids), include=[])["ids"])

    def forget(self, agent_id: int, ids: Iterable[str] | None = None, *, about: int | None = None) -> int:
        col = self._collection(agent_id)
        if ids is not None:
            wanted = list(dict.fromkeys(ids))
            found = col.get(ids=wanted, include=[])["ids"] if wanted else []
            if found:
                col.delete(ids=found)
            return len(found)
        if about is not None:
            found = col.get(where={f"{ABOUT}{about}": True}, include=[])["ids"]
            if found:
                col.delete(ids=found)
            return len(found)
        return 0

    # --- reading ---

    def count(self, agent_id: int) -> int:
        return int(self._collection(agent_id).count())

    def count_own(self, agent_id: int) -> int:
        """Like `count`, without making an empty collection for an agent that has none (most
        agents of a large society never write a memory of their own)."""
        if agent_id in self._collections:
            return self.count(agent_id)
        try:
            found = self.client.get_collection(name=f"agent-{agent_id}", embedding_function=None)
        except Exception as exc:  # noqa: BLE001 - chromadb says "missing" in several ways
            from chromadb.errors import NotFoundError

            if isinstance(exc, (NotFoundError, ValueError)):
                return 0
            raise
        with self._lock:
            self._collections.setdefault(agent_id, found)
        return int(found.count())

    def get(self, agent_id: int, ids: Sequence[str]) -> list[Memory]:
        if not ids:
            return []
        got = self._collection(agent_id).get(ids=list(ids), include=["documents", "metadatas"])
        return [from_metadata(i, d or "", m or {}) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]

    def find(self, agent_id: int, where: dict[str, Any] | None = None, limit: int | None = None) -> list[Memory]:
        got = self._collection(agent_id).get(where=where, limit=limit, include=["documents", "metadatas"])
        return [from_metadata(i, d or "", m or {}) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]

    def recent(self, agent_id: int, limit: int = 50, *, kinds: Iterable[Kind] | None = None, since: float | None = None,
               before: float | None = None) -> list[Memory]:
        """Newest first. Chroma cannot sort, and reading a whole large store is slow (its metadata
        comes from SQLite row by row): without `since`, widening time windows are read until
        `limit` memories are found."""
        if since is not None:
            found = self._between(agent_id, kinds, since, before)
        else:
            end = before if before is not None else time.time() + 60
            found = []
            for window in (3600.0, 86400.0, 7 * 86400.0, None):
                if window is None and self.count(agent_id) > 2000:
                    break  # older than a week in a large store: search finds them, a listing need not
                found = self._between(agent_id, kinds, end - window if window else None, before)
                if len(found) >= limit:
                    break
        found.sort(key=lambda m: (-m.created_at, m.id))
        return found[:limit]

    def _between(self, agent_id: int, kinds: Iterable[Kind] | None, since: float | None, before: float | None) -> list[Memory]:
        clauses: list[dict[str, Any]] = []
        if kinds:
            clauses.append({"kind": {"$in": [k.value for k in kinds]}})
        if since is not None:
            clauses.append({"created_at": {"$gte": float(since)}})
        if before is not None:
            clauses.append({"created_at": {"$lt": float(before)}})
        where = clauses[0] if len(clauses) == 1 else {"$and": clauses} if clauses else None
        return self.find(agent_id, where)

    def search(self, agent_id: int, query: str | np.ndarray, now: float, *, k: int = 5, candidates: int = 20,
               kinds: Iterable[Kind] | None = None, about: int | None = None, touch: bool = False) -> list[Scored]:
        """The `k` best memories for `query` by recency x importance x relevance. The candidates
        are the `candidates` most similar (HNSW), then ranked; `touch` marks the winners as
        accessed now (retrieval refreshes recency, as in Generative Agents).

        Cost: Chroma reads each candidate's text and metadata from SQLite (~0.1-0.3 ms each),
        so the pool is kept small; a filter (`kinds`, `about`) makes Chroma search a filtered
        set, much slower on a large store: the turn's recall does not use one (see remember.py)."""
        return self.rank(self.candidates(agent_id, query, candidates, kinds=kinds, about=about), now, k=k, touch=touch)

    def candidates(self, agent_id: int, query: str | np.ndarray, n: int, *, kinds: Iterable[Kind] | None = None,
                   about: int | None = None) -> list[tuple[Memory, float]]:
        """The `n` memories most similar to `query`, with their cosine similarity."""
        vector = self.embedder.embed_one(query) if isinstance(query, str) else np.asarray(query, dtype=np.float32)
        clauses: list[dict[str, Any]] = []
        if kinds:
            clauses.append({"kind": {"$in": [k_.value for k_ in kinds]}})
        if about is not None:
            clauses.append({f"{ABOUT}{about}": True})
        where = clauses[0] if len(clauses) == 1 else {"$and": clauses} if clauses else None
        collection = self._collection(agent_id)
        # Chroma's server fails a query on a collection that never held anything ("nothing found on
        # disk"): look once, then trust it (asking for more than there is returns what there is)
        if agent_id not in self._nonempty:
            if collection.count() == 0:
                return []
            self._nonempty.add(agent_id)
        try:
            got = collection.query(query_embeddings=[vector.tolist()], n_results=max(1, n), where=where,
                                   include=["documents", "metadatas", "distances"])
        except Exception:  # noqa: BLE001 - emptied since (forgetting): look again next time
            self._nonempty.discard(agent_id)
            if collection.count() == 0:
                return []
            raise
        return [(from_metadata(i, d or "", m or {}), 1.0 - float(dist))
                for i, d, m, dist in zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])]

    def rank(self, pool: Sequence[tuple[Memory, float]], now: float, *, k: int, touch: bool = False) -> list[Scored]:
        best = rank(pool, now, weights=self.weights, decay_per_hour=self.decay_per_hour,
                    fact_half_life_seconds=self.fact_half_life_seconds)[:k]
        if touch and best:
            self.patch(best[0].memory.agent_id, {s.memory.id: {"last_access": float(now)} for s in best})
        return best
