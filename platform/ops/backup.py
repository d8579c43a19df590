"""Backup and restore of a whole installation: PostgreSQL, the object store's files, the agents'
memories (Chroma) and the configuration, in one archive (see archive.py for its layout).

Consistency: the database is read in one REPEATABLE READ, READ ONLY transaction (database.py);
the files backed up are exactly those its `attachments` rows name, and the memories those of its
`agents`. Files and memories are read right after that snapshot (neither store is transactional
with PostgreSQL): a memory written meanwhile may or may not be in the backup; a file of a message
sent meanwhile is not, nor is its message.

Restore goes into an installation without content (accounts alone allowed: a fresh `up` has its
administrator) and replaces it whole, accounts included; `force` wipes an installation that has
content first. The schema is brought to the backup's revision, the rows are loaded in one
transaction, then the schema is migrated to this version's head. After it:
  - sequences continue after the loaded rows; snowflakes are time-based, so new ids follow;
  - events the snapshot holds unpublished (committed, not yet positioned when the backup was
    taken) are positioned after the published ones, in the publisher's order: they were news in
    the backed-up installation, not in the restored one;
  - the instance's Redis keys are cleared and the event stream is refilled from the restored
    event log (its last `event_stream_maxlen` events, with their positions), and the agents'
    consumer group starts at its end: new events continue after the restored positions and no
    agent answers the restored history again; gateway sessions start afresh (IDENTIFY);
  - agents' bot tokens sealed with another instance's secret key are re-issued and sealed with
    this one's (a backup holds no secret key; its settings copy holds no secret either).
Files go back through the object store's `put`, so they are stored (and encrypted, if the store
encrypts) as this installation stores any upload; the archive holds the bytes the store returned.

With TOWNSQUARE_BACKUP_KEY set, the archive is encrypted whole as it is written (encryption.py);
a restore or verify opens it with any configured key. Without it, the archive is plaintext
(owner-only) and every backup logs a warning.

One backup or restore runs at a time per installation (a Redis lock)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ..core.config import Settings
from ..services.objectstore import ObjectStore
from . import archive, database, encryption, memories
from .digest import AGENTS_SQL, ATTACHMENTS_SQL, SOCIETIES_SQL, ContentDigest, digest_memories, digest_messages, live_digest
from .errors import BackupBusy, BackupDamaged, BackupIncompatible, InstallationNotEmpty

log = logging.getLogger("townsquare.backup")

LOCK_SECONDS = 6 * 3600  # longer than any backup; a crashed holder's lock lapses


@dataclass
class Installation:
    """What a backup reads and a restore writes."""

    settings: Settings
    database_url: str  # SQLAlchemy's URL (postgresql+asyncpg://...)
    redis: Any  # redis.asyncio.Redis
    store: ObjectStore
    chroma: Callable[[], Any]  # opens (once) the Chroma client

    @classmethod
    def of(cls, platform: Any) -> "Installation":
        return cls(platform.settings, platform.engine.url.render_as_string(hide_password=False), platform.redis, platform.store,
                   lambda: platform.memory.store.client)


def lock_key(settings: Settings) -> str:
    return f"{settings.redis_prefix}ops:backup"


@asynccontextmanager
async def exclusive(inst: Installation) -> AsyncIterator[None]:
    lock = inst.redis.lock(lock_key(inst.settings), timeout=LOCK_SECONDS, blocking=False)
    if not await lock.acquire():
        raise BackupBusy()
    try:
        yield
    finally:
        try:
            await lock.release()
        except Exception:  # noqa: BLE001 - expired meanwhile: nothing to release
            pass


# --- configuration ---


def config_snapshot(settings: Settings) -> tuple[dict[str, Any], dict[str, Path]]:
    """The settings with every secret and URL password masked (Settings.redacted), and the files
    they name (the society file, the routing file)."""
    values = settings.redacted()
    files: dict[str, Path] = {}
    from ...agents.society.persona import bundled_societies

    society = bundled_societies().get(settings.society) or Path(settings.society)
    if society.is_file():
        files["society.yaml"] = society
    if settings.routing_file and Path(settings.routing_file).is_file():
        files["routing.yaml"] = Path(settings.routing_file)
    return values, files


# --- backup ---


def _write_memories(staging: Path, exported: memories.AgentMemories) -> dict[str, Any]:
    base = staging / "memories"
    base.mkdir(exist_ok=True)
    body = {"agent_id": str(exported.agent_id), "collection": exported.metadata, "ids": exported.ids,
            "documents": exported.documents, "metadatas": exported.metadatas}
    stem = str(exported.agent_id) if exported.kind == "agent" else exported.name
    (base / f"{stem}.json").write_bytes(orjson.dumps(body))
    np.save(base / f"{stem}.npy", exported.embeddings, allow_pickle=False)
    owner = "agent_id" if exported.kind == "agent" else "society_id"
    return {owner: str(exported.agent_id), "count": len(exported), "member": f"memories/{stem}.json",
            "embeddings": f"memories/{stem}.npy"}


async def create_backup(inst: Installation, *, kind: str = "manual", compress: bool | None = None,
                        now: datetime | None = None) -> dict[str, Any]:
    """Writes one backup into the backup folder; returns its summary (with the manifest's digest).
    `now` names it (the scheduler's clock)."""
    settings = inst.settings
    compress = settings.backup_compress if compress is None else compress
    cipher = encryption.backup_cipher(settings)  # a malformed key fails here, before any work
    key_id = encryption.fingerprint(encryption.backup_keys(settings)[0]) if cipher is not None else None
    async with exclusive(inst):
        name = archive.new_name(kind, compress, now, encrypted=cipher is not None)
        staging = archive.staging_dir(settings, "backup")
        try:
            manifest = await _stage(inst, staging, name, kind)
            target = settings.resolved_backup_dir() / name
            await asyncio.to_thread(archive.write_archive, staging, manifest, target, compress, cipher, key_id)
        finally:
            await asyncio.to_thread(archive.remove_staging, staging)
    if cipher is None:
        log.warning("backup written unencrypted: it holds every message and upload in clear (owner-only file); set "
                    "TOWNSQUARE_BACKUP_KEY and keep the key away from the data folder", extra={"backup": name})
    log.info("backup written", extra={"backup": name, "size": target.stat().st_size, "encrypted": cipher is not None,
                                      "key_id": key_id})
    return archive.summary(target, manifest)


async def _stage(inst: Installation, staging: Path, name: str, kind: str) -> dict[str, Any]:
    settings = inst.settings
    digest = ContentDigest()
    (staging / "db").mkdir()
    tables_out: list[dict[str, Any]] = []
    async with database.connect(inst.database_url, settings) as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            revision = await database.revision(conn)
            if revision is None:
                raise BackupIncompatible("The database has no schema yet: nothing to back up")
            for table in await database.tables(conn):
                member = f"db/{table.name}.copy"
                rows = await database.copy_out(conn, table, staging / member)
                tables_out.append({"name": table.name, "columns": list(table.columns), "rows": rows, "member": member})
            sequences = await database.sequences(conn)
            await digest_messages(conn, digest)
            attachments = await conn.fetch(ATTACHMENTS_SQL)
            agent_ids = [r["id"] for r in await conn.fetch(AGENTS_SQL)]
            guild_ids = [r["guild_id"] for r in await conn.fetch(SOCIETIES_SQL)]

    files: list[dict[str, Any]] = []
    (staging / "objects").mkdir()
    for row in attachments:
        try:
            data = await inst.store.get(row["storage_key"])
        except FileNotFoundError:
            log.warning("attachment file missing from the store", extra={"attachment_id": row["id"]})
            digest.file(row["id"], None)
            continue
        member = f"objects/{row['id']}"
        await asyncio.to_thread((staging / member).write_bytes, data)
        sha = archive.sha256_file(staging / member)
        digest.file(row["id"], sha)
        files.append({"attachment_id": str(row["id"]), "key": row["storage_key"], "content_type": row["content_type"],
                      "size": len(data), "sha256": sha, "member": member})

    memories_out: list[dict[str, Any]] = []
    shared_out: list[dict[str, Any]] = []  # each society's collection: what its members witnessed, once
    if agent_ids or guild_ids:
        client = await asyncio.to_thread(inst.chroma)
        for agent_id in agent_ids:
            exported = await asyncio.to_thread(memories.export_agent, client, agent_id)
            digest_memories(digest, exported)
            if len(exported):
                memories_out.append(await asyncio.to_thread(_write_memories, staging, exported))
        for guild_id in guild_ids:
            exported = await asyncio.to_thread(memories.export_agent, client, guild_id, "society")
            digest_memories(digest, exported)
            if len(exported):
                shared_out.append(await asyncio.to_thread(_write_memories, staging, exported))

    values, config_files = config_snapshot(settings)
    (staging / "config").mkdir()
    (staging / "config" / "settings.json").write_bytes(orjson.dumps(values, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    for member_name, source in config_files.items():
        shutil.copyfile(source, staging / "config" / member_name)

    from importlib.metadata import PackageNotFoundError, version

    try:
        townsquare_version = version("townsquare")
    except PackageNotFoundError:  # pragma: no cover - always installed (editable) in practice
        townsquare_version = "unknown"
    result = digest.result()
    return {
        "format": archive.FORMAT, "version": archive.VERSION, "name": name, "kind": kind,
        "created_at": archive.created_at(name).isoformat(), "townsquare": townsquare_version, "schema_revision": revision,
        "database": {"tables": tables_out, "sequences": sequences},
        "files": files, "memories": memories_out, "shared_memories": shared_out,
        "config": {"settings": "config/settings.json", "files": sorted(f"config/{n}" for n in config_files)},
        "counts": {"tables": {t["name"]: t["rows"] for t in tables_out}, "messages": result["messages"]["count"],
                   "files": len(files), "memories": result["memories"]["count"], "agents": len(agent_ids)},
        "digest": result,
    }


# --- restore ---


def _migrate_to(database_url: str, schema: str | None, current: str | None, revision: str) -> None:
    """Brings the (empty) schema to `revision`, up or down."""
    from alembic.script import ScriptDirectory

    from ..db import migrate

    script = ScriptDirectory.from_config(migrate.alembic_config(database_url, schema))
    try:
        script.get_revision(revision)
    except Exception as exc:  # noqa: BLE001 - alembic says "unknown" in several ways
        raise BackupIncompatible() from exc
    if current is None or current == revision:
        migrate.upgrade(database_url, schema, revision)
    elif revision in {r.revision for r in script.iterate_revisions(current, "base")}:
        migrate.downgrade(database_url, schema, revision)
    else:
        migrate.upgrade(database_url, schema, revision)


async def _reseal_agent_tokens(conn: Any, settings: Settings) -> int:
    """Agents' tokens sealed with another instance's key: revoke, issue new ones, seal them here."""
    from cryptography.fernet import InvalidToken

    from ..actions.users import _new_token, hash_token
    from ..core.secretbox import seal, unseal
    from ..core.snowflake import new_id

    reissued = 0
    for row in await conn.fetch("SELECT id, token_secret FROM agents ORDER BY id"):
        try:
            unseal(settings, row["token_secret"])
            continue
        except InvalidToken:
            pass
        token = _new_token(row["id"])
        await conn.execute("UPDATE tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", row["id"])
        await conn.execute("INSERT INTO tokens (id, user_id, token_hash, kind) VALUES ($1, $2, $3, 'bot')",
                           new_id(), row["id"], hash_token(token))
        await conn.execute("UPDATE agents SET token_secret = $2 WHERE id = $1", row["id"], seal(settings, token))
        reissued += 1
    return reissued


# In the order the publisher would have taken them (its _TAKE: xid, then id), after the last position.
POSITION_UNPUBLISHED = """
WITH top AS (SELECT coalesce(max(position), 0) AS p FROM events),
     next AS (SELECT id, row_number() OVER (ORDER BY xid, id) AS n FROM events WHERE position IS NULL)
UPDATE events e SET position = top.p + next.n FROM next, top WHERE e.id = next.id
"""


async def _reset_redis(inst: Installation, conn: Any) -> int:
    """Clears the instance's keys, refills the event stream from the restored log and starts the
    agents' consumer group at its end. Returns the last restored position."""
    from ..events.publisher import encode_entry, stream_key

    prefix = inst.settings.redis_prefix
    batch: list[bytes] = []
    keep = lock_key(inst.settings).encode()  # the restore's own lock
    async for key in inst.redis.scan_iter(match=f"{prefix}*", count=500):
        if key != keep:
            batch.append(key)
        if len(batch) >= 500:
            await inst.redis.delete(*batch)
            batch = []
    if batch:
        await inst.redis.delete(*batch)
    key = stream_key(prefix)
    last = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM events"))
    after = max(0, last - inst.settings.event_stream_maxlen)
    while after < last:
        rows = await conn.fetch("SELECT position, type, guild_id, channel_id, user_ids, data, created_at FROM events "
                                "WHERE position > $1 ORDER BY position LIMIT 500", after)
        if not rows:
            break
        pipe = inst.redis.pipeline(transaction=False)
        for r in rows:
            pipe.xadd(key, encode_entry(r["position"], r), id=f"{r['position']}-1")
        await pipe.execute()
        after = rows[-1]["position"]
    from ...worker.runtime.worker import ensure_group

    await ensure_group(inst.redis, key)  # at the stream's end: restored history is not news to the agents
    return last


async def restore_backup(inst: Installation, source: Path, *, force: bool = False) -> dict[str, Any]:
    """Restores the archive at `source` into this installation (see the module's docstring)."""
    settings = inst.settings
    async with exclusive(inst):
        staging = archive.staging_dir(settings, "restore")
        try:
            manifest = await asyncio.to_thread(archive.extract_verified, source, staging, settings)
            return await _restore(inst, staging, manifest, force)
        finally:
            await asyncio.to_thread(archive.remove_staging, staging)


async def _restore(inst: Installation, staging: Path, manifest: dict[str, Any], force: bool) -> dict[str, Any]:
    settings = inst.settings
    revision = manifest.get("schema_revision")
    if not isinstance(revision, str):
        raise BackupDamaged()
    chroma = await asyncio.to_thread(inst.chroma)
    backup_agents = [int(m["agent_id"]) for m in manifest["memories"]]

    async with database.connect(inst.database_url, settings) as conn:
        current = await database.revision(conn)
        occupied = await database.occupied(conn) if current else []
        old_agents = [r["id"] for r in await conn.fetch(AGENTS_SQL)] if "agents" in occupied else []
        old_societies = [r["guild_id"] for r in await conn.fetch(SOCIETIES_SQL)] if "societies" in occupied else []
        old_keys = [r["storage_key"] for r in await conn.fetch(ATTACHMENTS_SQL)] if "attachments" in occupied else []
    content = [t for t in occupied if t not in database.ACCOUNT_TABLES]
    stale_memories = [a for a in backup_agents if a not in old_agents and await asyncio.to_thread(memories.count, chroma, a)]
    if (content or stale_memories) and not force:
        raise InstallationNotEmpty()

    # wipe what is there (accounts of a fresh installation; everything when forced)
    if occupied:
        async with database.connect(inst.database_url, settings) as conn:
            await database.wipe(conn)
    for agent_id in {*old_agents, *backup_agents}:
        await asyncio.to_thread(memories.drop_agent, chroma, agent_id)
    shared = manifest.get("shared_memories") or []  # backups made before migration 0005 have none
    for guild_id in {*old_societies, *(int(m["society_id"]) for m in shared)}:
        await asyncio.to_thread(memories.drop_agent, chroma, guild_id, "society")
    for key in old_keys:
        try:
            await inst.store.delete(key)
        except FileNotFoundError:
            pass

    await asyncio.to_thread(_migrate_to, inst.database_url, settings.database_schema, current, revision)
    saved = {t["name"]: t for t in manifest["database"]["tables"]}
    async with database.connect(inst.database_url, settings) as conn:
        async with conn.transaction():
            live = await database.tables(conn)
            if {t.name: list(t.columns) for t in live} != {n: t["columns"] for n, t in saved.items()}:
                raise BackupIncompatible("The backup's tables do not match its schema revision")
            for table in live:
                loaded = await database.copy_in(conn, table, staging / saved[table.name]["member"])
                if loaded != saved[table.name]["rows"]:
                    raise BackupDamaged()
            await database.restore_sequences(conn, manifest["database"]["sequences"])
            # events committed but not yet published when the snapshot was taken: history like the
            # rest (the backed-up installation published them, its agents saw them), so they get
            # their positions here, after the published ones, and go into the stream before the
            # agents' group is set to its end; published by the publisher later, they would be news
            await conn.execute(POSITION_UNPUBLISHED)
            reissued = await _reseal_agent_tokens(conn, settings)
    from ..db import migrate

    await asyncio.to_thread(migrate.upgrade, inst.database_url, settings.database_schema, "head")

    for f in manifest["files"]:
        await inst.store.put(f["key"], await asyncio.to_thread((staging / f["member"]).read_bytes), f["content_type"])
    for m in manifest["memories"]:
        body = orjson.loads((staging / m["member"]).read_bytes())
        embeddings = np.load(staging / m["embeddings"], allow_pickle=False)
        exported = memories.AgentMemories(int(body["agent_id"]), body["collection"], body["ids"], body["documents"],
                                          body["metadatas"], embeddings)
        await asyncio.to_thread(memories.import_agent, chroma, exported)
    for m in shared:
        body = orjson.loads((staging / m["member"]).read_bytes())
        embeddings = np.load(staging / m["embeddings"], allow_pickle=False)
        await asyncio.to_thread(memories.import_agent, chroma, memories.AgentMemories(
            int(m["society_id"]), body["collection"], body["ids"], body["documents"], body["metadatas"], embeddings, kind="society"))

    async with database.connect(inst.database_url, settings) as conn:
        position = await _reset_redis(inst, conn)
    config_dir = await asyncio.to_thread(_extract_config, settings, staging, manifest)
    digest = await live_digest(settings, inst.database_url, inst.store, chroma)
    log.info("backup restored", extra={"backup": manifest["name"], "digest_matches": digest == manifest["digest"]})
    return {"name": manifest["name"], "schema_revision": revision, "counts": manifest["counts"], "digest": digest,
            "digest_matches": digest == manifest["digest"], "event_position": position, "agent_tokens_reissued": reissued,
            "config_dir": str(config_dir), "restored_at": datetime.now(timezone.utc).isoformat()}


def _extract_config(settings: Settings, staging: Path, manifest: dict[str, Any]) -> Path:
    """The backed-up configuration is set aside for the operator (settings come from the
    environment, which a restore does not rewrite)."""
    target = settings.resolved_data_dir() / "restored-config" / manifest["name"].split(".tar")[0]
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for member in [manifest["config"]["settings"], *manifest["config"]["files"]]:
        shutil.copyfile(staging / member, target / os.path.basename(member))
    return target


async def verify_backup(inst: Installation | None, source: Path, *, live: bool = False,
                        settings: Settings | None = None) -> dict[str, Any]:
    """Checks every member of the archive against its manifest (an encrypted archive is opened
    with a backup key of `settings`, else the installation's); with `live`, also compares the
    manifest's content digest with the installation's (after a restore they are equal)."""
    settings = settings or (inst.settings if inst is not None else None)
    staging_root = source.parent if inst is None else inst.settings.resolved_backup_dir()
    import tempfile

    with tempfile.TemporaryDirectory(dir=staging_root, prefix=".verify-") as folder:
        manifest = await asyncio.to_thread(archive.extract_verified, source, Path(folder), settings)
    out: dict[str, Any] = {"name": manifest["name"], "intact": True, "digest": manifest["digest"],
                           "encrypted": encryption.sealing_key_id(source) is not None}
    if live and inst is not None:
        chroma = await asyncio.to_thread(inst.chroma)
        current = await live_digest(inst.settings, inst.database_url, inst.store, chroma)
        out.update(live_digest=current, digest_matches=current == manifest["digest"])
    return out
