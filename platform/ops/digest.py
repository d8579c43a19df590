"""The content digest: one SHA-256 over what an installation holds for its people and agents,
computed the same way from a live installation and at backup time (it is in every manifest),
so that "the restore reproduced the content" is a comparison of two strings.

  messages  id, channel, author, content, edit time          (by message id)
  files     attachment id, SHA-256 of the bytes the store returns (decrypted if it encrypts)
  memories  agent, memory id, document, metadata              (by agent, then memory id)

Records are canonical JSON lines (sorted keys, ids as strings, times in UTC ISO format)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timezone
from typing import Any

import orjson

from ..core.config import Settings
from ..services.objectstore import ObjectStore
from . import database, memories

PARTS = ("messages", "files", "memories")
MESSAGES_SQL = "SELECT id, channel_id, author_id, content, edited_at FROM messages ORDER BY id"
ATTACHMENTS_SQL = "SELECT id, storage_key, content_type, size FROM attachments ORDER BY id"
AGENTS_SQL = "SELECT id FROM agents ORDER BY id"
SOCIETIES_SQL = "SELECT guild_id FROM societies ORDER BY guild_id"


def _time(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value is not None else None


class ContentDigest:
    """Fed in order (see the module's docstring); `result()` gives counts and hashes per part."""

    def __init__(self) -> None:
        self._hashes = {part: hashlib.sha256() for part in PARTS}
        self.counts = dict.fromkeys(PARTS, 0)

    def _add(self, part: str, record: list[Any]) -> None:
        self._hashes[part].update(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n")
        self.counts[part] += 1

    def message(self, id: int, channel_id: int, author_id: int, content: str, edited_at: datetime | None) -> None:
        self._add("messages", [str(id), str(channel_id), str(author_id), content, _time(edited_at)])

    def file(self, attachment_id: int, sha256: str | None) -> None:
        self._add("files", [str(attachment_id), sha256])  # None: the row's file is missing from the store

    def memory(self, agent_id: int | str, memory_id: str, document: str, metadata: dict[str, Any]) -> None:
        self._add("memories", [str(agent_id), memory_id, document, metadata])

    def result(self) -> dict[str, Any]:
        parts = {part: {"count": self.counts[part], "sha256": self._hashes[part].hexdigest()} for part in PARTS}
        overall = hashlib.sha256("".join(parts[p]["sha256"] for p in PARTS).encode()).hexdigest()
        return {**parts, "sha256": overall}


async def digest_messages(conn: Any, digest: ContentDigest) -> None:
    """Inside a transaction (a cursor streams the messages)."""
    async for r in conn.cursor(MESSAGES_SQL, prefetch=1000):
        digest.message(r["id"], r["channel_id"], r["author_id"], r["content"], r["edited_at"])


async def file_sha256(store: ObjectStore, key: str) -> str | None:
    try:
        data = await store.get(key)
    except FileNotFoundError:
        return None
    return hashlib.sha256(data).hexdigest()


def digest_memories(digest: ContentDigest, exported: memories.AgentMemories) -> None:
    owner = exported.agent_id if exported.kind == "agent" else exported.name  # an agent's as before, a society's by name
    for memory_id, document, metadata in zip(exported.ids, exported.documents, exported.metadatas):
        digest.memory(owner, memory_id, document, metadata)


async def live_digest(settings: Settings, database_url: str, store: ObjectStore, chroma: Any) -> dict[str, Any]:
    """The digest of a running installation; `chroma` is its Chroma client."""
    digest = ContentDigest()
    async with database.connect(database_url, settings) as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await digest_messages(conn, digest)
            attachments = await conn.fetch(ATTACHMENTS_SQL)
            agent_ids = [r["id"] for r in await conn.fetch(AGENTS_SQL)]
            guild_ids = [r["guild_id"] for r in await conn.fetch(SOCIETIES_SQL)]
    for row in attachments:
        digest.file(row["id"], await file_sha256(store, row["storage_key"]))
    for agent_id in agent_ids:
        digest_memories(digest, await asyncio.to_thread(memories.export_agent, chroma, agent_id))
    for guild_id in guild_ids:
        digest_memories(digest, await asyncio.to_thread(memories.export_agent, chroma, guild_id, "society"))
    return digest.result()
