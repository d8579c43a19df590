"""Backup and restore on real services: a society with messages, an attachment and memories is
backed up from the session's installation and restored into a fresh one (its own PostgreSQL
schema, Redis prefix, object-store folder and an embedded Chroma); the content digests match.
Also: encrypted archives (TOWNSQUARE_BACKUP_KEY: round trip, key rotation, wrong key and altered
bytes refused, no secret in the saved configuration), the admin API (auth, hostile names,
download, audit), refusal to overwrite content, scheduling and retention on a fake clock, and
the CLI in a subprocess."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from townsquare.agents.memory.remember import Seen
from townsquare.platform.actions import agents as registry
from townsquare.platform.actions.context import Platform
from townsquare.platform.api.app import build_platform, close_platform
from townsquare.platform.core.config import Settings, is_secret
from townsquare.platform.core.snowflake import new_id
from townsquare.platform.events.publisher import stream_key
from townsquare.platform.ops import archive, encryption
from townsquare.platform.ops.backup import Installation, create_backup, restore_backup, verify_backup
from townsquare.platform.ops.digest import live_digest
from townsquare.platform.ops.errors import BackupDamaged, BackupKeyMissing, InstallationNotEmpty
from townsquare.worker.jobs.backup import run_scheduled

from .helpers import Actor, World, assert_discord_error, drop_installation, person, start_server, wait_for
from .test_attachments import upload
from .test_worker import society_with_human

API = "/api/v10/townsquare/backups"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


@dataclass
class Society:
    admin: Actor
    human: Actor
    guild_id: int
    agent_ids: list[int]
    general: int


async def _society(platform: Platform, client: httpx.AsyncClient) -> Society:
    """Messages (one edited), an uploaded attachment, and memories of two agents."""
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    for content in ("Good morning, village!", "Who is coming to the harbour festival?"):
        r = await client.post(f"/api/v10/channels/{general}/messages", json={"content": content}, headers=human.headers)
        assert r.status_code == 200, r.text
    edited = r.json()["id"]
    r = await client.patch(f"/api/v10/channels/{general}/messages/{edited}", json={"content": "Who comes to the festival?"},
                           headers=human.headers)
    assert r.status_code == 200, r.text
    r = await upload(client, human, general, [("map.png", PNG, "image/png")], content="the way to the harbour")
    assert r.status_code == 200, r.text
    agent_ids = [int(a["id"]) for a in cast[:2]]
    for i, agent_id in enumerate(agent_ids):
        for memory in (f"The festival starts at dusk ({i})", f"I promised to bring bread to the harbour ({i})"):
            r = await client.post(f"/api/v10/townsquare/agents/{agent_id}/memories", json={"text": memory, "importance": 6},
                                  headers=admin.headers)
            assert r.status_code == 201, r.text
    # what both witnessed: stored once in the society's collection, its record in PostgreSQL
    seen = Seen(new_id(), general, "general", human.id, "Rosa", "The lantern parade goes past the harbour at nine", time.time(),
                guild_id=guild_id)
    assert set(await platform.memory.observe(seen, agent_ids, {})) == set(agent_ids)
    return Society(admin, human, guild_id, agent_ids, general)


def _fresh_settings(settings: Settings, folder: Path) -> Settings:
    """An empty installation beside the session's: nothing migrated yet, an embedded Chroma."""
    tag = secrets.token_hex(4)
    return settings.model_copy(update={"database_schema": f"ts_restore_{tag}", "redis_prefix": f"ts:restore:{tag}:",
                                       "data_dir": folder, "chroma_url": None, "backup_dir": settings.resolved_backup_dir()})


async def _drop(settings: Settings, services: Any) -> None:
    await drop_installation(settings, services.database_url, services.redis_url)


@pytest.fixture
async def fresh(settings: Settings, services: Any, tmp_path: Path) -> AsyncIterator[Platform]:
    target = _fresh_settings(settings, tmp_path / "fresh")
    platform = await build_platform(target, services.database_url, services.redis_url)
    try:
        yield platform
    finally:
        await close_platform(platform)
        await _drop(target, services)


def _key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


async def test_restore_into_an_empty_installation_reproduces_the_content(platform: Platform, fresh: Platform, services: Any,
                                                                        client: httpx.AsyncClient,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """No TOWNSQUARE_BACKUP_KEY: a plaintext archive (owner-only), and one warning for it."""
    society = await _society(platform, client)
    source = Installation.of(platform)
    before = await live_digest(platform.settings, source.database_url, platform.store, source.chroma())
    assert before["files"]["count"] >= 1 and before["memories"]["count"] >= 4 and before["messages"]["count"] >= 3

    with caplog.at_level(logging.WARNING, logger="townsquare.backup"):
        made = await create_backup(source)
    unencrypted = [r for r in caplog.records if r.name == "townsquare.backup" and "unencrypted" in r.getMessage()]
    assert [r.levelno for r in unencrypted] == [logging.WARNING]
    path = archive.path_of(platform.settings, made["name"])
    assert made["digest"] == before["sha256"]  # nothing changed meanwhile: the snapshot is the live content
    assert made["encrypted"] is False and made["key_id"] is None and path.name.endswith(".tar.gz")
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert names[0] == "manifest.json" and "db/messages.copy" in names and any(n.startswith("objects/") for n in names)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # the sidecar: owner-only like the archive, and only what a listing shows (no attachment's key, type, size or hash)
    side = archive.sidecar(path)
    assert oct(side.stat().st_mode & 0o777) == "0o600"
    public = json.loads(side.read_text())
    assert public["encrypted"] is False and not {"members", "files", "memories", "database", "config"} & set(public), public
    async with platform.read() as conn:
        stored = (await conn.execute(text("SELECT storage_key, content_type FROM attachments"))).all()
    assert stored and not [k for k, _ in stored if k in side.read_text()]
    assert "image/png" not in side.read_text()
    listed = archive.summary(path)  # a listing reads the sidecar alone
    assert (listed["counts"], listed["digest"], listed["damaged"]) == (made["counts"], made["digest"], False)

    result = await restore_backup(Installation.of(fresh), path)
    assert result["digest_matches"] and result["digest"] == before
    target = Installation.of(fresh)
    assert await live_digest(fresh.settings, target.database_url, fresh.store, target.chroma()) == before

    # the restored agents act with tokens sealed by this installation's own key
    agents, _ = await registry.load_registry(fresh)
    assert {a.id for a in agents} >= set(society.agent_ids)
    assert result["agent_tokens_reissued"] == len(agents)
    # a shared memory came back whole: its vector (found by meaning) and each witness's view of it
    for agent_id in society.agent_ids:
        found = await fresh.memory.search(agent_id, "lantern parade at the harbour", k=3)
        assert "Rosa said in #general: The lantern parade goes past the harbour at nine" in [s.memory.text for s in found]

    # the event stream holds the restored log, and new events continue after it
    last = result["event_position"]
    top = await fresh.redis.xrevrange(stream_key(fresh.settings.redis_prefix), count=1)
    assert last > 0 and top[0][0] == f"{last}-1".encode()
    server = start_server(fresh.settings, services.database_url, services.redis_url)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            r = await c.post(f"/api/v10/channels/{society.general}/messages", json={"content": "back again"},
                             headers=society.human.headers)  # the restored account's token
            assert r.status_code == 200, r.text

            async def published() -> bool:
                newest = await fresh.redis.xrevrange(stream_key(fresh.settings.redis_prefix), count=1)
                return newest[0][0] == f"{last + 1}-1".encode()

            await wait_for(published)
            history = await c.get(f"/api/v10/channels/{society.general}/messages", headers=society.human.headers)
            assert [m["content"] for m in history.json()][:2] == ["back again", "the way to the harbour"]
            attachment = history.json()[1]["attachments"][0]
            assert (await c.get(attachment["url"], headers=society.human.headers)).content == PNG
    finally:
        server.stop()

    # a second restore into what now has content is refused
    with pytest.raises(InstallationNotEmpty):
        await restore_backup(Installation.of(fresh), path)


async def test_encrypted_archive_round_trip_rotation_refusals_and_no_secrets(platform: Platform, fresh: Platform, services: Any,
                                                                             client: httpx.AsyncClient, tmp_path: Path) -> None:
    """TOWNSQUARE_BACKUP_KEY=A: the archive is sealed whole; the listing (API too) says so and names
    the key; no key or a wrong one and an altered byte are refused before anything is touched;
    an installation whose keys are "B,A" (rotated) restores it, and the digests are equal. Every
    secret setting is set, and none shows in the archive's configuration, manifest or sidecar."""
    society = await _society(platform, client)
    key_a, key_b = _key(), _key()
    secrets_set: dict[str, str] = {}  # every secret setting -> its value
    needles: dict[str, str] = {}  # -> what must not appear (a URL's password)
    for name, field in Settings.model_fields.items():
        if is_secret(field):
            needles[name] = f"s3cret{secrets.token_hex(8)}"
            secrets_set[name] = f"postgresql://townsquare:{needles[name]}@db:5432/ts" if name.endswith("_url") else needles[name]
    secrets_set.update(backup_key=key_a, upload_key=_key())
    needles.update(backup_key=key_a, upload_key=secrets_set["upload_key"])
    assert {"upload_key", "metrics_token", "database_url", "backup_key"} <= set(secrets_set)
    keyed = platform.settings.model_copy(update=secrets_set)
    source = replace(Installation.of(platform), settings=keyed)  # (the live connections are the session's)
    before = await live_digest(platform.settings, source.database_url, platform.store, source.chroma())

    made = await create_backup(source)
    path = archive.path_of(platform.settings, made["name"])
    assert path.name.endswith(".tar.gz.enc") and made["encrypted"] and made["key_id"] == encryption.fingerprint(base64.urlsafe_b64decode(key_a))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    sealed = path.read_bytes()
    assert b"townsquare-backup" not in sealed and b"harbour" not in sealed  # nothing in clear, not even the manifest

    listed = (await client.get(API, headers=society.admin.headers)).json()  # the server has no key: the sidecar and header suffice
    entry = next(b for b in listed if b["name"] == made["name"])
    assert entry["encrypted"] is True and entry["key_id"] == made["key_id"] and not entry["damaged"]
    assert entry["digest"] == before["sha256"] and entry["counts"]["files"] >= 1

    # no secret anywhere: sidecar (no member list either), manifest, saved settings
    opened = tmp_path / "opened"
    opened.mkdir()
    manifest = await asyncio.to_thread(archive.extract_verified, path, opened, keyed.model_copy(update={"backup_key": f"{key_b},{key_a}"}))
    side = archive.sidecar(path).read_text()
    saved = (opened / "config" / "settings.json").read_text()
    texts = {"sidecar": side, "manifest": str(manifest), "settings.json": saved}
    for where, body in texts.items():
        leaked = [n for n, needle in needles.items() if needle in body]
        assert not leaked, (where, leaked)
    public = json.loads(side)
    assert "members" not in public and "files" not in public and public["encrypted"] is True and public["key_id"] == made["key_id"]
    assert '"upload_key": "***"' in saved and '"database_url": "postgresql://townsquare:***@db:5432/ts"' in saved

    # refused before anything is touched: no key, a wrong key, an altered byte
    async def refused(archive_path: Path, backup_key: str | None, error: type[Exception]) -> None:
        target = replace(Installation.of(fresh), settings=fresh.settings.model_copy(update={"backup_key": backup_key}))
        with pytest.raises(error):
            await restore_backup(target, archive_path)
        with pytest.raises(error):
            await verify_backup(None, archive_path, settings=target.settings)

    await refused(path, None, BackupKeyMissing)
    await refused(path, key_b, BackupKeyMissing)
    altered = bytearray(sealed)
    altered[len(altered) // 2] ^= 0x01
    tampered = path.with_name(path.name.replace("manual", "scheduled"))
    tampered.write_bytes(bytes(altered))
    try:
        await refused(tampered, f"{key_b},{key_a}", BackupDamaged)
        tampered.write_bytes(sealed[:-100])  # cut short: the last chunk is missing
        await refused(tampered, key_a, BackupDamaged)
    finally:
        archive.delete(tampered)
    async with fresh.read() as conn:
        assert (await conn.execute(text("SELECT to_regclass('users')"))).scalar() is None

    # rotated keys: B seals new backups, A still opens this one
    rotated = replace(Installation.of(fresh), settings=fresh.settings.model_copy(update={"backup_key": f"{key_b},{key_a}"}))
    result = await restore_backup(rotated, path)
    assert result["digest_matches"] and result["digest"] == before
    archive.delete(path)


async def test_admin_api_auth_names_download_and_audit(platform: Platform, client: httpx.AsyncClient, settings: Settings,
                                                     world: World) -> None:
    """`world`: the installation has content (a guild), so an API restore needs `replace`."""
    admin = await person(platform, is_admin=True)
    human = await person(platform)
    for method, url in (("GET", API), ("POST", API), ("GET", f"{API}/townsquare-20250101T000000Z-manual-abcdef.tar.gz"),
                        ("DELETE", f"{API}/townsquare-20250101T000000Z-manual-abcdef.tar.gz")):
        assert_discord_error(await client.request(method, url, headers=human.headers), 403, 50013)
    assert_discord_error(await client.get(API), 401)

    r = await client.post(API, json={"compress": False}, headers=admin.headers)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["name"].endswith(".tar") and made["kind"] == "manual" and made["counts"]["messages"] >= 0
    listed = (await client.get(API, headers=admin.headers)).json()
    assert made["name"] in [b["name"] for b in listed]

    download = await client.get(f"{API}/{made['name']}", headers=admin.headers)
    assert download.status_code == 200 and download.headers["content-type"] == "application/x-tar"
    assert download.content == (settings.resolved_backup_dir() / made["name"]).read_bytes()

    for hostile in ("...", "~root", "name with space", "secret.key", f"{made['name']}.json", f".{made['name']}.part", "townsquare-x.tar.gz",
                    "townsquare-20250101T000000Z-manual-ABCDEF.tar.gz", "a" * 150):
        for method in ("GET", "DELETE"):
            assert_discord_error(await client.request(method, f"{API}/{hostile}", headers=admin.headers), 400, 50035)
        body = {"confirm": hostile}
        assert_discord_error(await client.post(f"{API}/{hostile}/restore", json=body, headers=admin.headers), 400, 50035)
    assert_discord_error(await client.get(f"{API}/townsquare-20250101T000000Z-manual-abcdef.tar.gz", headers=admin.headers),
                         404, 10110)

    restore = f"{API}/{made['name']}/restore"
    assert_discord_error(await client.post(restore, json={"confirm": "yes"}, headers=admin.headers), 400, 50035)
    assert_discord_error(await client.post(restore, json={}, headers=admin.headers), 400, 50035)
    # the session's installation has content: restore over the API needs "replace"
    assert_discord_error(await client.post(restore, json={"confirm": made["name"]}, headers=admin.headers), 409, 130011)

    assert (await client.delete(f"{API}/{made['name']}", headers=admin.headers)).status_code == 204
    assert not (settings.resolved_backup_dir() / made["name"]).exists()
    assert_discord_error(await client.delete(f"{API}/{made['name']}", headers=admin.headers), 404, 10110)

    async with platform.read() as conn:
        logged = (await conn.execute(text("SELECT action_type, options FROM audit_log WHERE user_id = :u AND guild_id IS NULL "
                                          "AND action_type BETWEEN 230 AND 233 ORDER BY id"), {"u": admin.id})).all()
    assert [(row.action_type, row.options["backup"]) for row in logged] == [(230, made["name"]), (231, made["name"]),
                                                                            (233, made["name"])]


async def test_a_damaged_archive_is_refused_before_anything_is_touched(platform: Platform, fresh: Platform) -> None:
    made = await create_backup(Installation.of(platform), compress=False)
    path = archive.path_of(platform.settings, made["name"])
    data = bytearray(path.read_bytes())
    at = data.find(b"harbour")
    if at < 0:
        at = len(data) // 2
    data[at] ^= 0x01
    damaged = path.with_name(path.name.replace("manual", "scheduled"))
    damaged.write_bytes(bytes(data))
    try:
        from townsquare.platform.ops.errors import BackupDamaged

        with pytest.raises(BackupDamaged):
            await restore_backup(Installation.of(fresh), damaged)
        async with fresh.read() as conn:
            assert (await conn.execute(text("SELECT to_regclass('users')"))).scalar() is None  # nothing was created
    finally:
        archive.delete(damaged)
        archive.delete(path)


def _crafted_archive(folder: Path, **references: Any) -> Path:
    """A hand-made plain tar: a verified config/settings.json, and a manifest whose references
    (`references` replaces parts of it) may name anything."""
    import hashlib
    import io

    body = b"{}"
    manifest = {"format": archive.FORMAT, "version": archive.VERSION, "name": "townsquare-20300101T000000Z-manual-abcdef.tar",
                "schema_revision": "x", "database": {"tables": [], "sequences": []}, "files": [], "memories": [],
                "config": {"settings": "config/settings.json", "files": []}, "counts": {}, "digest": {},
                "members": {"config/settings.json": {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}},
                **references}
    path = folder / manifest["name"]
    with tarfile.open(path, "w") as tar:
        for member, data in (("manifest.json", json.dumps(manifest).encode()), ("config/settings.json", body)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("references", [
    {"config": {"settings": "config/settings.json", "files": ["/etc/hostname"]}},
    {"config": {"settings": "../../secret.key", "files": []}},
    {"files": [{"attachment_id": "1", "key": "k", "content_type": "text/plain", "member": "/etc/passwd"}]},
    {"memories": [{"agent_id": "1", "member": "config/settings.json", "embeddings": "memories/1.npy"}]},  # not in the archive
    {"database": {"tables": [{"name": "users", "columns": [], "rows": 0, "member": "db/../../x.copy"}], "sequences": []}},
    {"config": {"settings": ["config/settings.json"], "files": []}},
])
async def test_manifest_references_outside_the_verified_members_are_refused(tmp_path: Path, references: dict[str, Any]) -> None:
    crafted = _crafted_archive(tmp_path, **references)
    with pytest.raises(BackupDamaged):
        await verify_backup(None, crafted)


async def test_a_crafted_manifest_is_refused_before_the_restore_reads_a_file(fresh: Platform, tmp_path: Path) -> None:
    crafted = _crafted_archive(tmp_path, config={"settings": "config/settings.json", "files": ["/etc/hostname"]})
    with pytest.raises(BackupDamaged):
        await restore_backup(Installation.of(fresh), crafted)
    async with fresh.read() as conn:
        assert (await conn.execute(text("SELECT to_regclass('users')"))).scalar() is None  # nothing was created
    assert not (fresh.settings.resolved_data_dir() / "restored-config").exists()


def test_a_backup_deleted_while_listing_is_not_listed(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = settings.model_copy(update={"backup_dir": tmp_path / "backups"})
    kept = _crafted_archive(folder.resolved_backup_dir())
    gone = folder.resolved_backup_dir() / "townsquare-20300102T000000Z-scheduled-abcdef.tar"
    found = archive.backups
    monkeypatch.setattr(archive, "backups", lambda s: iter([gone, *found(s)]))  # seen by the listing, pruned before its summary
    assert [b["name"] for b in archive.list_backups(folder)] == [kept.name]


async def test_a_download_survives_a_concurrent_delete(platform: Platform, client: httpx.AsyncClient,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from townsquare.platform.api.routes import backups as routes

    admin = await person(platform, is_admin=True)
    made = await create_backup(Installation.of(platform), compress=False)
    path = archive.path_of(platform.settings, made["name"])
    content = path.read_bytes()
    audit = routes._audit

    async def delete_then_audit(*args: Any, **kwargs: Any) -> None:  # a prune or a DELETE between the check and the response
        archive.delete(path)
        await audit(*args, **kwargs)

    monkeypatch.setattr(routes, "_audit", delete_then_audit)
    r = await client.get(f"{API}/{made['name']}", headers=admin.headers)
    assert r.status_code == 200 and r.content == content  # opened before it went: served whole
    assert r.headers["content-length"] == str(len(content)) and made["name"] in r.headers["content-disposition"]
    assert_discord_error(await client.get(f"{API}/{made['name']}", headers=admin.headers), 404, 10110)


async def test_scheduled_backups_are_taken_when_due_and_pruned(platform: Platform, settings: Settings, services: Any,
                                                              tmp_path: Path) -> None:
    scheduled = settings.model_copy(update={"backup_dir": tmp_path / "backups", "backup_every_hours": 24.0, "backup_keep": 2})
    manual = await create_backup(replace(Installation.of(platform), settings=scheduled), now=datetime(2030, 1, 1, tzinfo=timezone.utc))
    t0 = datetime(2030, 1, 2, 12, tzinfo=timezone.utc)
    runs = []
    for now in (t0, t0 + timedelta(hours=1), t0 + timedelta(hours=25), t0 + timedelta(hours=26), t0 + timedelta(hours=50)):
        runs.append(await run_scheduled(scheduled, services.database_url, services.redis_url, now))
    created = [r["created"] for r in runs]
    assert [c is not None for c in created] == [True, False, True, False, True]
    assert runs[4]["pruned"] == [created[0]]  # keep 2 scheduled ones
    names = [b["name"] for b in archive.list_backups(scheduled)]
    assert names == [created[4], created[2], manual["name"]]  # newest first; the manual one is never pruned
    assert not archive.due(scheduled.model_copy(update={"backup_every_hours": 0}), t0 + timedelta(days=30))


def test_cli_create_list_restore_and_verify(settings: Settings, services: Any, tmp_path: Path) -> None:
    """The CLI in subprocesses: a backup of the session's installation, restored into a fresh one
    (embedded Chroma in its data folder), then verified against it."""
    key_a, key_b = _key(), _key()
    keys_file = tmp_path / "backup-keys"
    keys_file.write_text(f"{key_b},{key_a}\n")  # a rotation, read from a file (Docker secrets)
    base = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
            "TOWNSQUARE_BACKUP_DIR": str(tmp_path / "backups"), "TOWNSQUARE_LOG_LEVEL": "WARNING"}
    for inherited in ("TOWNSQUARE_BACKUP_KEY", "TOWNSQUARE_BACKUP_KEY_FILE"):
        base.pop(inherited, None)
    source = {**base, "TOWNSQUARE_BACKUP_KEY": key_a, "TOWNSQUARE_DATABASE_SCHEMA": settings.database_schema or "", "TOWNSQUARE_REDIS_PREFIX": settings.redis_prefix,
              "TOWNSQUARE_DATA_DIR": str(settings.data_dir), "CHROMA_URL": settings.chroma_url or ""}
    target_settings = _fresh_settings(settings, tmp_path / "fresh")
    target = {**base, "TOWNSQUARE_DATABASE_SCHEMA": target_settings.database_schema or "",
              "TOWNSQUARE_REDIS_PREFIX": target_settings.redis_prefix, "TOWNSQUARE_DATA_DIR": str(tmp_path / "fresh"),
              "CHROMA_URL": "", "TOWNSQUARE_BACKUP_KEY_FILE": str(keys_file)}

    def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "townsquare.platform.cli", "backup", *args], env=env, capture_output=True,
                              text=True, timeout=300)

    try:
        made = cli(source, "create")
        assert made.returncode == 0, made.stderr
        name = made.stdout.split()[0]
        assert archive.NAME_RE.fullmatch(name) and name.endswith(".tar.gz.enc") and "encrypted (key" in made.stdout
        listed = cli(source, "list")
        assert listed.returncode == 0 and name in listed.stdout and "encrypted key=" in listed.stdout
        wrong = cli({**base, "TOWNSQUARE_BACKUP_KEY": key_b}, "verify", name)
        assert wrong.returncode == 1 and "not among the configured" in wrong.stderr
        restored = cli(target, "restore", name, "--yes")
        assert restored.returncode == 0, restored.stderr
        assert "matches the backup" in restored.stdout
        verified = cli(target, "verify", name, "--live")
        assert verified.returncode == 0, verified.stderr + verified.stdout
        assert "matches" in verified.stdout
        again = cli(target, "restore", name, "--yes")  # content now: refused without --force
        assert again.returncode == 1 and "not empty" in again.stderr
        assert cli(target, "verify", "no-such-backup").returncode != 0
    finally:
        asyncio.run(_drop(target_settings, services))


async def test_an_event_unpublished_at_backup_time_is_not_news_after_the_restore(platform: Platform, fresh: Platform, services: Any,
                                                                                client: httpx.AsyncClient, tmp_path: Path) -> None:
    """A message committed but not yet published when the snapshot is taken (a transaction that
    started before it is still open, so the publisher may not position it yet) is in the backup
    without a position. Restored, it is history like the rest: positioned before the agents'
    group is set to the stream's end, never delivered to them as new; the next message is."""
    import asyncpg

    from townsquare.platform.events.publisher import asyncpg_dsn
    from townsquare.worker.runtime.worker import GROUP

    world = await World.create(platform, client)
    older = await asyncpg.connect(asyncpg_dsn(services.database_url))
    try:
        holding = older.transaction()
        await holding.start()
        await older.fetchval("SELECT pg_current_xact_id()")  # an xid below the message's: the publisher waits for it
        last_word = await world.send(world.alice, "the last word before the backup")
        async with platform.read() as conn:
            position = (await conn.execute(text("SELECT position FROM events WHERE type = 'MESSAGE_CREATE' AND data->>'id' = :id"),
                                           {"id": last_word["id"]})).scalar_one()
        assert position is None  # committed, not published
        made = await create_backup(replace(Installation.of(platform), settings=platform.settings.model_copy(
            update={"backup_dir": tmp_path / "backups"})))
        await holding.rollback()
    finally:
        await older.close()
    path = tmp_path / "backups" / made["name"]

    result = await restore_backup(Installation.of(fresh), path)
    last = result["event_position"]
    async with fresh.read() as conn:
        restored = (await conn.execute(text("SELECT position FROM events WHERE type = 'MESSAGE_CREATE' AND data->>'id' = :id"),
                                       {"id": last_word["id"]})).scalar_one()
        assert (await conn.execute(text("SELECT count(*) FROM events WHERE position IS NULL"))).scalar_one() == 0
    assert restored is not None and 0 < restored <= last
    key = stream_key(fresh.settings.redis_prefix)
    assert (await fresh.redis.xrevrange(key, count=1))[0][0] == f"{last}-1".encode()
    assert await fresh.redis.xreadgroup(GROUP, "restore-test", {key: ">"}, count=100) == []  # nothing new for the agents

    server = start_server(fresh.settings, services.database_url, services.redis_url)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            r = await c.post(f"/api/v10/channels/{world.general_id}/messages", json={"content": "after the restore"},
                             headers=world.bob.headers)
            assert r.status_code == 200, r.text
            after = r.json()["id"]

            async def delivered() -> list[Any]:
                return await fresh.redis.xreadgroup(GROUP, "restore-test", {key: ">"}, count=100)

            entries = (await wait_for(delivered))[0][1]
        news = [json.loads(fields[b"event"]) for _, fields in entries]
        assert [(e["type"], e["data"]["id"]) for e in news if e["type"] == "MESSAGE_CREATE"] == [("MESSAGE_CREATE", after)]
        assert all(e["position"] > last for e in news)
    finally:
        server.stop()
