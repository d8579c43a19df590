"""The repo's foundation: import names, migrations, embedded services, and the CLI."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from townsquare.platform.core.config import Settings
from townsquare.platform.db.migrate import downgrade, upgrade
from townsquare.platform.db.models import Base

from .helpers import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_stdlib_platform_is_not_shadowed() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()
    for code in ("import platform; print(platform.system())", "import townsquare.platform.api.app"):
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    for module in ("pip", "pytest"):
        done = subprocess.run([sys.executable, "-m", module, "--version"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr



def test_migrations_upgrade_from_empty_and_downgrade(services) -> None:  # type: ignore[no-untyped-def]
    schema = f"ts_migrate_{os.getpid()}"
    url = services.database_url
    upgrade(url, schema)

    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def inspect() -> tuple[list[str], list]:
        engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
        async with engine.connect() as conn:
            tables = (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY 1"), {"s": schema})).scalars().all()
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
        await engine.dispose()
        return list(tables), diff

    tables, diff = asyncio.run(inspect())
    assert {"users", "guilds", "channels", "messages", "events", "reactions", "read_states", "audit_log"} <= set(tables)
    assert diff == [], f"models and migrations disagree: {diff}"
    downgrade(url, schema)
    tables, _ = asyncio.run(inspect())
    assert tables == ["alembic_version"]

    async def drop() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()

    asyncio.run(drop())


def test_embedded_services_keep_data_across_restarts(tmp_path: Path) -> None:
    """With no DATABASE_URL / REDIS_URL: a real PostgreSQL and a real redis-server, both
    keeping their data in the data folder."""
    script = f"""
import asyncio, sys
import asyncpg, redis
from townsquare.platform.core.config import Settings
from townsquare.platform.services.embedded import resolve_services
s = Settings(data_dir={str(tmp_path)!r}, database_url=None, redis_url=None)
svc = resolve_services(s)
async def main():
    conn = await asyncpg.connect(svc.database_url.replace('+asyncpg', ''))
    await conn.execute("CREATE TABLE IF NOT EXISTS t (v text)")
    if sys.argv[1] == "write":
        await conn.execute("INSERT INTO t VALUES ('kept')")
    print("pg", await conn.fetchval("SELECT string_agg(v, ',') FROM t"))
    await conn.close()
asyncio.run(main())
r = redis.Redis.from_url(svc.redis_url)
if sys.argv[1] == "write":
    r.set("k", "kept")
    r.execute_command("BGREWRITEAOF")
    import time; time.sleep(1.5)
print("redis", r.get("k"))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    first = subprocess.run([sys.executable, "-c", script, "write"], capture_output=True, text=True, timeout=180, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "pg kept" in first.stdout and "redis b'kept'" in first.stdout
    second = subprocess.run([sys.executable, "-c", script, "read"], capture_output=True, text=True, timeout=180, env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "pg kept" in second.stdout and "redis b'kept'" in second.stdout


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not answer")


@pytest.mark.parametrize("command", ["serve"])
def test_cli_serve_against_configured_services(command: str, settings: Settings, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
           "TOWNSQUARE_DATABASE_SCHEMA": settings.database_schema or "", "TOWNSQUARE_REDIS_PREFIX": settings.redis_prefix + "cli:",
           "TOWNSQUARE_PORT": str(port), "TOWNSQUARE_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", command], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc)
        ready = httpx.get(f"http://127.0.0.1:{port}/ready").json()
        assert {name: ready["checks"][name]["status"] for name in ("postgres", "redis", "object_store")} == \
            {"postgres": "ok", "redis": "ok", "object_store": "ok"}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


class SocketWatch:
    """Samples the sockets of a process and all its descendants (Linux /proc: each process's
    socket inodes, matched against the network namespace's TCP and UDP tables) on a thread,
    keeping every remote address seen. Sampling can miss a connection that opens and closes
    between two looks; an agent society's connections (database, Redis, model, Chroma) are long-lived."""

    TABLES = ("tcp", "tcp6", "udp", "udp6")

    def __init__(self, root_pid: int, interval: float = 0.2) -> None:
        self.root_pid = root_pid
        self.interval = interval
        self.seen: dict[tuple[str, int], set[str]] = {}  # remote (address, port) -> commands that held it
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "SocketWatch":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        tree, todo = [], [self.root_pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    @staticmethod
    def _address(hex_addr: str) -> tuple[str, int]:
        import ipaddress

        host, port = hex_addr.split(":")
        raw = bytes.fromhex(host)
        # the kernel prints each 32-bit word in host (little-endian) order
        packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
        address = ipaddress.ip_address(packed)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return str(address), int(port, 16)

    def sample(self) -> None:
        for pid in self._tree():
            try:
                command = " ".join((Path("/proc") / str(pid) / "cmdline").read_text().split("\0")[1:5])
                inodes = set()
                for fd in (Path("/proc") / str(pid) / "fd").iterdir():
                    try:
                        target = os.readlink(fd)
                    except OSError:
                        continue
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
                if not inodes:
                    continue
                for table in self.TABLES:
                    for line in (Path("/proc") / str(pid) / "net" / table).read_text().splitlines()[1:]:
                        fields = line.split()
                        if fields[9] in inodes:
                            remote = self._address(fields[2])
                            if remote[1] != 0:  # listening or unconnected sockets have no peer
                                self.seen.setdefault(remote, set()).add(command)
            except OSError:
                continue  # the process ended while we looked
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def outside(self, allowed: frozenset[str] = frozenset()) -> dict[tuple[str, int], set[str]]:
        """Remote addresses that are neither loopback nor in `allowed` (configured services)."""
        import ipaddress

        return {r: cmds for r, cmds in self.seen.items() if not ipaddress.ip_address(r[0]).is_loopback and r[0] not in allowed}


class SyscallWatch:
    """Every connection a process tree attempts, however short-lived: the tree runs under
    `strace -f`, which logs each connect() and each addressed send (sendto, sendmsg, sendmmsg) of
    every process and thread, successful or not. A DNS query lasts milliseconds and a process
    may live a few seconds (an rq job): /proc sampling (SocketWatch) can miss both, the log
    cannot. `--seccomp-bpf` stops only the traced calls, so the tree runs at nearly full speed."""

    CALLS = "connect,sendto,sendmsg,sendmmsg"
    _ADDRESS = re.compile(r'sin6?_port=htons\((\d+)\).*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")')
    # where glibc asks systemd-resolved (nss-resolve) instead of sending UDP itself: a name lookup too
    RESOLVER_SOCKETS = ("/run/systemd/resolve/io.systemd.Resolve",)

    def __init__(self, log: Path) -> None:
        self.log = log

    @staticmethod
    def available() -> bool:
        return shutil.which("strace") is not None

    def command(self, argv: list[str]) -> list[str]:
        return ["strace", "-f", "-qq", "--seccomp-bpf", "-e", f"trace={self.CALLS}", "-e", "signal=none", "-s", "64",
                "-o", str(self.log), *argv]

    @staticmethod
    def traced_child(strace_pid: int) -> int:
        """The traced command's pid (signals go to it: strace itself would detach and leave)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            children = (Path("/proc") / str(strace_pid) / "task" / str(strace_pid) / "children").read_text().split()
            if children:
                return int(children[0])
            time.sleep(0.05)
        raise AssertionError("strace did not start its command")

    def destinations(self) -> dict[tuple[str, int], list[str]]:
        """(address, port) -> the log lines that name it (IPv4 and IPv6; Unix sockets have none)."""
        import ipaddress

        seen: dict[tuple[str, int], list[str]] = {}
        for line in self.log.read_text(errors="replace").splitlines():
            if any(f'sun_path="{path}"' in line for path in self.RESOLVER_SOCKETS):
                seen.setdefault(("0.0.0.0", 53), []).append(line[:200])  # counted as a DNS query
                continue
            match = self._ADDRESS.search(line)
            if match:
                address = ipaddress.ip_address(match.group(2) or match.group(3))
                if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                    address = address.ipv4_mapped
                seen.setdefault((str(address), int(match.group(1))), []).append(line[:200])
        return seen

    def outside(self) -> dict[tuple[str, int], list[str]]:
        """Anything but loopback, and any DNS query (port 53) even to a local resolver: Townsquare
        names every service by address, so resolving a name means something wants to go out."""
        import ipaddress

        return {d: lines for d, lines in self.destinations().items() if not ipaddress.ip_address(d[0]).is_loopback or d[1] == 53}


def test_syscall_watch_sees_a_dns_query_that_lasts_milliseconds(tmp_path: Path) -> None:
    """The watch itself: a child process that resolves a name (its query goes to the system's
    resolver, whether or not that answers) and a UDP datagram sent without connect() are both
    seen, although each socket lives for milliseconds."""
    if not SyscallWatch.available():
        pytest.fail("the outbound-connection watch needs strace (Debian/Ubuntu: apt-get install strace)")
    watch = SyscallWatch(tmp_path / "trace.log")
    code = ("import socket, subprocess, sys\n"
            "subprocess.run([sys.executable, '-c', 'import socket\\ntry: socket.getaddrinfo(\"townsquare-watch.invalid\", 443)\\n"
            "except OSError: pass'])\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.sendto(b'x', ('192.0.2.1', 9))\n")
    subprocess.run(watch.command([sys.executable, "-c", code]), check=True, timeout=60)
    outside = watch.outside()
    assert ("192.0.2.1", 9) in outside, watch.destinations()
    resolvers = [d for d in outside if d[1] == 53]
    resolv_conf = Path("/etc/resolv.conf")
    if resolv_conf.is_file() and "nameserver" in resolv_conf.read_text():
        assert resolvers, watch.destinations()  # the lookup asked the resolver: seen, from the grandchild


def test_up_on_embedded_defaults_survives_restart(tmp_path: Path) -> None:
    """`townsquare up` with nothing configured: prints the URL and admin login; a second start
    continues with the same data. While the first run lives (server, worker, rq worker, model and
    Chroma, an agent answering), no process of its tree connects anywhere but to loopback nor
    resolves a name: its connections are sampled (SocketWatch) and every connect() and send of
    the tree is logged by strace (SyscallWatch: short-lived DNS queries and rq job processes too)."""
    if not SyscallWatch.available():
        pytest.fail("the outbound-connection watch needs strace (Debian/Ubuntu: apt-get install strace)")
    syscalls = SyscallWatch(tmp_path / "up-trace.log")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("OLLAMA_HOST", None)
    env.pop("CHROMA_URL", None)
    for name in ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED"):  # set by this process if it loaded the embedder:
        env.pop(name, None)  # `up` must turn onnxruntime's telemetry off by itself
    model_port, memory_port = free_port(), free_port()
    env.update(TOWNSQUARE_PORT=str(port), TOWNSQUARE_DATA_DIR=str(tmp_path / "data"), TOWNSQUARE_LOG_LEVEL="WARNING",
               TOWNSQUARE_MODEL_PORT=str(model_port), TOWNSQUARE_MEMORY_PORT=str(memory_port))
    base = f"http://127.0.0.1:{port}"

    def start(traced: bool = False) -> tuple[subprocess.Popen, str, str]:
        argv = [sys.executable, "-m", "townsquare.platform.cli", "up"]
        proc = subprocess.Popen(syscalls.command(argv) if traced else argv, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        for line in proc.stdout:
            if "admin login:" in line:
                user, password = line.split("admin login:")[1].strip().split(" / ")
                # keep reading: the children write to the same pipe, and a full pipe would block them
                threading.Thread(target=proc.stdout.read, daemon=True).start()
                return proc, user, password
            if time.monotonic() > deadline:
                break
        proc.kill()
        raise AssertionError("up did not print the admin login")

    proc, user, password = start(traced=True)
    up_pid = SyscallWatch.traced_child(proc.pid)  # (proc is strace; it exits with up's status)
    watch = SocketWatch(proc.pid).__enter__()
    try:
        token = httpx.post(f"{base}/api/v10/auth/login", json={"login": user, "password": password}).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/api/v10/users/@me", headers=h).json()["townsquare_admin"] is True
        guild = httpx.post(f"{base}/api/v10/guilds", json={"name": "persisted"}, headers=h).json()
        httpx.post(f"{base}/api/v10/channels/{guild['system_channel_id']}/messages", json={"content": "still here?"}, headers=h)
        # the demo society lives: its agents exist, and one answers a human through the real bundled model
        cast = httpx.get(f"{base}/api/v10/townsquare/agents", headers=h).json()
        assert len(cast) == 5
        society = cast[0]["guild_id"]
        general = next(c for c in httpx.get(f"{base}/api/v10/guilds/{society}/channels", headers=h).json() if c["name"] == "general")
        # a question about the agent itself: the model's to answer (a greeting, or what it knows, is said without it)
        asked = httpx.post(f"{base}/api/v10/channels/{general['id']}/messages", headers=h,
                           json={"content": f"<@{cast[0]['id']}> what do you like most about baking?"}).json()
        deadline, answer = time.monotonic() + 120, None
        while answer is None and time.monotonic() < deadline:
            time.sleep(1)
            history = httpx.get(f"{base}/api/v10/channels/{general['id']}/messages?after={asked['id']}", headers=h).json()
            answer = next((m for m in history if m["author"]["id"] == cast[0]["id"]), None)
        assert answer is not None, "the mentioned agent did not answer through the bundled model"
        assert answer["content"].strip() and "error" not in answer["content"].lower()
        deadline, calls = time.monotonic() + 15, []
        # the bundled model wrote (the quality gate may have turned a candidate down: then the
        # answer is a later candidate or the plan's own line, and the call says why)
        while not any(c["outcome"] in ("ok", "rejected") for c in calls) and time.monotonic() < deadline:  # flushed every second
            time.sleep(0.5)
            calls = httpx.get(f"{base}/api/v10/townsquare/agents/{cast[0]['id']}/llm-calls", headers=h).json()
        assert any(c["outcome"] in ("ok", "rejected") and c["backend"] == "local" and c["completion_tokens"] > 0 for c in calls), calls
        assert all(c["error"].startswith("gate:") for c in calls if c["outcome"] == "rejected"), calls
        # the agent remembers being asked (its memory: the Chroma server `up` runs on the data folder)
        memories = f"{base}/api/v10/townsquare/agents/{cast[0]['id']}/memories?query=baking"
        deadline, recalled = time.monotonic() + 15, []
        while not recalled and time.monotonic() < deadline:
            time.sleep(0.5)
            recalled = [m["text"] for m in httpx.get(memories, headers=h, timeout=60).json()["memories"] if "baking" in m["text"]]
        assert recalled, "the agent did not remember the question"
        watch.sample()
        # the stack's own connections were seen (the server's to PostgreSQL, the worker's to the model) ...
        assert watch.samples > 10 and len(watch.seen) >= 3, watch.seen
        # ... and none of them leaves the machine
        assert not watch.outside(), f"outbound connections: {watch.outside()}"
    finally:
        watch.__exit__()
        os.kill(up_pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    # from start to stop, every attempt of every process (DNS queries, rq jobs, shutdown flushes)
    assert syscalls.destinations(), "strace logged no connection at all"
    assert not syscalls.outside(), f"outbound connections or DNS queries: {syscalls.outside()}"
    for stopped in (f"http://127.0.0.1:{model_port}/api/version", f"http://127.0.0.1:{memory_port}/api/v2/heartbeat"):
        with pytest.raises(httpx.HTTPError):  # the model and memory servers stopped with everything else
            httpx.get(stopped, timeout=2)
    proc, user2, password2 = start()
    try:
        assert (user2, password2) == (user, password)
        token = httpx.post(f"{base}/api/v10/auth/login", json={"login": user, "password": password}).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        history = httpx.get(f"{base}/api/v10/channels/{guild['system_channel_id']}/messages", headers=h).json()
        assert [m["content"] for m in history] == ["still here?"]
        again = httpx.get(f"{base}/api/v10/townsquare/agents", headers=h).json()
        assert [a["id"] for a in again] == [a["id"] for a in cast]  # the same society continues, not a second one
        after = httpx.get(f"{base}/api/v10/townsquare/agents/{cast[0]['id']}/memories?query=baking", headers=h, timeout=60).json()
        assert any(m["text"] in recalled for m in after["memories"])  # and its agents still remember
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0


def test_cli_serve_with_two_workers(settings: Settings, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
           "TOWNSQUARE_DATABASE_SCHEMA": settings.database_schema or "", "TOWNSQUARE_REDIS_PREFIX": settings.redis_prefix + "w:",
           "TOWNSQUARE_PORT": str(port), "TOWNSQUARE_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "serve", "--no-migrate", "--workers", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc)
        statuses = {httpx.get(f"http://127.0.0.1:{port}/ready").status_code for _ in range(10)}
        assert statuses == {200}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
