"""REST API benchmark: message send latency/throughput and history paging at 100k messages.

    .venv/bin/python bench/api.py [--duration 20] [--clients 20] [--rate 10] [--history-messages 100000]

Starts its own Townsquare server (uvicorn, uvloop + httptools, one process) on a free
127.0.0.1 port, in a fresh PostgreSQL schema and Redis key prefix, both dropped at the end.
DATABASE_URL / REDIS_URL are used when set, embedded services otherwise. Only loopback
traffic; every phase is bounded by --duration (plus a short warm-up that is not counted).

Phases (each measured for --duration seconds; the two "serial" baselines for --serial-duration):
  post-serial    one client posting back to back: the latency floor without concurrency.
  post-open      --clients clients, each POSTing --rate messages/s on a fixed schedule (open
                 loop); latency is measured from the *scheduled* send time, so a slow server
                 cannot hide its queueing by slowing the clients down (no coordinated omission).
  post-closed    the same clients, each posting back to back: maximum throughput.
  history-serial one client reading history pages back to back (see below).
  history-open   a channel filled with --history-messages rows (inserted directly in SQL), read
                 with GET ?limit=50&before=<random id>, --history-rate pages/s per client.
  history-closed the same reads back to back: maximum pages/s.

Each client keeps one HTTP/1.1 keep-alive connection; the client is a minimal HTTP/1.1
implementation over asyncio streams (uvloop) to keep the load generator's own CPU small,
which matters on a 2-core machine where client, server, PostgreSQL and Redis share the CPU.

Figures are printed as they come; the LAST line printed is one JSON object with everything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

REQUEST_TIMEOUT = 10.0  # seconds; a request slower than this counts as an error ("timeout")
TARGETS = {"post_p50_ms": 5.0, "post_p99_ms": 25.0, "history_p99_ms": 15.0}
EPOCH_MS = 1_420_070_400_000  # townsquare.platform.core.snowflake.EPOCH_MS

SERVER_CODE = r"""
import os, uvicorn
from townsquare.platform.api.app import create_app
from townsquare.platform.api.server import uvicorn_options
from townsquare.platform.core.config import Settings
settings = Settings()
app = create_app(settings, database_url=os.environ["DATABASE_URL"], redis_url=os.environ["REDIS_URL"])
uvicorn.run(app, host=settings.host, port=settings.port, loop="uvloop", lifespan="on", **{**uvicorn_options(settings), "timeout_graceful_shutdown": 5})
"""


def log(*parts: Any) -> None:
    print(*parts, flush=True)


# --- machine and CPU accounting ---------------------------------------------------------------

def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "nproc_available": len(os.sched_getaffinity(0))}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["mem_total_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    info["kernel"] = os.uname().release
    info["python"] = sys.version.split()[0]
    return info


def source_revision() -> dict[str, Any]:
    """The commit measured, and whether the server's code differs from it."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "platform", "migrations"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return {"commit": head or None, "server_code_modified": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "server_code_modified": None}


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int | str) -> tuple[str, list[str]]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.index("(") + 1:raw.rindex(")")], raw[raw.rindex(")") + 2:].split()


def cpu_snapshot(server_pid: int) -> dict[str, float]:
    """CPU seconds so far: the server process, this process, all of PostgreSQL (live processes
    plus what the postmaster reaped), Redis, and the whole machine (busy time over all cores).
    The server's own PostgreSQL backends are added by `Probe.measure`."""
    out = {"server": 0.0, "bench": 0.0, "postgres_all": 0.0, "redis": 0.0, "machine_busy": 0.0,
           "wall": time.monotonic()}
    me = os.getpid()
    stats: dict[int, tuple[str, list[str]]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = _proc_stat(entry.name)
            except (OSError, ValueError):
                continue
    for pid, (comm, fields) in stats.items():
        try:
            ticks = (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
            if pid == server_pid or int(fields[1]) == server_pid:  # with --workers: the worker processes too
                out["server"] += ticks
            elif pid == me:
                out["bench"] += ticks
            elif comm.startswith("postgres"):
                out["postgres_all"] += ticks
                parent = stats.get(int(fields[1]))
                if parent is None or not parent[0].startswith("postgres"):  # the postmaster: add its reaped children
                    out["postgres_all"] += (int(fields[13]) + int(fields[14])) / _TICK
            elif comm.startswith("redis-server"):
                out["redis"] += ticks
        except (ValueError, IndexError):
            continue
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        out["machine_busy"] = (sum(values) - values[3] - values[4]) / _TICK  # minus idle and iowait
    except (OSError, ValueError):
        pass
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Average cores used by each party during the interval; `others` is everything on the
    machine that is not this benchmark (other programs, and their PostgreSQL sessions)."""
    wall = max(after["wall"] - before["wall"], 1e-9)
    out = {k: round((after[k] - before[k]) / wall, 2) for k in before if k != "wall"}
    out["others"] = round(max(0.0, out["machine_busy"] - out["server"] - out["bench"] - out["postgres_ours"] - out["redis"]), 2)
    return out


def socket_peer_ports(pid: int, remote_port: int) -> set[int]:
    """Local ports of process `pid`'s TCP connections to `remote_port` (its PostgreSQL pool)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[9] in inodes and int(parts[2].rsplit(":", 1)[1], 16) == remote_port:
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


# --- a minimal HTTP/1.1 keep-alive client -------------------------------------------------------

class Http1:
    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.fixed = f"Host: {host}:{port}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (OSError, ConnectionError):
                pass
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            await self.connect()
        assert self.reader is not None and self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\n{self.fixed}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
            status = int(raw[9:12])
            length, chunked, close = None, False, False
            for line in raw.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                key = key.strip().lower()
                if key == b"content-length":
                    length = int(value)
                elif key == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif key == b"connection":
                    close = b"close" in value.lower()
            if chunked:
                parts = []
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        await self.reader.readuntil(b"\r\n")
                        break
                    parts.append(await self.reader.readexactly(size))
                    await self.reader.readexactly(2)
                data = b"".join(parts)
            elif length is not None:
                data = await self.reader.readexactly(length)
            else:
                data, close = await self.reader.read(), True
        except BaseException:
            await self.close()
            raise
        if close:
            await self.close()
        return status, data


# --- statistics -----------------------------------------------------------------------------------

def pct(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def summarize(latencies: list[float], service: list[float], duration: float, errors: dict[str, int], extra: dict[str, Any]) -> dict[str, Any]:
    lat = sorted(latencies)
    svc = sorted(service)
    r3 = lambda v: None if v is None else round(v * 1000, 3)  # noqa: E731 - seconds -> ms
    return {
        "requests": len(lat),
        "throughput_per_s": round(len(lat) / duration, 1),
        "p50_ms": r3(pct(lat, 50)), "p90_ms": r3(pct(lat, 90)), "p99_ms": r3(pct(lat, 99)), "max_ms": r3(lat[-1] if lat else None),
        "mean_ms": r3(sum(lat) / len(lat) if lat else None),
        "service_p50_ms": r3(pct(svc, 50)), "service_p99_ms": r3(pct(svc, 99)),
        "errors": dict(errors),
        **extra,
    }


def fmt(name: str, s: dict[str, Any]) -> str:
    line = (f"  {name:<15} {s['requests']:>7} req  {s['throughput_per_s']:>8.1f}/s  p50 {s['p50_ms']} ms  p90 {s['p90_ms']} ms  "
            f"p99 {s['p99_ms']} ms  max {s['max_ms']} ms")
    if s.get("offered_per_s") and s["throughput_per_s"] < 0.98 * s["offered_per_s"]:
        line += f"  (offered {s['offered_per_s']:.0f}/s: overloaded, {s.get('unsent_at_window_end', 0)} never sent)"
    if s["errors"]:
        line += f"  errors {s['errors']}"
    return line


# --- load phases ----------------------------------------------------------------------------------

async def run_phase(*, name: str, clients: list[Http1], make_request: Any, rate: float | None, warmup: float, duration: float,
                    probe: "Probe", on_response: Any = None) -> dict[str, Any]:
    """`rate` None: closed loop. Otherwise open loop at `rate` requests/s per client, the
    clients' schedules staggered evenly. Only requests *scheduled* inside the measured window
    count; the window closes `duration` s after the warm-up. Times come from perf_counter
    (uvloop's loop.time() has millisecond resolution)."""
    clock = time.perf_counter
    t0 = clock() + 0.05
    measure_from, stop_at = t0 + warmup, t0 + warmup + duration
    latencies: list[float] = []
    service: list[float] = []
    errors: dict[str, int] = {}
    late = unsent = 0
    cpu: dict[str, dict[str, Any]] = {}

    async def client_loop(index: int, conn: Http1) -> None:
        nonlocal late, unsent
        seq = 0
        interval = 1.0 / rate if rate is not None else 0.0
        next_at = t0 + index * interval / len(clients)
        while True:
            if rate is not None:
                scheduled = next_at
                if scheduled >= stop_at:
                    return
                if clock() >= stop_at:  # still behind schedule when the window closed: the rest is never sent
                    unsent += math.ceil((stop_at - scheduled) / interval)
                    return
                delay = scheduled - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.001 and scheduled >= measure_from:
                    late += 1
                next_at += interval
            else:
                scheduled = clock()
                if scheduled >= stop_at:
                    return
            method, path, body = make_request(index, seq)
            seq += 1
            sent = clock()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    status, data = await conn.request(method, path, body)
            except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                    TimeoutError) as exc:
                if scheduled >= measure_from:
                    kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
                    errors[kind] = errors.get(kind, 0) + 1
                continue
            done = clock()
            if on_response is not None:
                on_response(status, data)
            if scheduled < measure_from:
                continue
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
                continue
            latencies.append(done - max(scheduled, t0))
            service.append(done - sent)

    async def cpu_window() -> None:
        cpu["cores"] = await probe.measure(measure_from, stop_at)

    await asyncio.gather(cpu_window(), *(client_loop(i, c) for i, c in enumerate(clients)))
    drained = clock() - stop_at
    extra = {"mode": "closed" if rate is None else "open", "clients": len(clients),
             "offered_per_s": None if rate is None else rate * len(clients), "duration_s": duration,
             "late_sends": late, "unsent_at_window_end": unsent, "drain_s": round(drained, 3), "cpu_cores": cpu["cores"]}
    result = summarize(latencies, service, duration, errors, extra)
    if latencies:  # CPU per request, from the cores used over the window (open loop: includes idle polling)
        c = cpu["cores"]
        result["server_cpu_ms_per_request"] = round(c["server"] * duration / len(latencies) * 1000, 2)
        result["server_pg_cpu_ms_per_request"] = (round(c["postgres_ours"] * duration / len(latencies) * 1000, 2)
                                                  if c["server_pg_connections_seen"] else None)  # None: backends not found (socket)
    log(fmt(name, result))
    c = result["cpu_cores"]
    if latencies:
        log(f"  {'':<15} CPU per request: server process {result['server_cpu_ms_per_request']} ms, "
            f"its PostgreSQL backends {result['server_pg_cpu_ms_per_request']} ms")
    log(f"  {'':<15} cpu cores: server {c['server']}, its postgres backends {c['postgres_ours']}, redis {c['redis']}, "
        f"bench client {c['bench']}, others on the machine {c['others']} (machine busy {c['machine_busy']} of {os.cpu_count()}); "
        f"{c['server_pg_connections_seen']} server PostgreSQL connections seen")
    log(f"  {'':<15} server backends busy (mean count per sample): {c['pg_backend_states']}")
    return result


class Probe:
    """CPU accounting for a phase. The server's PostgreSQL backends are found through its
    sockets (pg_stat_activity.client_port) and sampled every `interval` s, so that backends
    that come and go during the phase (pool overflow connections) are counted too."""

    def __init__(self, server_pid: int, pg: Any, pg_port: int, interval: float = 0.2) -> None:
        self.server_pid, self.pg, self.pg_port, self.interval = server_pid, pg, pg_port, interval

    async def backends(self, waits: dict[str, int] | None = None) -> set[int]:
        """The server's backends; with `waits`, also counts what each non-idle one is doing
        (wait event, or CPU when it waits on nothing)."""
        ports = await asyncio.to_thread(socket_peer_ports, self.server_pid, self.pg_port)
        if not ports:
            return set()
        rows = await self.pg.fetch("SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity WHERE client_port = ANY($1::int[])",
                                   list(ports))
        if waits is not None:
            for r in rows:
                if r["state"] == "idle":
                    continue
                key = f"{r['wait_event_type']}:{r['wait_event']}" if r["wait_event_type"] else "CPU"
                if r["state"] == "idle in transaction":
                    key = f"idle in transaction ({key})"
                waits[key] = waits.get(key, 0) + 1
        return {r["pid"] for r in rows}

    @staticmethod
    def _ticks(pids: set[int]) -> dict[int, float]:
        out = {}
        for pid in pids:
            try:
                _, fields = _proc_stat(pid)
                out[pid] = (int(fields[11]) + int(fields[12])) / _TICK
            except (OSError, ValueError, IndexError):
                pass
        return out

    async def measure(self, start_at: float, stop_at: float) -> dict[str, Any]:
        clock = time.perf_counter
        await asyncio.sleep(max(0.0, start_at - clock()))
        pids = await self.backends()
        first = self._ticks(pids)
        last = dict(first)
        begin = await asyncio.to_thread(cpu_snapshot, self.server_pid)
        seen = set(first)
        waits: dict[str, int] = {}
        samples = 0
        while clock() < stop_at:
            await asyncio.sleep(min(self.interval, max(0.0, stop_at - clock())))
            now = self._ticks(await self.backends(waits))
            samples += 1
            seen |= set(now)
            last.update(now)
        end = await asyncio.to_thread(cpu_snapshot, self.server_pid)
        ours = sum(ticks - first.get(pid, 0.0) for pid, ticks in last.items())
        begin["postgres_ours"], end["postgres_ours"] = 0.0, ours
        out: dict[str, Any] = cpu_delta(begin, end)
        out["server_pg_connections_seen"] = len(seen)
        # mean number of the server's backends in each state at a sample (busy ones only)
        out["pg_backend_states"] = {k: round(v / max(samples, 1), 2) for k, v in sorted(waits.items(), key=lambda kv: -kv[1])}
        return out

    async def background(self, seconds: float = 1.0) -> dict[str, Any]:
        return await self.measure(time.perf_counter(), time.perf_counter() + seconds)


# --- set-up -------------------------------------------------------------------------------------

def bench_header(name: str) -> dict[str, Any]:
    """The start of every benchmark's results: its name, the machine and the source revision (logged)."""
    results: dict[str, Any] = {"bench": name, "machine": machine(), "source": source_revision()}
    m = results["machine"]
    log(f"machine: {m.get('nproc')} cpus ({m.get('cpu_model')}), {m.get('mem_total_gib')} GiB, Linux {m['kernel']}, Python {m['python']}")
    return results


def bench_services(data_dir: Path) -> Any:
    """The environment's PostgreSQL and Redis (DATABASE_URL / REDIS_URL), or embedded ones in `data_dir`."""
    from townsquare.platform.core.config import Settings
    from townsquare.platform.services.embedded import resolve_services

    return resolve_services(Settings(data_dir=data_dir / "services", database_url=os.environ.get("DATABASE_URL"),
                                     redis_url=os.environ.get("REDIS_URL")))


async def drop_bench_state(pg: Any, redis_url: str, schema: str, prefix: str) -> None:
    """Drops the run's schema (closing `pg`) and deletes its Redis keys."""
    from redis.asyncio import Redis

    try:
        await pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await pg.close()
    redis = Redis.from_url(redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(keys), 500):
            await redis.delete(*keys[i:i + 500])
    finally:
        await redis.aclose()


def stop_embedded(services: Any) -> None:
    """Stops the embedded PostgreSQL / Redis started for this run (none with configured URLs)."""
    for server in getattr(services, "_keepalive", []):
        for name in ("cleanup", "_cleanup"):
            stop = getattr(server, name, None)
            if callable(stop):
                try:
                    stop()
                except Exception as exc:  # noqa: BLE001 - best effort at exit
                    log(f"could not stop an embedded service: {exc!r}")
                break


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plain_pg_dsn(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


async def wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=5) as c:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                r = await c.get("/ready")
                if r.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {timeout} s:\n{log_path.read_text()[-4000:]}")
            await asyncio.sleep(0.1)


async def create_world(url: str, settings: Any, database_url: str, redis_url: str, n_bots: int) -> dict[str, Any]:
    """A person and a guild over HTTP; the bots and their memberships through the action layer."""
    from townsquare.platform.actions import guilds, users
    from townsquare.platform.api.app import build_platform, close_platform

    tag = secrets.token_hex(3)
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        r = await c.post("/api/v10/auth/register", json={"username": f"bench_owner_{tag}", "password": "bench password 123"})
        assert r.status_code == 201, r.text
        owner_token = r.json()["token"]
        owner = {"Authorization": f"Bearer {owner_token}"}
        r = await c.post("/api/v10/guilds", json={"name": "Bench society"}, headers=owner)
        assert r.status_code == 201, r.text
        guild = r.json()
        r = await c.post(f"/api/v10/guilds/{guild['id']}/channels", json={"name": "history"}, headers=owner)
        assert r.status_code == 201, r.text
        history_channel = int(r.json()["id"])
    platform = await build_platform(settings, database_url, redis_url)
    bots: list[tuple[int, str]] = []
    try:
        for i in range(n_bots):
            row, token = await users.do_create_bot(platform, owner_id=None, username=f"bench_bot_{tag}_{i}")
            async with platform.transaction() as tx:
                await guilds.add_member(tx, int(guild["id"]), row.id)
            bots.append((row.id, token))
    finally:
        await close_platform(platform)
    return {"guild_id": int(guild["id"]), "general_id": int(guild["system_channel_id"]), "history_id": history_channel,
            "owner_token": owner_token, "bots": bots}


async def fill_history(conn: Any, channel_id: int, guild_id: int, author_ids: list[int], count: int) -> dict[str, Any]:
    """`count` messages over the last 30 days with snowflake ids (one per ~26 ms at 100k),
    authors in turn, one in 20 mentioning a user (to exercise that branch of the page query)."""
    started = time.monotonic()
    now_ms = int(time.time() * 1000) - 60_000
    span_ms = 30 * 86_400_000
    step_ms = max(1, span_ms // max(count, 1))
    start_ms = now_ms - step_ms * count
    await conn.execute(
        """
        INSERT INTO messages (id, channel_id, guild_id, author_id, type, content, mentions)
        SELECT ((($1::bigint + g * $2::bigint) - $3::bigint) << 22) | (g % 4096),
               $4::bigint, $5::bigint, ($6::bigint[])[1 + g % $7], 0,
               CASE WHEN g % 20 = 0 THEN '<@' || ($6::bigint[])[1 + (g + 1) % $7] || '> ' ELSE '' END
                 || 'history message ' || g || ' about ' || md5(g::text),
               CASE WHEN g % 20 = 0 THEN ARRAY[($6::bigint[])[1 + (g + 1) % $7]] ELSE '{}'::bigint[] END
        FROM generate_series(1, $8::int) AS g
        """,
        start_ms, step_ms, EPOCH_MS, channel_id, guild_id, author_ids, len(author_ids), count,
    )
    lo, hi = await conn.fetchrow("SELECT min(id), max(id) FROM messages WHERE channel_id = $1", channel_id)
    await conn.execute("UPDATE channels SET last_message_id = $1, message_count = $2 WHERE id = $3", hi, count, channel_id)
    inserted = time.monotonic() - started
    await conn.execute("VACUUM (ANALYZE) messages")
    await conn.execute("ANALYZE channels")
    await conn.execute("ANALYZE users")
    return {"messages": count, "min_id": lo, "max_id": hi, "insert_s": round(inserted, 2),
            "total_s": round(time.monotonic() - started, 2)}


async def wait_published(conn: Any, timeout: float = 10.0) -> float | None:
    """Seconds until the event publisher has positioned every event row (None: not in time)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await conn.fetchval("SELECT count(*) FROM events WHERE position IS NULL") == 0:
            return round(time.monotonic() - started, 3)
        await asyncio.sleep(0.05)
    return None


# --- main -------------------------------------------------------------------------------------

async def main(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    from townsquare.platform.core.config import Settings
    from townsquare.platform.db.migrate import upgrade

    began = time.monotonic()
    results: dict[str, Any] = bench_header("api")

    tmp = tempfile.TemporaryDirectory(prefix="townsquare-bench-")
    data_dir = Path(tmp.name)
    services = bench_services(data_dir)
    database_url, redis_url = services.database_url, services.redis_url
    embedded = not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
    tag = secrets.token_hex(4)
    schema, prefix = f"ts_bench_{tag}", f"ts:bench:{tag}:"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(data_dir=data_dir / "app", database_url=database_url, redis_url=redis_url, database_schema=schema,
                        redis_prefix=prefix, rate_limit_scale=args.rate_limit_scale, log_level="WARNING",
                        host="127.0.0.1", port=port)
    results["config"] = {"workers": args.workers,
        "duration_s": args.duration, "warmup_s": args.warmup, "clients": args.clients, "post_rate_per_client": args.rate,
        "history_rate_per_client": args.history_rate, "history_messages": args.history_messages, "page_limit": args.page_limit,
        "rate_limit_scale": args.rate_limit_scale, "embedded_services": embedded, "schema": schema,
        "database_pool_size": args.pool_size or settings.database_pool_size,
    }
    log(f"services: {'embedded' if embedded else 'configured'}; schema {schema}, redis prefix {prefix}")

    pg = await asyncpg.connect(plain_pg_dsn(database_url), server_settings={"search_path": schema, "application_name": "townsquare-bench"})
    proc: subprocess.Popen[bytes] | None = None
    server_log = data_dir / "server.log"
    try:
        results["postgres_version"] = await pg.fetchval("SHOW server_version")
        results["postgres_settings"] = dict(await pg.fetch(
            "SELECT name, setting FROM pg_settings WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'max_connections')"))
        t = time.monotonic()
        upgrade(database_url, schema)
        log(f"migrated schema in {time.monotonic() - t:.1f} s")

        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "TOWNSQUARE_DATABASE_SCHEMA": schema,
               "TOWNSQUARE_REDIS_PREFIX": prefix, "TOWNSQUARE_HOST": "127.0.0.1", "TOWNSQUARE_PORT": str(port),
               "TOWNSQUARE_PUBLIC_URL": url, "TOWNSQUARE_RATE_LIMIT_SCALE": str(args.rate_limit_scale),
               "TOWNSQUARE_LOG_LEVEL": "WARNING", "TOWNSQUARE_DATA_DIR": str(data_dir / "app"), "PYTHONUNBUFFERED": "1"}
        if args.pool_size:
            env["TOWNSQUARE_DATABASE_POOL_SIZE"] = str(args.pool_size)
        # cwd outside the repo: with the repo root on sys.path, its platform/ folder would
        # shadow the standard library's `platform` module.
        command = [sys.executable, "-c", SERVER_CODE]
        if args.workers > 1:  # the supervisor and its workers; PostgreSQL CPU "ours" then counts the supervisor's sockets only
            command = [sys.executable, "-m", "townsquare.platform.cli", "serve", "--no-migrate", "--workers", str(args.workers)]
        with open(server_log, "wb") as out:
            proc = subprocess.Popen(command, env=env, cwd=str(data_dir), stdout=out, stderr=subprocess.STDOUT)
        await wait_ready(url, proc, server_log)
        log(f"server pid {proc.pid} ready at {url}")
        probe = Probe(proc.pid, pg, urlsplit(plain_pg_dsn(database_url)).port or 5432)
        idle = await probe.background(1.0)
        results["background_cpu_cores_before"] = idle
        log(f"background load before the run: {idle['others']} cores used by other programs")

        t = time.monotonic()
        world = await create_world(url, settings, database_url, redis_url, args.clients)
        log(f"world: guild {world['guild_id']}, {len(world['bots'])} bots as members ({time.monotonic() - t:.1f} s)")

        def clients_for() -> list[Http1]:
            return [Http1("127.0.0.1", port, {"Authorization": f"Bot {token}"}) for _, token in world["bots"]]

        # --- phase 1: post -------------------------------------------------------------------
        general = world["general_id"]
        post_path = f"/api/v10/channels/{general}/messages"
        filler = "The quick brown fox jumps over the lazy dog while the agents discuss the harvest."

        def post_request(letter: str) -> Any:
            def make(index: int, seq: int) -> tuple[str, str, bytes]:
                return "POST", post_path, orjson.dumps({"content": f"{filler} #{seq}", "nonce": f"{letter}{index}-{seq}"})
            return make

        ok_posts = 0

        def count_post(status: int, _data: bytes) -> None:
            nonlocal ok_posts
            ok_posts += status == 200

        log(f"\nphase 1: post — POST {post_path}")
        post_clients = clients_for()
        if args.serial_duration > 0:
            results["post_serial"] = await run_phase(name="post-serial", clients=post_clients[:1], make_request=post_request("s"),
                                                     rate=None, warmup=min(args.warmup, 1.0), duration=args.serial_duration,
                                                     on_response=count_post, probe=probe)
        log(f"  {args.clients} clients")
        results["post_open"] = await run_phase(name="post-open", clients=post_clients, make_request=post_request("o"), rate=args.rate,
                                               warmup=args.warmup, duration=args.duration, on_response=count_post, probe=probe)
        results["post_open"]["events_published_after_s"] = await wait_published(pg)
        results["post_closed"] = await run_phase(name="post-closed", clients=post_clients, make_request=post_request("c"), rate=None,
                                                 warmup=args.warmup, duration=args.duration, on_response=count_post, probe=probe)
        results["post_closed"]["events_published_after_s"] = await wait_published(pg)
        for c in post_clients:
            await c.close()
        stored, newest = await pg.fetchrow("SELECT count(*), max(id) FROM messages WHERE channel_id = $1", general)
        last_id, count_col = await pg.fetchrow("SELECT last_message_id, message_count FROM channels WHERE id = $1", general)
        results["post_check"] = {"ok_responses": ok_posts, "rows_in_channel": stored, "consistent": stored == ok_posts,
                                 "channel_message_count": count_col, "channel_last_message_id_is_newest": last_id == newest}
        log(f"  check: {ok_posts} posts answered 200, {stored} rows in the channel; channels.message_count {count_col}; "
            f"channels.last_message_id {'is' if last_id == newest else 'is NOT'} the newest message id")

        # --- phase 2: history ----------------------------------------------------------------
        log(f"\nphase 2: history — filling a channel with {args.history_messages:,} messages")
        author_ids = [bot_id for bot_id, _ in world["bots"]]
        fill = await fill_history(pg, world["history_id"], world["guild_id"], author_ids, args.history_messages)
        results["history_fill"] = fill
        log(f"  inserted in {fill['insert_s']} s (with VACUUM ANALYZE: {fill['total_s']} s)")
        hist_path = f"/api/v10/channels/{world['history_id']}/messages?limit={args.page_limit}&before="
        lo, hi = fill["min_id"], fill["max_id"] + 1
        rng = random.Random(7)

        def history_request(index: int, seq: int) -> tuple[str, str, bytes | None]:
            return "GET", hist_path + str(rng.randint(lo, hi)), None

        page = {"sampled": 0, "bytes": 0, "bad": 0}

        def check_page(status: int, data: bytes) -> None:
            if status != 200:
                return
            page["bytes"] += len(data)
            page["sampled"] += 1
            if page["sampled"] % 20 == 1:  # parse a sample: keep the client's CPU low
                items = orjson.loads(data)
                page["messages_parsed"] = page.get("messages_parsed", 0) + len(items)
                page["pages_parsed"] = page.get("pages_parsed", 0) + 1
                if any(int(a["id"]) <= int(b["id"]) for a, b in zip(items, items[1:])):
                    page["bad"] += 1

        log(f"  GET {hist_path}<random>")
        hist_clients = clients_for()
        if args.serial_duration > 0:
            results["history_serial"] = await run_phase(name="history-serial", clients=hist_clients[:1], make_request=history_request,
                                                        rate=None, warmup=min(args.warmup, 1.0), duration=args.serial_duration,
                                                        on_response=check_page, probe=probe)
        log(f"  {args.clients} clients")
        results["history_open"] = await run_phase(name="history-open", clients=hist_clients, make_request=history_request,
                                                  rate=args.history_rate, warmup=args.warmup, duration=args.duration,
                                                  on_response=check_page, probe=probe)
        results["history_closed"] = await run_phase(name="history-closed", clients=hist_clients, make_request=history_request,
                                                    rate=None, warmup=args.warmup, duration=args.duration,
                                                    on_response=check_page, probe=probe)
        for c in hist_clients:
            await c.close()
        results["history_pages"] = {
            "mean_messages_per_page": round(page.get("messages_parsed", 0) / max(page.get("pages_parsed", 0), 1), 1),
            "mean_bytes_per_page": round(page["bytes"] / max(page["sampled"], 1)),
            "misordered_pages": page["bad"],
        }
        log(f"  pages: {results['history_pages']}")
    finally:
        t = time.monotonic()
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        await drop_bench_state(pg, redis_url, schema, prefix)
        log(f"\ncleaned up (schema dropped, redis keys deleted) in {time.monotonic() - t:.1f} s")
        if proc is not None and proc.returncode not in (0, None, -signal.SIGINT):
            log(f"server exited with {proc.returncode}; last log lines:\n{server_log.read_text()[-2000:]}")
        stop_embedded(services)
        tmp.cleanup()

    po, pc, ho, hc = results["post_open"], results["post_closed"], results["history_open"], results["history_closed"]

    def verdict(value: float | None, target: float) -> dict[str, Any]:
        return {"value_ms": value, "target_ms": target, "met": value is not None and value <= target}

    results["targets"] = {
        # the targets are judged on the open-loop runs (a fixed offered load); the closed-loop
        # runs measure saturation, where latency is concurrency / throughput by Little's law
        "post_p50": {**verdict(po["p50_ms"], TARGETS["post_p50_ms"]), "closed_loop_ms": pc["p50_ms"]},
        "post_p99": {**verdict(po["p99_ms"], TARGETS["post_p99_ms"]), "closed_loop_ms": pc["p99_ms"]},
        "history_p99": {**verdict(ho["p99_ms"], TARGETS["history_p99_ms"]), "closed_loop_ms": hc["p99_ms"]},
    }
    results["all_targets_met"] = all(v["met"] for v in results["targets"].values())
    results["total_s"] = round(time.monotonic() - began, 1)
    log("\nfigure                              measured      target   met")
    rows = [
        (f"POST p50 (open loop, {po['offered_per_s']:.0f}/s)", po["p50_ms"], TARGETS["post_p50_ms"]),
        (f"POST p99 (open loop, {po['offered_per_s']:.0f}/s)", po["p99_ms"], TARGETS["post_p99_ms"]),
        ("POST p50 (closed loop)", pc["p50_ms"], TARGETS["post_p50_ms"]),
        ("POST p99 (closed loop)", pc["p99_ms"], TARGETS["post_p99_ms"]),
        (f"history p99 (open loop, {ho['offered_per_s']:.0f}/s)", ho["p99_ms"], TARGETS["history_p99_ms"]),
        ("history p99 (closed loop)", hc["p99_ms"], TARGETS["history_p99_ms"]),
    ]
    for label, value, target in rows:
        met = "yes" if value is not None and value <= target else "NO"
        log(f"{label:<34} {value if value is not None else '-':>9} ms  <= {target:>4} ms  {met}")
    for key, label in (("post_serial", "POST p50, one client"), ("history_serial", "history p50, one client")):
        if key in results:
            log(f"{label:<34} {results[key]['p50_ms']:>9} ms  (p99 {results[key]['p99_ms']} ms, {results[key]['throughput_per_s']}/s)")
    log(f"POST max throughput (closed loop)  {pc['throughput_per_s']:>9} /s")
    log(f"history max pages/s (closed loop)  {hc['throughput_per_s']:>9} /s")
    log(f"total {results['total_s']} s")
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per phase (4 phases; default 20)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each phase (default 2)")
    p.add_argument("--serial-duration", type=float, default=5.0,
                   help="seconds of a one-client closed-loop baseline before the post and the history phases (0: skip; default 5)")
    p.add_argument("--clients", type=int, default=20, help="concurrent clients, one bot and one connection each (default 20)")
    p.add_argument("--rate", type=float, default=10.0, help="open-loop POSTs per second per client (default 10)")
    p.add_argument("--history-rate", type=float, default=10.0, help="open-loop history pages per second per client (default 10)")
    p.add_argument("--history-messages", type=int, default=100_000, help="messages in the history channel (default 100000)")
    p.add_argument("--page-limit", type=int, default=50, help="history page size (default 50)")
    p.add_argument("--workers", type=int, default=1, help="server processes (townsquare serve --workers N; default 1)")
    p.add_argument("--pool-size", type=int, default=0, help="server's TOWNSQUARE_DATABASE_POOL_SIZE (default: the server's default)")
    p.add_argument("--rate-limit-scale", type=float, default=1_000_000.0, help="TOWNSQUARE_RATE_LIMIT_SCALE for the server")
    args = p.parse_args(argv)
    if args.duration <= 0 or args.duration > 60 or args.warmup < 0 or args.warmup > 10 or not 0 <= args.serial_duration <= 30:
        p.error("--duration must be in (0, 60], --warmup in [0, 10] and --serial-duration in [0, 30] (the run stays bounded)")
    if not 1 <= args.clients <= 200 or args.rate <= 0 or args.history_rate <= 0:
        p.error("--clients must be 1-200 and the rates positive")
    if not 1000 <= args.history_messages <= 2_000_000 or not 1 <= args.page_limit <= 100:
        p.error("--history-messages must be 1000-2000000 and --page-limit 1-100")
    return args


def run_bench(main: Any, args: argparse.Namespace) -> int:
    """Runs a benchmark's `main(args)` on uvloop and prints its results as the last line."""
    try:
        import uvloop

        results = uvloop.run(main(args))
    except ImportError:  # pragma: no cover
        results = asyncio.run(main(args))
    print(json.dumps(results, default=str), flush=True)
    return 0


def run(argv: list[str] | None = None) -> int:
    return run_bench(main, parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
