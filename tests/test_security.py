"""Security: uploads encrypted at rest (local store and S3), secrets from the environment or
`<NAME>_FILE` and never in the logs, and the security log (logins, tokens, administration and
overrides). The outbound-connection watch rides on the `up` test in test_foundation.py."""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from townsquare.platform.core.config import Settings
from townsquare.platform.core.secretbox import CHUNK, HEADER_SIZE, MAGIC, SealBroken, UploadCipher, sealed_size, unseal, upload_cipher
from townsquare.platform.db.models import Agent, Society
from townsquare.platform.services.objectstore import LocalObjectStore, S3ObjectStore

from .helpers import RunningServer, World, assert_discord_error, free_port, name, person
from . import test_attachments
from .test_attachments import make_png, minio_client, path_of, stored_files, upload
from .test_foundation import _wait_http

moto_s3 = test_attachments.moto_s3  # the S3 server fixture (moto on loopback)

API = "/api/v10"
LOGIN, LOGIN_FAILED, LOGOUT, USER_REGISTER, BOT_CREATE, TOKEN_RESET = 221, 222, 223, 220, 224, 225


def key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def text_file(marker: bytes, size: int) -> bytes:
    """Text bigger than one chunk, the marker repeated all through it."""
    return (marker + b" ") * (size // (len(marker) + 1))


# --- 1. uploads encrypted at rest -------------------------------------------------------------

async def test_upload_is_ciphertext_on_disk_and_downloads_as_sent(world: World, server: RunningServer) -> None:
    secret_text = text_file(b"the-plaintext-marker", 3 * CHUNK + 123)
    png = make_png(5, 4)
    r = await upload(world.client, world.alice, world.general_id, [("notes.txt", secret_text, "image/png"), ("p.png", png, "text/plain")])
    assert r.status_code == 200, r.text
    atts = r.json()["attachments"]
    # sniffing saw the plaintext, not the ciphertext; sizes are the plaintext's
    assert [(a["content_type"], a["size"]) for a in atts] == [("text/plain; charset=utf-8", len(secret_text)), ("image/png", len(png))]
    assert (atts[1]["width"], atts[1]["height"]) == (5, 4)
    on_disk = {p.name: p.read_bytes() for p in stored_files(server, world.general_id)}
    for att, plain in zip(atts, (secret_text, png), strict=True):
        stored = on_disk[att["id"]]
        assert stored.startswith(MAGIC) and len(stored) == sealed_size(len(plain))
        assert b"the-plaintext-marker" not in stored and b"IHDR" not in stored
        d = await world.client.get(path_of(att["url"]), headers=world.bob.headers)
        assert d.status_code == 200, d.text
        assert d.content == plain and d.headers["content-type"] == att["content_type"]
    # the key was made once, readable by the owner only
    key_file = server.platform.settings.resolved_data_dir() / "upload.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


async def test_legacy_plaintext_object_still_downloads(world: World, server: RunningServer) -> None:
    """An object written before encryption existed (no header) is served as it is."""
    r = await upload(world.client, world.alice, world.general_id, [("old.txt", b"written by an older version", "text/plain")])
    att = r.json()["attachments"][0]
    [path] = stored_files(server, world.general_id)
    path.write_bytes(b"written by an older version")  # what the old store kept
    d = await world.client.get(path_of(att["url"]), headers=world.alice.headers)
    assert d.status_code == 200 and d.content == b"written by an older version"


@pytest.mark.parametrize("damage", ["flip a ciphertext byte", "flip a header byte", "cut the last chunk", "drop a whole chunk"])
async def test_tampered_object_is_a_clean_error(world: World, server: RunningServer, damage: str) -> None:
    data = text_file(b"tamper-me", 2 * CHUNK + 10)
    r = await upload(world.client, world.alice, world.general_id, [("t.txt", data, "text/plain")])
    att = r.json()["attachments"][0]
    [path] = stored_files(server, world.general_id)
    stored = bytearray(path.read_bytes())
    if damage == "flip a ciphertext byte":
        stored[HEADER_SIZE + CHUNK + 40] ^= 0x01
    elif damage == "flip a header byte":
        stored[HEADER_SIZE - 1] ^= 0x01  # the nonce prefix: every chunk's associated data
    elif damage == "cut the last chunk":
        del stored[-(10 + 16):]
    else:
        del stored[HEADER_SIZE:HEADER_SIZE + CHUNK + 16]
    path.write_bytes(bytes(stored))
    d = await world.client.get(path_of(att["url"]), headers=world.alice.headers)
    assert d.status_code == 500
    assert d.json() == {"message": "The attachment's stored bytes failed their integrity check", "code": 130002}
    assert b"tamper-me" not in d.content


async def test_local_store_with_configured_keys_and_rotation(tmp_path: Path) -> None:
    old, new = key(), key()
    before = LocalObjectStore(tmp_path, upload_cipher(Settings(data_dir=tmp_path, upload_key=old)))
    await before.put("a/one", b"sealed with the old key", "text/plain")
    # rotation: the new key seals, the old one still opens
    after = LocalObjectStore(tmp_path, upload_cipher(Settings(data_dir=tmp_path, upload_key=f"{new},{old}")))
    await after.put("a/two", b"sealed with the new key", "text/plain")
    assert await after.get("a/one") == b"sealed with the old key"
    assert await after.get("a/two") == b"sealed with the new key"
    assert not (tmp_path / "upload.key").exists()  # a configured key: no key file made
    # without the key an object cannot be read, and says why
    stranger = LocalObjectStore(tmp_path, upload_cipher(Settings(data_dir=tmp_path, upload_key=new)))
    with pytest.raises(SealBroken, match="not configured"):
        await stranger.get("a/one")
    with pytest.raises(FileNotFoundError):
        await after.get("a/missing")
    with pytest.raises(ValueError, match="32 random bytes"):
        upload_cipher(Settings(data_dir=tmp_path, upload_key="too-short"))


def _upload_key_of(folder: str) -> str:
    from townsquare.platform.core.secretbox import upload_keys

    return base64.urlsafe_b64encode(upload_keys(Settings(data_dir=Path(folder), upload_key=None))[0]).decode()


def test_processes_starting_together_make_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(4) as pool:
        keys = set(pool.map(_upload_key_of, [str(tmp_path)] * 16))
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["upload.key"]  # no temporary file left behind


def test_cipher_round_trips_every_size_and_rejects_reordering() -> None:
    cipher = UploadCipher([os.urandom(32)])
    for size in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 5 * CHUNK + 7):
        data = os.urandom(size)
        sealed = b"".join(cipher.seal(data))
        assert len(sealed) == sealed_size(size)
        assert b"".join(cipher.open(io.BytesIO(sealed).read)) == data
    data = os.urandom(2 * CHUNK)
    sealed = b"".join(cipher.seal(data))
    first, second = sealed[HEADER_SIZE:HEADER_SIZE + CHUNK + 16], sealed[HEADER_SIZE + CHUNK + 16:]
    with pytest.raises(SealBroken):
        b"".join(cipher.open(io.BytesIO(sealed[:HEADER_SIZE] + second + first).read))
    other = b"".join(cipher.seal(os.urandom(2 * CHUNK)))  # a chunk moved in from another object
    with pytest.raises(SealBroken):
        b"".join(cipher.open(io.BytesIO(sealed[:HEADER_SIZE + CHUNK + 16] + other[HEADER_SIZE + CHUNK + 16:]).read))


async def test_s3_store_keeps_ciphertext_reads_legacy_and_detects_tampering(tmp_path: Path, moto_s3: str) -> None:
    settings = Settings(data_dir=tmp_path, s3_endpoint=moto_s3, s3_access_key="testing", s3_secret_key="testing",
                        s3_bucket=name("sec"), s3_region="us-east-1", upload_key=key())
    store = S3ObjectStore(settings, upload_cipher(settings))
    data = text_file(b"s3-plaintext-marker", CHUNK + 5000)
    await store.put("x/big", data, "text/plain")
    s3 = minio_client(moto_s3)
    obj = s3.get_object(settings.s3_bucket, "x/big")
    try:
        raw = obj.read()
    finally:
        obj.close()
        obj.release_conn()
    assert raw.startswith(MAGIC) and b"s3-plaintext-marker" not in raw and len(raw) == sealed_size(len(data))
    assert await store.get("x/big") == data
    # an object written before encryption (straight into the bucket) is read as it is
    s3.put_object(settings.s3_bucket, "x/legacy", io.BytesIO(b"legacy bytes"), 12)
    assert await store.get("x/legacy") == b"legacy bytes"
    damaged = bytearray(raw)
    damaged[-3] ^= 0x80
    s3.put_object(settings.s3_bucket, "x/big", io.BytesIO(bytes(damaged)), len(damaged))
    with pytest.raises(SealBroken):
        await store.get("x/big")
    with pytest.raises(FileNotFoundError):
        await store.get("x/none")


# --- 2. secrets from the environment or files, never shown ------------------------------------

def test_secret_settings_from_files_and_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DATABASE_URL", "REDIS_URL", "S3_SECRET_KEY", "TOWNSQUARE_S3_SECRET_KEY", "TOWNSQUARE_UPLOAD_KEY", "TOWNSQUARE_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "db").write_text("postgresql://app:db-pass-123@db:5432/townsquare\n")
    (tmp_path / "s3").write_text("s3-secret-456")
    (tmp_path / "upload").write_text("upload-key-789\r\n")
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "db"))
    monkeypatch.setenv("TOWNSQUARE_S3_SECRET_KEY_FILE", str(tmp_path / "s3"))  # the prefixed name works too
    monkeypatch.setenv("TOWNSQUARE_UPLOAD_KEY_FILE", str(tmp_path / "upload"))
    monkeypatch.setenv("TOWNSQUARE_SECRET_KEY", "fernet-key-000")
    settings = Settings()
    assert settings.database_url == "postgresql://app:db-pass-123@db:5432/townsquare"
    assert settings.s3_secret_key == "s3-secret-456" and settings.upload_key == "upload-key-789" and settings.secret_key == "fernet-key-000"
    for shown in (repr(settings), str(settings), repr(settings.redacted())):
        for secret in ("db-pass-123", "s3-secret-456", "upload-key-789", "fernet-key-000"):
            assert secret not in shown
    assert settings.redacted()["database_url"] == "postgresql://app:***@db:5432/townsquare"  # where it points still shows
    assert settings.redacted()["port"] == settings.port
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:db-pass-123@db:5432/townsquare")
    assert Settings().database_url == "postgresql://app:db-pass-123@db:5432/townsquare"  # the same in both: fine
    monkeypatch.setenv("DATABASE_URL", "postgresql://other@db/x")
    with pytest.raises(ValueError, match="both set, to different values"):
        Settings()
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="DATABASE_URL_FILE: cannot read"):
        Settings()


def test_server_logs_hold_no_secret(settings: Settings, services: Any, tmp_path: Path, moto_s3: str) -> None:
    """A real `townsquare serve` at DEBUG, secrets given as files and variables: start, a good and
    a bad login, a bot and its token reset, an upload to S3; no secret appears in its output."""
    db_password = f"pg-{os.urandom(6).hex()}"  # PostgreSQL on trust accepts (and ignores) it
    database_url = services.database_url.replace("://postgres@", f"://postgres:{db_password}@", 1)
    if db_password not in database_url:
        pytest.skip("the database URL has no user to attach a password to")
    s3_secret, upload_key, fernet = f"s3-{os.urandom(6).hex()}", key(), base64.urlsafe_b64encode(os.urandom(32)).decode()
    for file_name, value in (("db", database_url), ("s3", s3_secret), ("upload", upload_key)):
        (tmp_path / file_name).write_text(value + "\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "S3_SECRET_KEY")}
    env.update(DATABASE_URL_FILE=str(tmp_path / "db"), REDIS_URL=services.redis_url, S3_ENDPOINT=moto_s3, S3_ACCESS_KEY="testing",
               S3_SECRET_KEY_FILE=str(tmp_path / "s3"), S3_BUCKET=name("logs"), S3_REGION="us-east-1",
               TOWNSQUARE_UPLOAD_KEY_FILE=str(tmp_path / "upload"), TOWNSQUARE_SECRET_KEY=fernet,
               TOWNSQUARE_DATABASE_SCHEMA=settings.database_schema or "", TOWNSQUARE_REDIS_PREFIX=settings.redis_prefix + "logs:",
               TOWNSQUARE_PORT=str(port), TOWNSQUARE_DATA_DIR=str(tmp_path / "data"), TOWNSQUARE_LOG_LEVEL="DEBUG")
    proc = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "serve", "--no-migrate"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, b"")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    base = f"http://127.0.0.1:{port}"
    secrets_seen: list[str] = [db_password, s3_secret, upload_key, fernet]
    try:
        _wait_http(f"{base}/health", proc)
        password, wrong = f"pw-{os.urandom(6).hex()}", f"wrong-{os.urandom(6).hex()}"
        login_name = name("p")
        r = httpx.post(f"{base}{API}/auth/register", json={"username": login_name, "password": password})
        assert r.status_code == 201, r.text
        assert httpx.post(f"{base}{API}/auth/login", json={"login": login_name, "password": wrong}).status_code == 401
        token = httpx.post(f"{base}{API}/auth/login", json={"login": login_name, "password": password}).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        bot = httpx.post(f"{base}{API}/townsquare/bots", json={"username": name("b")}, headers=h).json()
        reset = httpx.post(f"{base}{API}/townsquare/bots/{bot['user']['id']}/reset-token", headers=h).json()["token"]
        guild = httpx.post(f"{base}{API}/guilds", json={"name": "logs"}, headers=h).json()
        files = {"files[0]": ("a.txt", b"uploaded over S3", "text/plain")}
        sent = httpx.post(f"{base}{API}/channels/{guild['system_channel_id']}/messages", headers=h, files=files,
                          data={"payload_json": '{"content": "file"}'})
        assert sent.status_code == 200, sent.text
        got = httpx.get(sent.json()["attachments"][0]["url"], headers=h)
        assert got.content == b"uploaded over S3"  # the server really used the keys it read from files
        secrets_seen += [password, wrong, token, bot["token"], reset]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=5)
    text = b"".join(output).decode(errors="replace")
    assert '"level": "debug"' in text or '"level":"debug"' in text, text[-2000:]  # the logs were on, at their most verbose
    for secret in secrets_seen:
        assert secret not in text, f"a secret is in the logs: {secret[:6]}..."


# --- 3. the security log ------------------------------------------------------------------------

async def security_log(world: World, admin: Any, **params: Any) -> list[dict[str, Any]]:
    r = await world.client.get(f"{API}/townsquare/security-log", params={k: str(v) for k, v in params.items()}, headers=admin.headers)
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert [int(e["id"]) for e in entries] == sorted((int(e["id"]) for e in entries), reverse=True)
    return entries


async def test_logins_logouts_and_registrations_are_logged(world: World) -> None:
    admin = await person(world.platform, is_admin=True)
    login_name, password = name("p"), "correct horse battery"
    r = await world.client.post(f"{API}/auth/register", json={"username": login_name, "password": password})
    user_id = r.json()["user"]["id"]
    assert (await world.client.post(f"{API}/auth/login", json={"login": login_name, "password": "not-the-password"})).status_code == 401
    assert (await world.client.post(f"{API}/auth/login", json={"login": "nobody-" + login_name, "password": "guess-1234"})).status_code == 401
    token = (await world.client.post(f"{API}/auth/login", json={"login": login_name.upper(), "password": password})).json()["token"]
    assert (await world.client.post(f"{API}/auth/logout", headers={"Authorization": f"Bearer {token}"})).status_code == 204

    mine = await security_log(world, admin, user_id=user_id)
    assert [e["action_type"] for e in mine] == [LOGOUT, LOGIN, LOGIN_FAILED, USER_REGISTER]
    logout, login, failed, registered = mine
    assert all(e["guild_id"] is None and e["target_id"] == user_id for e in mine)
    assert login["options"]["ip"] == "127.0.0.1" and login["action"] == "LOGIN"
    assert failed["options"] == {"login": login_name, "ip": "127.0.0.1"} and failed["reason"] == "wrong password"
    assert registered["changes"] == [{"key": "username", "new_value": login_name}]
    # a login name nobody has: logged without a user, the name tried kept, no password anywhere
    unknown = [e for e in await security_log(world, admin, action_type=LOGIN_FAILED) if e["user_id"] is None]
    assert any(e["options"]["login"] == "nobody-" + login_name and e["reason"] == "unknown login" for e in unknown)
    everything = (await world.client.get(f"{API}/townsquare/security-log?limit=100", headers=admin.headers)).text
    assert "not-the-password" not in everything and "guess-1234" not in everything and password not in everything
    # people's entries never show in a guild's audit log
    guild_log = (await world.client.get(f"{API}/guilds/{world.guild_id}/audit-logs", headers=world.owner.headers)).json()
    assert not {LOGIN, LOGIN_FAILED, LOGOUT, USER_REGISTER} & {e["action_type"] for e in guild_log["audit_log_entries"]}


async def test_bot_tokens_issued_and_reset_are_logged_and_an_agents_sealed_token_follows(world: World) -> None:
    admin = await person(world.platform, is_admin=True)
    r = await world.client.post(f"{API}/townsquare/bots", json={"username": name("b")}, headers=world.alice.headers)
    bot_id = r.json()["user"]["id"]
    r = await world.client.post(f"{API}/townsquare/bots/{bot_id}/reset-token", headers=world.alice.headers)
    new_token = r.json()["token"]
    reset, created = await security_log(world, admin, target_id=bot_id)
    assert (created["action_type"], created["user_id"]) == (BOT_CREATE, str(world.alice.id))
    assert (reset["action_type"], reset["user_id"], reset["options"]) == (TOKEN_RESET, str(world.alice.id), {"revoked": 1})
    assert new_token not in (await world.client.get(f"{API}/townsquare/security-log", headers=admin.headers)).text

    # an agent's token, reset by an administrator: the workers' sealed copy is the new token
    agent = (await world.client.post(f"{API}/townsquare/agents", headers=admin.headers, json={
        "guild_id": str(world.guild_id), "persona": {"name": name("Ag"), "bio": "Tests tokens.", "interests": ["keys"]}})).json()
    r = await world.client.post(f"{API}/townsquare/bots/{agent['id']}/reset-token", headers=admin.headers)
    assert r.status_code == 200, r.text
    async with world.platform.read() as conn:
        from sqlalchemy import select

        sealed = (await conn.execute(select(Agent.token_secret).where(Agent.id == int(agent["id"])))).scalar_one()
    assert unseal(world.platform.settings, sealed) == r.json()["token"]
    me = await world.client.get(f"{API}/users/@me", headers={"Authorization": f"Bot {r.json()['token']}"})
    assert me.json()["id"] == agent["id"]
    [entry] = await security_log(world, admin, target_id=agent["id"], action_type=TOKEN_RESET)
    assert entry["options"] == {"revoked": 1, "agent_guild_id": str(world.guild_id)}


async def test_administration_and_overrides_are_in_the_security_log(world: World) -> None:
    admin = await person(world.platform, is_admin=True)
    async with world.platform.transaction() as tx:
        await tx.conn.execute(insert(Society).values(guild_id=world.guild_id, name=name("soc"), revival_topics=[]))
    h = admin.headers
    agent = (await world.client.post(f"{API}/townsquare/agents", headers=h, json={
        "guild_id": str(world.guild_id), "persona": {"name": name("Ag"), "bio": "Audited.", "interests": ["logs"]}})).json()
    aid = agent["id"]
    await world.client.patch(f"{API}/townsquare/agents/{aid}", json={"persona": {"bio": "Changed."}}, headers=h)
    await world.client.post(f"{API}/townsquare/agents/{aid}/pause", json={"reason": "override"}, headers=h)
    await world.client.post(f"{API}/townsquare/agents/{aid}/mute", headers=h)
    posted = (await world.client.post(f"{API}/townsquare/agents/{aid}/messages", headers=h,
                                      json={"channel_id": str(world.general_id), "content": "said by the admin"})).json()
    await world.client.post(f"{API}/townsquare/societies/{world.guild_id}/pause", json={"reason": "night"}, headers=h)
    await world.client.delete(f"{API}/townsquare/agents/{aid}", headers=h)

    entries = await security_log(world, admin, guild_id=world.guild_id, user_id=admin.id)
    kinds = [e["action"] for e in reversed(entries)]
    assert kinds == ["AGENT_CREATE", "AGENT_UPDATE", "AGENT_STATE", "AGENT_STATE", "AGENT_POST", "SOCIETY_UPDATE", "AGENT_DELETE"]
    by_kind = {e["action"]: e for e in entries}
    assert by_kind["AGENT_POST"]["options"]["message_id"] == posted["id"]
    assert by_kind["SOCIETY_UPDATE"]["reason"] == "night"
    assert all(e["created_at"] for e in entries)
    # scope=platform leaves the guilds' entries out
    assert not await security_log(world, admin, scope="platform", user_id=admin.id, action_type=200)


async def test_security_log_is_for_administrators_only(world: World) -> None:
    r = await world.client.get(f"{API}/townsquare/security-log", headers=world.alice.headers)
    assert_discord_error(r, 403, 50013)
    assert (await world.client.get(f"{API}/townsquare/security-log")).status_code == 401
    admin = await person(world.platform, is_admin=True)
    bad = await world.client.get(f"{API}/townsquare/security-log?limit=0&scope=everything", headers=admin.headers)
    assert_discord_error(bad, 400, 50035)
