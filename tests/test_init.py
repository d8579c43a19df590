"""`townsquare init` in subprocesses, each test on an installation of its own (a fresh PostgreSQL
schema, Redis prefix and data folder): a second run changes nothing; the administrator's password
from TOWNSQUARE_ADMIN_PASSWORD_FILE logs in over the API (through the real `serve`) and is never
printed; a changed one resets it (security log, old sessions ended); bad settings fail clearly;
`serve` believes X-Forwarded-For only from the proxies it is told to trust."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.helpers import free_port, wait_healthy
from townsquare.platform.actions.audit import A
from townsquare.platform.core.config import Settings

TABLES = ("users", "tokens", "guilds", "roles", "members", "channels", "audit_log", "events", "societies", "agents")


@dataclass
class Installation:
    env: dict[str, str]
    schema: str
    database_url: str
    data_dir: Path

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "townsquare.platform.cli", *args], env={**self.env, **extra},
                              capture_output=True, text=True, timeout=300)

    def query(self, sql: str, **params: Any) -> list[Any]:
        async def run() -> list[Any]:
            engine = create_async_engine(self.database_url)
            try:
                async with engine.connect() as conn:
                    await conn.execute(text(f'SET search_path TO "{self.schema}"'))
                    return list((await conn.execute(text(sql), params)).all())
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def snapshot(self) -> dict[str, Any]:
        """Row counts of what init touches, and the accounts' passwords and tokens as stored."""
        counts = {t: self.query(f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
        accounts = self.query("SELECT id, username, password_hash, is_admin FROM users ORDER BY id")
        tokens = self.query("SELECT id, revoked_at FROM tokens ORDER BY id")
        return {"counts": counts, "accounts": accounts, "tokens": tokens}


@pytest.fixture
def installation(settings: Settings, services: Any, tmp_path: Path) -> Iterator[Installation]:
    tag = secrets.token_hex(4)
    schema, prefix = f"ts_init_{tag}", f"ts:init:{tag}:"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNSQUARE_ADMIN_")}
    env.update(DATABASE_URL=services.database_url, REDIS_URL=services.redis_url, TOWNSQUARE_DATABASE_SCHEMA=schema,
               TOWNSQUARE_REDIS_PREFIX=prefix, TOWNSQUARE_DATA_DIR=str(tmp_path / "data"), CHROMA_URL=settings.chroma_url or "",
               TOWNSQUARE_LOG_LEVEL="WARNING", TOWNSQUARE_RATE_LIMIT_SCALE="1000")
    yield Installation(env, schema, services.database_url, tmp_path / "data")

    async def drop() -> None:
        engine = create_async_engine(services.database_url)
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()
        from redis.asyncio import Redis

        redis = Redis.from_url(services.redis_url)
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

    asyncio.run(drop())


class Served:
    """`townsquare serve` on an installation, in a subprocess."""

    def __init__(self, inst: Installation, *args: str, **extra: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "serve", "--no-migrate", *args],
                                     env={**inst.env, "TOWNSQUARE_PORT": str(port), **extra},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def __enter__(self) -> Served:
        try:
            wait_healthy(self.url, self.proc, 120)
        except AssertionError:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: Any) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def login(self, username: str, password: str, **headers: str) -> httpx.Response:
        return httpx.post(f"{self.url}/api/v10/auth/login", json={"login": username, "password": password}, headers=headers, timeout=30)


def test_init_twice_creates_once_then_changes_nothing(installation: Installation) -> None:
    first = installation.cli("init")
    assert first.returncode == 0, first.stderr
    creds = installation.data_dir / "admin-credentials"
    username, password = creds.read_text().split()
    assert username == "admin" and oct(creds.stat().st_mode & 0o777) == "0o600"
    # the generated password is shown on this terminal, once; the society is seeded
    assert f"administrator admin: created, password {password}" in first.stdout
    assert "society village: guild " in first.stdout and "(seeded)" in first.stdout
    guild = first.stdout.split("society village: guild ")[1].split()[0]
    before = installation.snapshot()
    assert before["counts"]["agents"] == 5 and before["counts"]["societies"] == 1
    assert [a.username for a in before["accounts"] if a.is_admin] == ["admin"]

    second = installation.cli("init")
    assert second.returncode == 0, second.stderr
    assert password not in second.stdout + second.stderr  # generated once, shown once
    assert "administrator admin: exists" in second.stdout and f"society village: guild {guild} (exists)" in second.stdout
    assert installation.snapshot() == before
    assert creds.read_text().split() == [username, password]


def test_admin_password_file_logs_in_and_is_never_printed(installation: Installation, tmp_path: Path) -> None:
    secret_file = tmp_path / "admin_password"
    password = secrets.token_urlsafe(18)
    secret_file.write_text(password + "\n")  # as an installer writes it: the final newline is not part of it
    done = installation.cli("init", "--no-society", TOWNSQUARE_ADMIN_PASSWORD_FILE=str(secret_file), TOWNSQUARE_ADMIN_USERNAME="root")
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout + done.stderr
    assert "administrator root: created with the password of TOWNSQUARE_ADMIN_PASSWORD" in done.stdout
    assert "society" not in done.stdout and installation.snapshot()["counts"]["societies"] == 0
    assert not (installation.data_dir / "admin-credentials").exists()  # nothing generated, nothing kept
    with Served(installation) as served:
        r = served.login("root", password)
        assert r.status_code == 200, r.text
        me = httpx.get(f"{served.url}/api/v10/users/@me", headers={"Authorization": f"Bearer {r.json()['token']}"}).json()
        assert me["username"] == "root" and me["townsquare_admin"] is True
        assert served.login("root", password + "x").status_code == 401
    again = installation.cli("init", "--no-society", TOWNSQUARE_ADMIN_PASSWORD_FILE=str(secret_file), TOWNSQUARE_ADMIN_USERNAME="root")
    assert again.returncode == 0 and "administrator root: exists" in again.stdout and password not in again.stdout


def test_a_changed_password_resets_it_security_logged_and_ends_sessions(installation: Installation, tmp_path: Path) -> None:
    old, new = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    assert installation.cli("init", "--no-society", TOWNSQUARE_ADMIN_PASSWORD=old).returncode == 0
    with Served(installation) as served:
        session = {"Authorization": f"Bearer {served.login('admin', old).json()['token']}"}
        assert httpx.get(f"{served.url}/api/v10/users/@me", headers=session).status_code == 200
        secret_file = tmp_path / "admin_password"
        secret_file.write_text(new)
        reset = installation.cli("init", "--no-society", TOWNSQUARE_ADMIN_PASSWORD_FILE=str(secret_file))
        assert reset.returncode == 0, reset.stderr
        assert "administrator admin: password reset to TOWNSQUARE_ADMIN_PASSWORD" in reset.stdout
        assert old not in reset.stdout + reset.stderr and new not in reset.stdout + reset.stderr
        assert served.login("admin", old).status_code == 401
        # the session opened with the old password is over (the running server learns it from the event stream)
        deadline = time.monotonic() + 30
        while httpx.get(f"{served.url}/api/v10/users/@me", headers=session).status_code != 401:
            assert time.monotonic() < deadline, "the old session still works"
            time.sleep(0.2)
        r = served.login("admin", new)
        assert r.status_code == 200, r.text
        admin = {"Authorization": f"Bearer {r.json()['token']}"}
        log = httpx.get(f"{served.url}/api/v10/townsquare/security-log", params={"action_type": int(A.PASSWORD_RESET)}, headers=admin).json()
        [entry] = log["entries"]
        assert entry["action"] == "PASSWORD_RESET" and entry["user_id"] is None and entry["options"] == {"revoked": 2}  # the login's session and the one registering issued
        assert entry["target_id"] == httpx.get(f"{served.url}/api/v10/users/@me", headers=admin).json()["id"]
        assert "TOWNSQUARE_ADMIN_PASSWORD" in entry["reason"] and old not in str(entry) and new not in str(entry)
    # the same password again: nothing to reset, nothing logged
    before = installation.snapshot()
    same = installation.cli("init", "--no-society", TOWNSQUARE_ADMIN_PASSWORD_FILE=str(secret_file))
    assert same.returncode == 0 and "administrator admin: exists" in same.stdout
    assert installation.snapshot() == before


def test_bad_admin_settings_fail_before_anything_is_written(installation: Installation) -> None:
    short = installation.cli("init", "--no-society", TOWNSQUARE_ADMIN_PASSWORD="short")
    assert short.returncode == 1 and "TOWNSQUARE_ADMIN_PASSWORD must be 8-128 characters long" in short.stderr
    assert "short" not in short.stdout and "Traceback" not in short.stderr
    assert installation.query("SELECT count(*) FROM users")[0][0] == 0
    named = installation.cli("init", "--no-society", TOWNSQUARE_ADMIN_USERNAME="no spaces")
    assert named.returncode == 1 and "TOWNSQUARE_ADMIN_USERNAME must be 2-32 characters" in named.stderr
    assert installation.query("SELECT count(*) FROM users")[0][0] == 0
    # an existing account that is not an administrator is not promoted (nor its password changed)
    assert installation.cli("init", "--no-society").returncode == 0
    with Served(installation) as served:
        r = httpx.post(f"{served.url}/api/v10/auth/register", json={"username": "mallory", "password": "mallory-pw-1"})
        assert r.status_code in (200, 201), r.text
    before = installation.snapshot()
    taken = installation.cli("init", "--no-society", TOWNSQUARE_ADMIN_USERNAME="mallory", TOWNSQUARE_ADMIN_PASSWORD="another-pw-2")
    assert taken.returncode == 1 and "'mallory' exists and is not an administrator" in taken.stderr
    assert installation.snapshot() == before


def test_serve_believes_forwarded_addresses_only_from_trusted_proxies(installation: Installation) -> None:
    password = secrets.token_urlsafe(12)
    assert installation.cli("init", "--no-society", TOWNSQUARE_ADMIN_PASSWORD=password).returncode == 0
    forwarded = {"X-Forwarded-For": "203.0.113.7"}

    def last_login_ip(served: Served) -> str:
        r = served.login("admin", password, **forwarded)
        assert r.status_code == 200, r.text
        h = {"Authorization": f"Bearer {r.json()['token']}"}
        entries = httpx.get(f"{served.url}/api/v10/townsquare/security-log", params={"action_type": int(A.LOGIN)}, headers=h).json()
        return entries["entries"][0]["options"]["ip"]

    with Served(installation, "--forwarded-allow-ips", "127.0.0.1") as served:  # the proxy is us: its header is believed
        assert last_login_ip(served) == "203.0.113.7"
    with Served(installation, TOWNSQUARE_FORWARDED_ALLOW_IPS="10.9.9.9") as served:  # we are no trusted proxy: the header is ignored
        assert last_login_ip(served) == "127.0.0.1"
    with Served(installation) as served:  # by default no proxy is trusted, not even one on loopback
        assert last_login_ip(served) == "127.0.0.1"
