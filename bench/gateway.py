"""Real-time gateway benchmark: REST sends fanned out over the WebSocket gateway to 1,000 clients.

    .venv/bin/python bench/gateway.py [--duration 20] [--clients 1000] [--rate 20] [--channels 10] [--senders 4]
    .venv/bin/python bench/gateway.py --storm-only     # only the connect storm (about 20 s)

Starts its own Townsquare server (uvicorn, uvloop + httptools, one process) on a free 127.0.0.1
port, in a fresh PostgreSQL schema and Redis key prefix, both dropped at the end (DATABASE_URL /
REDIS_URL when set, embedded services otherwise). Loopback traffic only; every phase is bounded.

Set-up: one guild with --channels text channels, every one visible to @everyone; --clients +
--senders bot users, inserted in bulk with SQL (users, tokens as stored by
platform/actions/users.py: only the SHA-256 of each token; members), all members of the guild.
Each client opens ws://127.0.0.1:PORT/gateway?v=10&encoding=json and IDENTIFYs with intents
GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT (--connect-concurrency at a time), then waits for READY
and the guild's GUILD_CREATE; it heartbeats as the protocol asks. Every client sees every
channel, so each message is one delivery per client: deliveries = messages x clients.

Both servers run side by side, each with its own fleet of --clients clients (the bare server
relays frames, so the idle fleet costs nothing). Phases:
  storm     (Townsquare, before the others, with a fleet of its own over the same bots) what a
            restarted server goes through: --clients clients connect and IDENTIFY at once
            (--storm-concurrency at a time, default all), each until READY and the guild's
            GUILD_CREATE; the time until the last one has it is the connect-storm figure (target
            under 3 s for 1,000 clients). Then every connection is cut at once (TCP abort, no
            close handshake), --storm-missed messages are posted meanwhile, and every client
            RESUMEs at once, until RESUMED (each replays every missed message, counted). Reports
            per-client percentiles, GUILD_CREATE size and the CPU of each party during each storm.
  rate      --senders senders post at a fixed total --rate messages/s (open loop, evenly
            staggered), round-robin over the channels, for --duration s after --warmup s;
            Townsquare first, then the bare server. Townsquare: POST
            /api/v10/channels/{id}/messages (Authorization: Bot <token>), every message
            persisted. Bare: each sender has a WebSocket to the bare server, which relays each
            frame to every client with websockets.broadcast() (no parsing, no storage, no
            per-connection task). The bare frames are Townsquare's MESSAGE_CREATE dispatch of
            this run with the marker replaced (same size, same shape).
  saturate  --saturate-senders sender connections (over the same bots) as fast as the system
            delivers: a new message is sent only while fewer than --window messages are still
            undelivered to some client (closed loop). This keeps every session's queue below
            --window frames, so the server's backpressure (close 4000 at 2,048 queued frames)
            never triggers, and measures the maximum sustained deliveries/s. It runs in
            --saturate-rounds rounds per server (1 s warm-up + --saturate-duration/rounds s
            each), alternating Townsquare / bare, so that a background load that comes and goes
            on a shared machine weighs on both alike. More sender connections than --senders,
            so that the POST round trip of a busy server does not bound the rate instead (with
            16 connections and a window of 50, both servers measured about 10% lower: fewer
            frames are queued per session, so less is batched per wake-up).

Clients (--client): "task" (default) is the websockets.asyncio client, one reader task per
client; "callback" drives websockets' sans-I/O ClientProtocol from an asyncio.Protocol and
counts each frame in data_received, without a task switch per frame: about a third less client
CPU per delivery at a fixed rate, which on a 2-core machine leaves more CPU to the servers.

Each message's content starts with "gwb:<seq>:<send time, perf_counter_ns>;" (the *scheduled*
send time in the rate phase, so a sender that falls behind cannot hide it). A client finds it
with one bytes.find() -- no JSON parsing -- and records receive time - send time for every
(message, client) delivery: latency percentiles are over all deliveries of the messages sent in
the measured window. After each phase the script waits (bounded) until every message is
delivered to every client and counts losses and duplicates. It also reports, per message, the
latency to the first client and the spread between the first and the last client (fan-out time).

CPU per party for each measured window, from /proc: the server process (with --workers, the
supervisor and its workers), its PostgreSQL backends (found through its sockets), Redis, this
bench process (clients + senders), the other server under test (idle meanwhile), and everything
else on the machine. Shares these helpers (and Http1, its minimal HTTP/1.1 client) with bench/api.py.

--profile-dir DIR runs `py-spy record --nonblocking` (binary from --py-spy, default `py-spy` on
PATH) on the Townsquare server during each measured window and leaves collapsed stacks in DIR.

Figures are printed as they come; the LAST line printed is one JSON object with everything.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import os
import random
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri


sys.path.insert(0, str(Path(__file__).parent))  # bench/api.py holds the helpers every benchmark shares
import api as _api  # noqa: E402

log, machine, source_revision, pct = _api.log, _api.machine, _api.source_revision, _api.pct
Http1, Probe, free_port, plain_pg_dsn, wait_ready, stop_embedded = (_api.Http1, _api.Probe, _api.free_port, _api.plain_pg_dsn,
                                                                      _api.wait_ready, _api.stop_embedded)

INTENTS = 1 | 512 | 32768  # GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT
MARK = b"gwb:"
FILLER = "The quick brown fox jumps over the lazy dog while the agents discuss the harvest."
TARGETS = {"saturated_share_of_bare": 0.5, "rate_p99_ms": 50.0, "connect_storm_s": 3.0}
POST_TIMEOUT = 10.0

_NOFILE = r"""
import resource
def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 16
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
raise_nofile()
"""

SERVER_CODE = _NOFILE + r"""
import os, uvicorn
from townsquare.platform.api.app import create_app
from townsquare.platform.api.server import uvicorn_options
from townsquare.platform.core.config import Settings
settings = Settings()
app = create_app(settings, database_url=os.environ["DATABASE_URL"], redis_url=os.environ["REDIS_URL"])
uvicorn.run(app, host=settings.host, port=settings.port, loop="uvloop", lifespan="on", **{**uvicorn_options(settings), "timeout_graceful_shutdown": 5}, backlog=4096)
"""

# The ceiling: relays every frame a publisher sends to every subscriber, with one
# websockets.broadcast() call (frame encoded once, written to each transport, no task per
# connection, no parsing). argv: port, compression ("deflate" or "none").
BARE_CODE = _NOFILE + r"""
import sys, uvloop
from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

subscribers = set()

async def handler(ws):
    if ws.request.path.startswith("/publish"):
        try:
            while True:
                broadcast(subscribers, await ws.recv(decode=False), text=True)
        except ConnectionClosed:
            return
    subscribers.add(ws)
    try:
        await ws.wait_closed()
    finally:
        subscribers.discard(ws)

async def main():
    compression = None if sys.argv[2] == "none" else sys.argv[2]
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), max_size=2**24, compression=compression, backlog=4096) as server:
        await server.serve_forever()

uvloop.run(main())
"""


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 16
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ms(ns: float | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


def lat_summary(values: list[int]) -> dict[str, Any]:
    """Percentiles of a list of nanosecond durations, in milliseconds."""
    v = sorted(values)
    return {"n": len(v), "p50_ms": ms(pct(v, 50)), "p90_ms": ms(pct(v, 90)), "p99_ms": ms(pct(v, 99)),
            "p999_ms": ms(pct(v, 99.9)), "max_ms": ms(v[-1] if v else None), "mean_ms": ms(sum(v) / len(v) if v else None)}


# --- the client harness -------------------------------------------------------------------------

class Tally:
    """Shared by every reader. Per message (index = seq): deliveries, first and completing
    delivery time, send time. Per phase: the measured window [lo, hi) in perf_counter_ns, the
    latencies of messages sent in it, and the deliveries received in it."""

    def __init__(self) -> None:
        self.counts: list[int] = []
        self.first: list[int] = []
        self.last: list[int] = []
        self.sent_at: list[int] = []
        self.full = 0  # clients that must receive each message of the current phase
        self.completed = 0  # messages delivered to `full` clients, over the whole run
        self.total = 0  # deliveries, over the whole run
        self.in_window = 0
        self.lo = self.hi = 0
        self.lat: list[int] = []
        self.progress = asyncio.Event()
        self.sample: bytes | None = None

    def new_message(self, sent_at: int) -> int:
        self.counts.append(0)
        self.first.append(0)
        self.last.append(0)
        self.sent_at.append(sent_at)
        return len(self.counts) - 1


class CallbackConn(asyncio.Protocol):
    """--client callback: websockets' sans-I/O ClientProtocol driven from data_received, so a
    frame is counted in the transport's callback, with no task switch per frame (the cheapest
    correct client the library allows; it still answers pings and closes properly)."""

    def __init__(self, fleet: Fleet, url: str) -> None:
        loop = asyncio.get_running_loop()
        self.fleet = fleet
        self.proto = ClientProtocol(parse_uri(url), max_size=2**24,
                                    extensions=enable_client_permessage_deflate(None) if fleet.compression else None)
        self.opened: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.setup: asyncio.Queue[bytes] | None = asyncio.Queue()  # frames before the client is counted
        self.transport: asyncio.Transport | None = None
        self.adopted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.proto.send_request(self.proto.connect())
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.proto.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def data_received(self, data: bytes) -> None:
        p = self.proto
        p.receive_data(data)
        for ev in p.events_received():
            if isinstance(ev, Frame):
                if ev.opcode is Opcode.TEXT or ev.opcode is Opcode.BINARY:
                    if self.setup is not None:
                        self.setup.put_nowait(bytes(ev.data))
                    else:
                        self.fleet.count(ev.data)
            elif not self.opened.done():
                if p.handshake_exc is not None:
                    self.opened.set_exception(p.handshake_exc)
                else:
                    self.opened.set_result(None)
        self._flush()
        if p.close_expected() and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.proto.receive_eof()
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
        if self.setup is not None:
            self.setup.put_nowait(b"")
        if self.adopted:
            self.fleet.open -= 1
            if not self.fleet.closing:
                code = str(self.proto.close_rcvd.code if self.proto.close_rcvd else 1006)
                self.fleet.closed_codes[code] = self.fleet.closed_codes.get(code, 0) + 1
        if not self.lost.done():
            self.lost.set_result(None)

    # the client interface shared with TaskConn
    async def recv_setup(self) -> bytes:
        assert self.setup is not None
        raw = await self.setup.get()
        if not raw:
            raise ConnectionError("closed during IDENTIFY")
        return raw

    async def send(self, text: str) -> None:
        self.proto.send_text(text.encode())
        self._flush()

    def start(self) -> None:
        self.setup = None
        self.adopted = True

    async def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        with contextlib.suppress(Exception):
            self.proto.send_close(1000)
            self._flush()
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), 2.0)
        except TimeoutError:
            self.transport.abort()


class TaskConn:
    """--client task (default): a websockets.asyncio ClientConnection and one reader task."""

    def __init__(self, fleet: Fleet, ws: ClientConnection) -> None:
        self.fleet, self.ws = fleet, ws
        self.task: asyncio.Task[None] | None = None

    async def recv_setup(self) -> bytes:
        return await self.ws.recv(decode=False)

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    def start(self) -> None:
        self.task = asyncio.create_task(self._reader())

    async def _reader(self) -> None:
        recv, count = self.ws.recv, self.fleet.count
        try:
            while True:
                count(await recv(decode=False))
        except ConnectionClosed as exc:
            if not self.fleet.closing:
                code = str(exc.rcvd.code if exc.rcvd else exc.sent.code if exc.sent else 1006)
                self.fleet.closed_codes[code] = self.fleet.closed_codes.get(code, 0) + 1
        finally:
            self.fleet.open -= 1

    async def close(self) -> None:
        await self.ws.close()
        if self.task is not None:
            with contextlib.suppress(BaseException):
                await self.task


def abort_connection(conn: Any) -> None:
    """Cuts a client's TCP connection without a close handshake (both client kinds)."""
    transport = conn.transport if isinstance(conn, CallbackConn) else conn.ws.transport
    if transport is not None:
        transport.abort()


class Fleet:
    """C WebSocket clients (and, for Townsquare, one heartbeat task each)."""

    def __init__(self, tally: Tally, *, compression: str | None, mode: str, server_pid: int | None = None) -> None:
        self.server_pid = server_pid  # for the CPU figures of the storms
        self.tally = tally
        self.compression = compression
        self.mode = mode
        self.conns: list[Any] = []
        self.beats: list[asyncio.Task[None]] = []
        self.open = 0
        self.closed_codes: dict[str, int] = {}
        self.other_frames = 0
        self.connect_errors: dict[str, int] = {}
        self.closing = False

    def count(self, raw: bytes, clock: Any = time.perf_counter_ns) -> None:
        """The per-frame work of a client: one bytes.find, no JSON parsing."""
        i = raw.find(MARK)
        if i < 0:
            self.other_frames += 1
            return
        now = clock()
        t = self.tally
        a, b = raw[i + 4:raw.find(b";", i)].split(b":")
        seq, sent = int(a), int(b)
        c = t.counts[seq] + 1
        t.counts[seq] = c
        t.total += 1
        if c == 1:
            t.first[seq] = now
        if c == t.full:
            t.last[seq] = now
            t.completed += 1
            t.progress.set()
        if t.lo <= sent < t.hi:
            t.lat.append(now - sent)
        if t.lo <= now < t.hi:
            t.in_window += 1
        if t.sample is None:
            t.sample = bytes(raw)

    async def _connect(self, url: str) -> Any:
        if self.mode == "task":
            ws = await connect(url, max_size=2**24, ping_interval=None, compression=self.compression, open_timeout=60,
                               close_timeout=2)
            return TaskConn(self, ws)
        parts = urlsplit(url)
        _, conn = await asyncio.get_running_loop().create_connection(lambda: CallbackConn(self, url), parts.hostname, parts.port)
        try:
            await asyncio.wait_for(conn.opened, 60)
        except BaseException:
            assert conn.transport is not None
            conn.transport.abort()
            raise
        return conn

    @staticmethod
    async def _heartbeat(conn: Any, interval: float) -> None:
        await asyncio.sleep(random.uniform(0.1, interval))  # jittered first beat, as Discord asks
        while True:
            await conn.send('{"op":1,"d":null}')
            await asyncio.sleep(interval)

    async def _identify(self, conn: Any, token: str, guild_id: str, session: dict[str, Any] | None = None) -> tuple[float, int]:
        """HELLO, IDENTIFY, then frames until READY and the guild's GUILD_CREATE. `session`, when
        given, is filled with the session id and the last sequence number (for a RESUME)."""
        hello = orjson.loads(await conn.recv_setup())
        assert hello["op"] == 10, hello
        await conn.send(orjson.dumps({"op": 2, "d": {"token": token, "intents": INTENTS,
                                                     "properties": {"os": "linux", "browser": "bench", "device": "bench"}}}).decode())
        ready = False
        guild_bytes = 0
        while not (ready and guild_bytes):
            raw = await conn.recv_setup()
            frame = orjson.loads(raw)
            if session is not None and frame.get("s") is not None:
                session["seq"] = frame["s"]
            if frame["op"] == 0 and frame["t"] == "READY":
                ready = True
                if session is not None:
                    session["session_id"] = frame["d"]["session_id"]
            elif frame["op"] == 0 and frame["t"] == "GUILD_CREATE" and frame["d"]["id"] == guild_id:
                guild_bytes = len(raw)
            elif frame["op"] == 9:
                raise RuntimeError("INVALID_SESSION")
        return hello["d"]["heartbeat_interval"] / 1000, guild_bytes

    @staticmethod
    async def _resume(conn: Any, token: str, session: dict[str, Any], expect: int) -> tuple[int, int]:
        """HELLO, RESUME, then frames until RESUMED and `expect` MESSAGE_CREATEs (the missed
        messages: replayed before RESUMED, or live after it if the server had not read them
        yet); returns (messages received, distinct messages)."""
        hello = orjson.loads(await conn.recv_setup())
        assert hello["op"] == 10, hello
        await conn.send(orjson.dumps({"op": 6, "d": {"token": token, "session_id": session["session_id"], "seq": session["seq"]}}).decode())
        resumed, ids = False, []
        while not (resumed and len(ids) >= expect):
            frame = orjson.loads(await conn.recv_setup())
            if frame.get("s") is not None:
                session["seq"] = frame["s"]
            if frame["op"] == 9:
                raise RuntimeError("INVALID_SESSION")
            if frame["op"] == 0 and frame["t"] == "RESUMED":
                resumed = True
            elif frame["op"] == 0 and frame["t"] == "MESSAGE_CREATE":
                ids.append(frame["d"]["id"])
        return len(ids), len(set(ids))

    async def storm(self, url: str, tokens: list[str], guild_id: str, concurrency: int,
                    profile: tuple[str, int, Path, bool] | None = None, post_missed: Any = None) -> dict[str, Any]:
        """The reconnect storm of a restarted server, twice: every client IDENTIFYs at once
        (`concurrency` at a time) until READY and the guild's GUILD_CREATE; then every connection
        is cut at once (no close handshake), `post_missed()` posts the messages they miss
        meanwhile (it returns how many were accepted), and every client RESUMEs at once until
        RESUMED, each replaying what it missed."""
        out: dict[str, Any] = {}
        sessions: list[dict[str, Any]] = [{} for _ in tokens]
        conns: list[Any] = [None] * len(tokens)
        for kind in ("identify", "resume"):
            sem = asyncio.Semaphore(concurrency)
            times: list[float] = []
            sizes: list[int] = []
            errors: dict[str, int] = {}
            replayed = [0, 0]  # missed messages received, distinct per client (summed)

            async def one(i: int, kind: str = kind, sem: asyncio.Semaphore = sem, times: list[float] = times, sizes: list[int] = sizes,
                          errors: dict[str, int] = errors, replayed: list[int] = replayed, missed: int = 0) -> None:
                async with sem:
                    begin = time.perf_counter()
                    conn = None
                    try:
                        conn = await self._connect(url)
                        if kind == "identify":
                            sizes.append((await self._identify(conn, tokens[i], guild_id, sessions[i]))[1])
                        else:
                            got, distinct = await asyncio.wait_for(self._resume(conn, tokens[i], sessions[i], missed), 120)
                            replayed[0] += got
                            replayed[1] += distinct
                        times.append(time.perf_counter() - begin)
                        conns[i] = conn
                    except Exception as exc:  # noqa: BLE001 - counted
                        errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                        conns[i] = None
                        if conn is not None:
                            with contextlib.suppress(Exception):
                                await conn.close()

            missed = 0
            if kind == "resume":
                for conn in conns:  # what a server killed under its clients leaves them with
                    if conn is not None:
                        abort_connection(conn)
                await asyncio.sleep(0.2)
                if post_missed is not None:
                    missed = await post_missed()
                    await asyncio.sleep(0.5)  # published and read by the server's hub
            spy = None
            if profile is not None:  # py-spy writes its stacks on SIGINT
                py_spy, pid, folder, children = profile
                spy = await asyncio.create_subprocess_exec(
                    py_spy, "record", "--pid", str(pid), "--rate", "200", "--nonblocking", *(["--subprocesses"] if children else []),
                    "--format", "raw", "--output", str(folder / f"townsquare-storm-{kind}.txt"),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                await asyncio.sleep(0.5)
            before = _api.cpu_snapshot(self.server_pid) if self.server_pid else None
            started = time.perf_counter()
            await asyncio.gather(*(one(i, missed=missed) for i in range(len(tokens)) if kind == "identify" or sessions[i].get("session_id")))
            took = time.perf_counter() - started
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                await spy.wait()
            r: dict[str, Any] = {"clients": len(times), "wanted": len(tokens), "concurrency": concurrency, "total_s": round(took, 2),
                                 "per_s": round(len(times) / took, 1), "errors": errors}
            r.update({k: v for k, v in lat_summary([int(x * 1e9) for x in times]).items() if k != "n"})
            if before is not None:
                after = _api.cpu_snapshot(self.server_pid)
                before["postgres_ours"] = after["postgres_ours"] = 0.0
                r["cpu_cores"] = {k: v for k, v in _api.cpu_delta(before, after).items() if k != "postgres_ours"}
            if sizes:
                r["guild_create_bytes_mean"] = round(sum(sizes) / len(sizes))
            if kind == "resume":
                r.update(missed_messages=missed, replayed_dispatches=replayed[0], distinct_replayed=replayed[1],
                         expected_replayed=missed * len(times))
            out[kind] = r
            log(f"  {kind} storm: {r['clients']}/{r['wanted']} clients in {r['total_s']} s ({r['per_s']}/s; per client p50 {r['p50_ms']} ms, "
                f"p99 {r['p99_ms']} ms{', GUILD_CREATE ' + str(r['guild_create_bytes_mean']) + ' bytes' if sizes else ''})"
                f"{'; replayed ' + str(replayed[0]) + ' dispatches of ' + str(missed) + ' missed messages' if kind == 'resume' else ''}"
                f"{'; errors ' + str(errors) if errors else ''}")
            await asyncio.sleep(1.0)  # let the server settle (the cut sessions' ends, presences) between the storms
        for i in range(0, len(conns), 200):
            await asyncio.gather(*(c.close() for c in conns[i:i + 200] if c is not None), return_exceptions=True)
        return out

    async def connect_all(self, n: int, concurrency: int, *, townsquare: tuple[str, list[str], str] | None = None,
                          bare_url: str | None = None) -> dict[str, Any]:
        """Opens n clients, `concurrency` handshakes (+ IDENTIFY until GUILD_CREATE) at a time."""
        sem = asyncio.Semaphore(concurrency)
        times: list[float] = []
        sizes: list[int] = []
        started = time.perf_counter()
        progress_at = [started + 5.0]

        async def one(i: int) -> None:
            async with sem:
                begin = time.perf_counter()
                conn = None
                try:
                    conn = await self._connect(townsquare[0] if townsquare is not None else bare_url)  # type: ignore[arg-type]
                    heartbeat = None
                    if townsquare is not None:
                        interval, size = await self._identify(conn, townsquare[1][i], townsquare[2])
                        heartbeat = interval * 0.9  # well inside the server's timeout (1.5 x heartbeat_interval)
                        sizes.append(size)
                    times.append(time.perf_counter() - begin)
                    self.conns.append(conn)
                    self.open += 1
                    conn.start()
                    if heartbeat:
                        self.beats.append(asyncio.create_task(self._heartbeat(conn, heartbeat)))
                except Exception as exc:  # noqa: BLE001 - counted; the run goes on with the clients that connected
                    kind = type(exc).__name__
                    self.connect_errors[kind] = self.connect_errors.get(kind, 0) + 1
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.close()
                now = time.perf_counter()
                if now >= progress_at[0]:
                    progress_at[0] = now + 5.0
                    log(f"    {len(times)}/{n} connected after {now - started:.1f} s")

        await asyncio.gather(*(one(i) for i in range(n)))
        took = time.perf_counter() - started
        out: dict[str, Any] = {"clients": self.open, "wanted": n, "concurrency": concurrency, "total_s": round(took, 2),
                               "connects_per_s": round(len(times) / took, 1), "errors": dict(self.connect_errors)}
        out.update({k: v for k, v in lat_summary([int(x * 1e9) for x in times]).items() if k != "n"})
        if sizes:
            out["guild_create_bytes_mean"] = round(sum(sizes) / len(sizes))
        return out

    async def close(self) -> None:
        self.closing = True
        for task in self.beats:
            task.cancel()
        for i in range(0, len(self.conns), 200):
            await asyncio.gather(*(c.close() for c in self.conns[i:i + 200]), return_exceptions=True)
        await asyncio.gather(*self.beats, return_exceptions=True)


# --- senders ------------------------------------------------------------------------------------

class RestSenders:
    """Townsquare: one keep-alive HTTP/1.1 connection per sender bot."""

    def __init__(self, port: int, tokens: list[str], channel_ids: list[int], n: int) -> None:
        self.conns = [Http1("127.0.0.1", port, {"Authorization": f"Bot {tokens[k % len(tokens)]}"}) for k in range(n)]
        self.paths = [f"/api/v10/channels/{cid}/messages" for cid in channel_ids]

    async def send(self, k: int, seq: int, sent_at: int) -> str | None:
        """None when the message was accepted, else an error kind."""
        body = orjson.dumps({"content": f"gwb:{seq}:{sent_at};{FILLER}"})
        try:
            async with asyncio.timeout(POST_TIMEOUT):
                status, _ = await self.conns[k].request("POST", self.paths[seq % len(self.paths)], body)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
            return "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return None if status == 200 else str(status)

    async def close(self) -> None:
        for c in self.conns:
            await c.close()


class BareSenders:
    """The bare server: one WebSocket per sender; each frame is a Townsquare MESSAGE_CREATE
    dispatch of this run with the marker replaced (same size, same shape)."""

    def __init__(self, url: str, n: int, template: bytes) -> None:
        self.url, self.n = url, n
        i = template.find(MARK)
        self.prefix, self.suffix = template[:i], template[template.find(b";", i):]
        self.conns: list[ClientConnection] = []

    async def open(self) -> None:
        self.conns = [await connect(self.url, max_size=2**24, ping_interval=None, compression=None, close_timeout=2)
                      for _ in range(self.n)]

    def frame(self, seq: int, sent_at: int) -> bytes:
        return b"%sgwb:%d:%d%s" % (self.prefix, seq, sent_at, self.suffix)

    async def send(self, k: int, seq: int, sent_at: int) -> str | None:
        try:
            await self.conns[k].send(self.frame(seq, sent_at), text=True)
        except ConnectionClosed:
            return "closed"
        return None

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.conns), return_exceptions=True)


def synthetic_template() -> bytes:
    """Used only when no Townsquare frame was captured (--skip-townsquare)."""
    d = {"id": "1" * 19, "channel_id": "1" * 19, "guild_id": "1" * 19, "content": f"gwb:0:0;{FILLER}",
         "author": {"id": "1" * 19, "username": "bench_gw_bot_0", "global_name": None, "avatar": None, "bot": True},
         "pad": "x" * 600}
    return b'{"op":0,"t":"MESSAGE_CREATE","s":65536,"d":' + orjson.dumps(d) + b"}"


# --- a phase ------------------------------------------------------------------------------------

async def run_phase(label: str, *, tally: Tally, fleet: Fleet, senders: Any, n_senders: int, rate: float | None, window: int,
                    warmup: float, duration: float, probe: Any, profile: tuple[str, int, Path, bool] | None,
                    idle_pid: int | None = None, drain_timeout: float = 30.0) -> dict[str, Any]:
    """`rate` messages/s in total (open loop), or None: closed loop bounded by `window`
    undelivered messages. Returns the phase's figures."""
    clock = time.perf_counter_ns
    t = tally
    t0 = clock() + 50_000_000
    lo, hi = t0 + int(warmup * 1e9), t0 + int((warmup + duration) * 1e9)
    first_seq = len(t.counts)
    t.full = fleet.open
    t.lat = []
    t.in_window = 0
    t.lo, t.hi = lo, hi
    completed0 = t.completed
    errors: dict[str, int] = {}
    failed: set[int] = set()
    service: list[int] = []  # sender-side send time (POST round trip for Townsquare)
    late = unsent = stalls = 0
    cpu: dict[str, Any] = {}
    issued = [0]

    def outstanding() -> int:
        return issued[0] - len(failed) - (t.completed - completed0)

    async def send_one(k: int, sent_at: int) -> None:
        seq = t.new_message(sent_at)
        issued[0] += 1
        begin = clock()
        err = await senders.send(k, seq, sent_at)
        if sent_at >= lo:
            service.append(clock() - begin)
        if err is not None:
            failed.add(seq)
            if lo <= sent_at < hi:
                errors[err] = errors.get(err, 0) + 1
            t.progress.set()

    async def open_loop(k: int) -> None:
        nonlocal late, unsent
        assert rate is not None
        interval = int(n_senders * 1e9 / rate)
        next_at = t0 + int(k * 1e9 / rate)
        while True:
            scheduled = next_at
            if scheduled >= hi:
                return
            now = clock()
            if now >= hi:  # behind schedule when the window closed: the rest is never sent
                unsent += -(-(hi - scheduled) // interval)
                return
            if scheduled > now:
                await asyncio.sleep((scheduled - now) / 1e9)
            elif now - scheduled > 1_000_000 and scheduled >= lo:
                late += 1
            next_at += interval
            await send_one(k, scheduled)

    async def closed_loop(k: int) -> None:
        nonlocal stalls
        while clock() < hi:
            while outstanding() >= window:
                t.progress.clear()
                try:
                    await asyncio.wait_for(t.progress.wait(), 2.0)
                except TimeoutError:
                    stalls += 1  # nothing completed for 2 s (a client gone?): send anyway
                    break
                if clock() >= hi:
                    return
            await send_one(k, clock())

    async def cpu_window() -> None:
        async def idle_server() -> float | None:  # the other server under test, idle meanwhile (not "others")
            if idle_pid is None:
                return None
            await asyncio.sleep(max(0.0, (lo - clock()) / 1e9))
            first = await asyncio.to_thread(tree_ticks, idle_pid)
            await asyncio.sleep(max(0.0, (hi - clock()) / 1e9))
            return (await asyncio.to_thread(tree_ticks, idle_pid) - first) / duration

        cpu["cores"], idle = await asyncio.gather(probe.measure(lo / 1e9, hi / 1e9), idle_server())
        if idle is not None:
            cpu["cores"]["idle_other_server"] = round(idle, 2)
            cpu["cores"]["others"] = round(max(0.0, cpu["cores"]["others"] - idle), 2)

    async def monitor() -> None:
        last_total, last_at = t.total, clock()
        while True:
            await asyncio.sleep(5.0)
            now = clock()
            span = (now - last_at) / 1e9
            log(f"    +{(now - t0) / 1e9:5.1f} s  {issued[0]:>6} messages sent  {(t.total - last_total) / span:>9.0f} deliveries/s  "
                f"{outstanding():>4} undelivered  {fleet.open} clients open")
            last_total, last_at = t.total, now

    async def spy() -> None:
        if profile is None:
            return
        binary, pid, out, children = profile
        await asyncio.sleep(max(0.0, (lo - clock()) / 1e9))
        proc = await asyncio.create_subprocess_exec(
            binary, "record", "--pid", str(pid), "--duration", str(max(1, int(duration))), "--rate", "100", "--nonblocking",
            *(["--subprocesses"] if children else []), "--format", "raw", "--output", str(out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            log(f"    py-spy failed ({proc.returncode}): {err.decode()[-300:]}")

    mon = asyncio.create_task(monitor())
    loop_fn = open_loop if rate is not None else closed_loop
    await asyncio.gather(cpu_window(), spy(), *(loop_fn(k) for k in range(n_senders)))
    sent_end = clock()
    # drain: every accepted message must reach every client
    deadline = sent_end + int(drain_timeout * 1e9)
    while outstanding() > 0 and clock() < deadline and fleet.open > 0:
        await asyncio.sleep(0.02)
    drained = (clock() - sent_end) / 1e9
    mon.cancel()

    seqs = range(first_seq, len(t.counts))
    full = t.full
    ok = [s for s in seqs if s not in failed]
    in_window = [s for s in ok if lo <= t.sent_at[s] < hi]
    delivered = sum(min(t.counts[s], full) for s in ok)
    duplicates = sum(max(0, t.counts[s] - full) for s in seqs)
    first_lat = [t.first[s] - t.sent_at[s] for s in in_window if t.counts[s]]
    spread = [t.last[s] - t.first[s] for s in in_window if t.counts[s] >= full]
    result: dict[str, Any] = {
        "mode": "open" if rate is not None else "closed", "clients": full, "senders": n_senders,
        "offered_messages_per_s": rate, "window": None if rate is not None else window, "duration_s": duration, "warmup_s": warmup,
        "messages_sent_in_window": len([s for s in seqs if lo <= t.sent_at[s] < hi]),
        "messages_per_s": round(len(in_window) / duration, 1),
        "deliveries_received_in_window": t.in_window,
        "deliveries_per_s": round(t.in_window / duration, 1),
        "messages_accepted": len(ok), "deliveries_expected": len(ok) * full, "deliveries": delivered,
        "lost": len(ok) * full - delivered, "duplicates": duplicates,
        "deliveries_of_failed_sends": sum(t.counts[s] for s in failed),
        "send_errors": errors, "late_sends": late, "unsent_at_window_end": unsent, "window_stalls": stalls,
        "drain_s": round(drained, 3), "clients_closed_by_server": dict(fleet.closed_codes),
        "latency": lat_summary(t.lat),
        "first_client_latency": lat_summary(first_lat),
        "fanout_spread": lat_summary(spread),
        "sender_send_time": lat_summary(service),
        "cpu_cores": cpu.get("cores"),
        "_lat": t.lat,  # raw, for combine_rounds; popped before the JSON
    }
    c = result["cpu_cores"] or {}
    if t.in_window and c:
        result["server_cpu_us_per_delivery"] = round(c["server"] * duration / t.in_window * 1e6, 2)
        result["bench_cpu_us_per_delivery"] = round(c["bench"] * duration / t.in_window * 1e6, 2)
    lat = result["latency"]
    log(f"  {label:<22} {result['messages_per_s']:>6.1f} msg/s  {result['deliveries_per_s']:>9.1f} deliveries/s  "
        f"p50 {lat['p50_ms']} ms  p90 {lat['p90_ms']} ms  p99 {lat['p99_ms']} ms  max {lat['max_ms']} ms")
    log(f"  {'':<22} expected {result['deliveries_expected']} deliveries, got {delivered}: lost {result['lost']}, "
        f"duplicates {duplicates}; drained in {result['drain_s']} s; send errors {errors or 0}; late sends {late}, "
        f"unsent {unsent}; closed by server {result['clients_closed_by_server'] or 0}")
    log(f"  {'':<22} first client p50 {result['first_client_latency']['p50_ms']} ms / p99 {result['first_client_latency']['p99_ms']} ms; "
        f"fan-out spread first->last client p50 {result['fanout_spread']['p50_ms']} ms / p99 {result['fanout_spread']['p99_ms']} ms; "
        f"sender send time p50 {result['sender_send_time']['p50_ms']} ms / p99 {result['sender_send_time']['p99_ms']} ms")
    if c:
        log(f"  {'':<22} cpu cores: server {c['server']}, its postgres backends {c['postgres_ours']}, redis {c['redis']}, "
            f"bench {c['bench']}, idle other server {c.get('idle_other_server', '-')}, others {c['others']} "
            f"(machine busy {c['machine_busy']} of {os.cpu_count()}); "
            f"server {result.get('server_cpu_us_per_delivery')} us/delivery, bench {result.get('bench_cpu_us_per_delivery')} us/delivery")
    return result


# --- set-up -------------------------------------------------------------------------------------

def tree_ticks(pid: int) -> float:
    """CPU seconds of a process and its children (a server and its --workers)."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def new_token(user_id: int) -> str:
    """Same shape as platform/actions/users.py `_new_token`."""
    head = base64.urlsafe_b64encode(str(user_id).encode()).decode().rstrip("=")
    return f"{head}.{secrets.token_urlsafe(6)}.{secrets.token_urlsafe(27)}"


async def create_world(url: str, pg: Any, n_channels: int, n_bots: int) -> dict[str, Any]:
    """A person, a guild and its channels over HTTP; the bots, their tokens and memberships in
    three bulk INSERTs (what users.do_create_bot + guilds.add_member store, minus the
    GUILD_MEMBER_ADD events, which no session is there to receive yet)."""
    from townsquare.platform.actions.users import hash_token
    from townsquare.platform.core.snowflake import new_id

    tag = secrets.token_hex(3)
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        r = await c.post("/api/v10/auth/register", json={"username": f"bench_gw_owner_{tag}", "password": "bench password 123"})
        assert r.status_code == 201, r.text
        owner = {"Authorization": f"Bearer {r.json()['token']}"}
        r = await c.post("/api/v10/guilds", json={"name": "Gateway bench"}, headers=owner)
        assert r.status_code == 201, r.text
        guild = r.json()
        channel_ids = [int(guild["system_channel_id"])]
        for i in range(1, n_channels):
            r = await c.post(f"/api/v10/guilds/{guild['id']}/channels", json={"name": f"room-{i}"}, headers=owner)
            assert r.status_code == 201, r.text
            channel_ids.append(int(r.json()["id"]))
    user_ids = [new_id() for _ in range(n_bots)]
    tokens = [new_token(u) for u in user_ids]
    async with pg.transaction():
        await pg.execute("INSERT INTO users (id, username, bot) SELECT u, n, true FROM unnest($1::bigint[], $2::text[]) AS x(u, n)",
                         user_ids, [f"bench_gw_{tag}_{i}" for i in range(n_bots)])
        await pg.execute("INSERT INTO tokens (id, user_id, token_hash, kind) "
                         "SELECT i, u, h, 'bot' FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS x(i, u, h)",
                         [new_id() for _ in user_ids], user_ids, [hash_token(t) for t in tokens])
        await pg.execute("INSERT INTO members (guild_id, user_id) SELECT $1, u FROM unnest($2::bigint[]) AS x(u)",
                         int(guild["id"]), user_ids)
    await pg.execute("ANALYZE users")
    await pg.execute("ANALYZE tokens")
    await pg.execute("ANALYZE members")
    return {"guild_id": int(guild["id"]), "channel_ids": channel_ids, "tokens": tokens}


async def wait_port(port: int, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"bare server exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("bare server not listening") from None
            await asyncio.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def combine_rounds(label: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure for the saturate rounds of a target: sums, duration-weighted CPU, and
    latency percentiles over every delivery of every round."""
    dur = sum(r["duration_s"] for r in rounds)
    got = sum(r["deliveries_received_in_window"] for r in rounds)
    lat: list[int] = []
    for r in rounds:
        lat.extend(r.pop("_lat"))
    out: dict[str, Any] = {
        "mode": "closed", "rounds": len(rounds), "clients": rounds[0]["clients"], "senders": rounds[0]["senders"],
        "window": rounds[0]["window"], "duration_s": dur,
        "messages_per_s": round(sum(r["messages_per_s"] * r["duration_s"] for r in rounds) / dur, 1),
        "deliveries_received_in_window": got, "deliveries_per_s": round(got / dur, 1),
        **{k: sum(r[k] for r in rounds) for k in ("messages_accepted", "deliveries_expected", "deliveries", "lost", "duplicates",
                                                   "deliveries_of_failed_sends", "window_stalls")},
        "send_errors": {k: sum(r["send_errors"].get(k, 0) for r in rounds) for r0 in rounds for k in r0["send_errors"]},
        "clients_closed_by_server": rounds[-1]["clients_closed_by_server"],
        "latency": lat_summary(lat),
    }
    cpus = [(r["cpu_cores"], r["duration_s"]) for r in rounds if r.get("cpu_cores")]
    if cpus:
        keys = [k for k, v in cpus[0][0].items() if isinstance(v, (int, float))]
        out["cpu_cores"] = {k: round(sum(c[k] * d for c, d in cpus) / sum(d for _, d in cpus), 2) for k in keys}
        if got:
            out["server_cpu_us_per_delivery"] = round(sum(c["server"] * d for c, d in cpus) / got * 1e6, 2)
            out["bench_cpu_us_per_delivery"] = round(sum(c["bench"] * d for c, d in cpus) / got * 1e6, 2)
    out["per_round"] = rounds
    c = out.get("cpu_cores", {})
    log(f"  {label:<22} {out['messages_per_s']:>6.1f} msg/s  {out['deliveries_per_s']:>9.1f} deliveries/s  over {len(rounds)} rounds "
        f"({dur:g} s); p99 {out['latency']['p99_ms']} ms; lost {out['lost']}; server {c.get('server')} cores, "
        f"{out.get('server_cpu_us_per_delivery')} us/delivery; others {c.get('others')} cores")
    return out


class Target:
    """One server under test: its fleet of clients, its senders, its CPU probe."""

    def __init__(self, name: str, fleet: Fleet, probe: Any, profile_pid: int | None) -> None:
        self.name, self.fleet, self.probe, self.profile_pid = name, fleet, probe, profile_pid
        self.idle_pid: int | None = None  # the other server's process (and its children), idle during this one's phases
        self.senders: Any = None
        self.results: dict[str, Any] = {}
        self.rounds: list[dict[str, Any]] = []

    def profile(self, args: argparse.Namespace, phase: str) -> tuple[str, int, Path, bool] | None:
        if self.profile_pid is None or not args.profile_dir:
            return None
        return args.py_spy, self.profile_pid, Path(args.profile_dir) / f"{self.name}-{phase}.txt", args.workers > 1

    async def connect(self, args: argparse.Namespace, **kwargs: Any) -> None:
        log(f"\n{self.name}: connecting {args.clients} clients, {args.connect_concurrency} at a time")
        spy = None
        if self.profile_pid is not None and args.profile_dir:  # until the last client is in (py-spy writes on SIGINT)
            spy = await asyncio.create_subprocess_exec(
                args.py_spy, "record", "--pid", str(self.profile_pid), "--rate", "100", "--nonblocking",
                *(["--subprocesses"] if args.workers > 1 else []), "--format", "raw",
                "--output", str(Path(args.profile_dir) / f"{self.name}-connect.txt"), stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
        self.results["connect"] = conn = await self.fleet.connect_all(args.clients, args.connect_concurrency, **kwargs)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
        log(f"  {conn['clients']} clients connected in {conn['total_s']} s ({conn['connects_per_s']}/s; per client p50 {conn['p50_ms']} ms, "
            f"p99 {conn['p99_ms']} ms{', GUILD_CREATE ' + str(conn['guild_create_bytes_mean']) + ' bytes' if 'guild_create_bytes_mean' in conn else ''})"
            f"{'; errors ' + str(conn['errors']) if conn['errors'] else ''}")

    async def rate_phase(self, args: argparse.Namespace, tally: Tally) -> None:
        log(f"\n  {self.name} rate: {args.rate:g} msg/s over {args.senders} senders, {args.channels} channels, {self.fleet.open} clients")
        r = await run_phase(f"{self.name} rate", tally=tally, fleet=self.fleet, senders=self.senders, n_senders=args.senders,
                            rate=args.rate, window=args.window, warmup=args.warmup, duration=args.duration, probe=self.probe,
                            profile=self.profile(args, "rate"), idle_pid=self.idle_pid)
        r.pop("_lat")
        self.results["rate"] = r

    async def saturate_round(self, args: argparse.Namespace, tally: Tally, n: int) -> None:
        log(f"\n  {self.name} saturate, round {n + 1}/{args.saturate_rounds}: closed loop over {args.saturate_senders} sender "
            f"connections, at most {args.window} undelivered messages")
        self.rounds.append(await run_phase(
            f"{self.name} saturate {n + 1}", tally=tally, fleet=self.fleet, senders=self.senders, n_senders=args.saturate_senders,
            rate=None, window=args.window, warmup=1.0, duration=args.saturate_duration / args.saturate_rounds, probe=self.probe,
            profile=self.profile(args, f"saturate-{n + 1}"), idle_pid=self.idle_pid))


# --- main -------------------------------------------------------------------------------------

async def main(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    from townsquare.platform.db.migrate import upgrade

    began = time.monotonic()
    nofile = raise_nofile()
    results: dict[str, Any] = _api.bench_header("gateway")
    both = not args.skip_townsquare and not args.skip_bare
    if nofile < args.clients * (2 if both else 1) + 300:
        raise SystemExit(f"open-file limit {nofile} is too low for {args.clients} clients per server")

    tmp = tempfile.TemporaryDirectory(prefix="townsquare-gwbench-")
    data_dir = Path(tmp.name)
    services = _api.bench_services(data_dir)
    database_url, redis_url = services.database_url, services.redis_url
    embedded = not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
    tag = secrets.token_hex(4)
    schema, prefix = f"ts_gwbench_{tag}", f"ts:gwbench:{tag}:"
    port, bare_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    compression = "deflate" if args.permessage_deflate else None
    results["config"] = {
        "clients": args.clients, "channels": args.channels, "senders": args.senders, "rate_messages_per_s": args.rate,
        "duration_s": args.duration, "warmup_s": args.warmup, "saturate_duration_s": args.saturate_duration,
        "saturate_rounds": args.saturate_rounds, "saturate_senders": args.saturate_senders, "window": args.window,
        "connect_concurrency": args.connect_concurrency, "workers": args.workers, "intents": INTENTS, "permessage_deflate": bool(compression),
        "rate_limit_scale": args.rate_limit_scale, "embedded_services": embedded, "schema": schema, "open_file_limit": nofile,
        "client": args.client,
        "client_detail": ("websockets.asyncio client on uvloop, one reader task per client" if args.client == "task" else
                          "websockets sans-I/O ClientProtocol in an asyncio.Protocol on uvloop, counted in data_received")
        + "; the marker found with bytes.find, no JSON parsing",
        "bare_server": "websockets.asyncio.server on uvloop, websockets.broadcast() per frame",
    }
    log(f"services: {'embedded' if embedded else 'configured'}; schema {schema}, redis prefix {prefix}")
    if args.profile_dir:
        Path(args.profile_dir).mkdir(parents=True, exist_ok=True)

    pg = await asyncpg.connect(plain_pg_dsn(database_url), server_settings={"search_path": schema, "application_name": "townsquare-gwbench"})
    pg_port = urlsplit(plain_pg_dsn(database_url)).port or 5432
    proc: subprocess.Popen[bytes] | None = None
    bare: subprocess.Popen[bytes] | None = None
    server_log, bare_log = data_dir / "server.log", data_dir / "bare.log"
    tally = Tally()
    targets: list[Target] = []
    world: dict[str, Any] = {}
    try:
        results["postgres_version"] = await pg.fetchval("SHOW server_version")
        t = time.monotonic()
        upgrade(database_url, schema)
        log(f"migrated schema in {time.monotonic() - t:.1f} s")

        ts: Target | None = None
        bt: Target | None = None
        if not args.skip_townsquare:
            env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "TOWNSQUARE_DATABASE_SCHEMA": schema,
                   "TOWNSQUARE_REDIS_PREFIX": prefix, "TOWNSQUARE_HOST": "127.0.0.1", "TOWNSQUARE_PORT": str(port),
                   "TOWNSQUARE_PUBLIC_URL": url, "TOWNSQUARE_RATE_LIMIT_SCALE": str(args.rate_limit_scale),
                   "TOWNSQUARE_LOG_LEVEL": "WARNING", "TOWNSQUARE_DATA_DIR": str(data_dir / "app"), "PYTHONUNBUFFERED": "1"}
            if args.pool_size:
                env["TOWNSQUARE_DATABASE_POOL_SIZE"] = str(args.pool_size)
            # cwd outside the repo: its platform/ folder would shadow the standard library's `platform`
            command = [sys.executable, "-c", SERVER_CODE]
            if args.workers > 1:  # the supervisor and its workers (their CPU counts as the server's; PostgreSQL "ours"
                # then counts the supervisor's sockets only)
                command = [sys.executable, "-m", "townsquare.platform.cli", "serve", "--no-migrate", "--workers", str(args.workers)]
            with open(server_log, "wb") as out:
                proc = subprocess.Popen(command, env=env, cwd=str(data_dir), stdout=out, stderr=subprocess.STDOUT)
            await wait_ready(url, proc, server_log)
            log(f"Townsquare server pid {proc.pid} ready at {url}")
            # probes sample every 1 s: reading the server's 1,000+ socket fds costs the bench CPU
            ts = Target("townsquare", Fleet(tally, compression=compression, mode=args.client), Probe(proc.pid, pg, pg_port, interval=1.0),
                        proc.pid)
            targets.append(ts)
        if not args.skip_bare:
            with open(bare_log, "wb") as out:
                bare = subprocess.Popen([sys.executable, "-c", BARE_CODE, str(bare_port), compression or "none"], cwd=str(data_dir),
                                        stdout=out, stderr=subprocess.STDOUT)
            await wait_port(bare_port, bare, bare_log)
            log(f"bare broadcast server pid {bare.pid} listening on 127.0.0.1:{bare_port}")
            bt = Target("bare", Fleet(tally, compression=compression, mode=args.client), Probe(bare.pid, pg, pg_port, interval=1.0), None)
            targets.append(bt)
        if ts is not None and bt is not None:
            ts.idle_pid, bt.idle_pid = bare.pid, proc.pid  # type: ignore[union-attr]
        results["background_cpu_cores_before"] = idle = await targets[0].probe.background(1.0)
        log(f"background load before the run: {idle['others']} cores used by other programs")

        if ts is not None:
            t = time.monotonic()
            world = await create_world(url, pg, args.channels, args.clients + args.senders)
            results["world_s"] = round(time.monotonic() - t, 2)
            log(f"world: guild {world['guild_id']}, {len(world['channel_ids'])} channels, {args.clients + args.senders} bots "
                f"({results['world_s']} s)")
            ts.senders = RestSenders(port, world["tokens"][args.clients:], world["channel_ids"], max(args.senders, args.saturate_senders))
            if args.storm_concurrency:
                log(f"\ntownsquare: connect storm, {args.clients} clients, {args.storm_concurrency} at a time")
                storm_fleet = Fleet(tally, compression=compression, mode=args.client, server_pid=proc.pid)  # type: ignore[union-attr]
                senders = ts.senders

                async def post_missed() -> int:  # while every client is cut off, one after the other
                    errors = [await senders.send(i % args.senders, 10**9 + i, time.perf_counter_ns()) for i in range(args.storm_missed)]
                    return sum(e is None for e in errors)

                ts.results["storm"] = await storm_fleet.storm(url.replace("http://", "ws://") + "/gateway?v=10&encoding=json",
                                                              world["tokens"][:args.clients], str(world["guild_id"]), args.storm_concurrency,
                                                              profile=ts.profile(args, "storm") and (args.py_spy, proc.pid, Path(args.profile_dir),  # type: ignore[union-attr]
                                                                                                     args.workers > 1),
                                                              post_missed=post_missed)
                await asyncio.sleep(1.0)
        if not args.storm_only:  # the message phases
            if ts is not None:
                await ts.connect(args, townsquare=(url.replace("http://", "ws://") + "/gateway?v=10&encoding=json",
                                                   world["tokens"][:args.clients], str(world["guild_id"])))
            if bt is not None:
                await bt.connect(args, bare_url=f"ws://127.0.0.1:{bare_port}/")
            gc.collect()
            gc.freeze()  # the long-lived connection objects: keep the collector off them during the phases
            await asyncio.sleep(1.0)

            # rate phases, Townsquare first (the bare frames copy its MESSAGE_CREATE dispatch)
            if ts is not None:
                await ts.rate_phase(args, tally)
                if tally.sample is not None:
                    ts.results["message_create_frame_bytes"] = len(tally.sample)
            if bt is not None:
                template = tally.sample or synthetic_template()
                bt.senders = BareSenders(f"ws://127.0.0.1:{bare_port}/publish", max(args.senders, args.saturate_senders), template)
                await bt.senders.open()
                bt.results["frame_bytes"] = len(bt.senders.frame(10**6, time.perf_counter_ns()))
                await bt.rate_phase(args, tally)
            # saturate rounds, alternating between the targets: a changing background load on a
            # shared machine then weighs on both alike
            for n in range(args.saturate_rounds):
                for target in targets:
                    await target.saturate_round(args, tally, n)
            log("")
            for target in targets:
                target.results["saturate"] = combine_rounds(f"{target.name} saturate", target.rounds)
                target.results["other_frames"] = target.fleet.other_frames

            for target in targets:
                await target.senders.close()
                await target.fleet.close()
            if ts is not None:
                stored = await pg.fetchval("SELECT count(*) FROM messages WHERE guild_id = $1", world["guild_id"])
                accepted = (ts.results["rate"]["messages_accepted"] + ts.results["saturate"]["messages_accepted"]
                            + ts.results.get("storm", {}).get("resume", {}).get("missed_messages", 0))
                ts.results["persisted"] = {"messages_accepted": accepted, "rows": stored, "consistent": stored == accepted}
                log(f"  Townsquare persisted: {accepted} messages accepted, {stored} rows stored")
        for target in targets:
            results[target.name] = target.results
    finally:
        t = time.monotonic()
        for target in targets:
            with contextlib.suppress(Exception):
                if target.senders is not None:
                    await target.senders.close()
                await target.fleet.close()
        stop_process(proc)
        stop_process(bare)
        await _api.drop_bench_state(pg, redis_url, schema, prefix)
        log(f"\ncleaned up (servers stopped, schema dropped, redis keys deleted) in {time.monotonic() - t:.1f} s")
        if proc is not None and proc.returncode not in (0, None, -signal.SIGINT):
            log(f"server exited with {proc.returncode}; last log lines:\n{server_log.read_text()[-2000:]}")
        if bare is not None and bare.returncode not in (0, None, -signal.SIGINT, 1):
            log(f"bare server exited with {bare.returncode}; last log lines:\n{bare_log.read_text()[-2000:]}")
        stop_embedded(services)
        tmp.cleanup()

    # --- verdict -------------------------------------------------------------------------------
    tr, br = results.get("townsquare"), results.get("bare")
    verdict: dict[str, Any] = {}
    if tr and br and "saturate" in tr and "saturate" in br:
        share = tr["saturate"]["deliveries_per_s"] / max(br["saturate"]["deliveries_per_s"], 1e-9)
        t_us, b_us = tr["saturate"].get("server_cpu_us_per_delivery"), br["saturate"].get("server_cpu_us_per_delivery")
        verdict["saturated_share_of_bare"] = {
            "value": round(share, 3), "target": TARGETS["saturated_share_of_bare"], "met": share >= TARGETS["saturated_share_of_bare"],
            "townsquare_deliveries_per_s": tr["saturate"]["deliveries_per_s"], "bare_deliveries_per_s": br["saturate"]["deliveries_per_s"],
            # less sensitive to what else runs on the machine: server CPU per delivery, bare / Townsquare
            "server_cpu_per_delivery_share": round(b_us / t_us, 3) if t_us and b_us else None,
            "townsquare_server_cpu_us_per_delivery": t_us, "bare_server_cpu_us_per_delivery": b_us}
    if tr and "storm" in tr:
        took = tr["storm"]["identify"]["total_s"]
        resume = tr["storm"]["resume"]
        ok = (tr["storm"]["identify"]["clients"] == args.clients and resume["clients"] == args.clients
              and resume["replayed_dispatches"] == resume["distinct_replayed"] == resume["expected_replayed"])
        verdict["connect_storm_s"] = {"value": took, "target": TARGETS["connect_storm_s"], "met": ok and took < TARGETS["connect_storm_s"],
                                      "clients": tr["storm"]["identify"]["clients"], "concurrency": args.storm_concurrency,
                                      "resume_storm_s": resume["total_s"], "resumed": resume["clients"],
                                      "replayed": resume["replayed_dispatches"], "expected_replayed": resume["expected_replayed"]}
    if tr and "rate" in tr:
        p99 = tr["rate"]["latency"]["p99_ms"]
        verdict["rate_p99_ms"] = {"value": p99, "target": TARGETS["rate_p99_ms"], "met": p99 is not None and p99 <= TARGETS["rate_p99_ms"],
                                  "clients": tr["rate"]["clients"], "offered_messages_per_s": args.rate,
                                  "delivered_messages_per_s": tr["rate"]["messages_per_s"],
                                  "bare_p99_ms_same_load": br["rate"]["latency"]["p99_ms"] if br else None}
        lost = tr["rate"]["lost"] + tr["saturate"]["lost"]
        verdict["no_loss"] = {"value": lost, "target": 0, "met": lost == 0 and not tr["rate"]["duplicates"]
                              and not tr["saturate"]["duplicates"] and tr.get("persisted", {}).get("consistent", False)}
    results["targets"] = verdict
    results["all_targets_met"] = bool(verdict) and all(v["met"] for v in verdict.values())
    results["total_s"] = round(time.monotonic() - began, 1)

    log(f"\n{'figure':<48} {'townsquare':>12} {'bare':>12}")
    rows = [("rate: delivered messages/s", "rate", "messages_per_s", None), ("rate: deliveries/s", "rate", "deliveries_per_s", None),
            ("rate: latency p50 (ms)", "rate", "latency", "p50_ms"), ("rate: latency p99 (ms)", "rate", "latency", "p99_ms"),
            ("rate: latency max (ms)", "rate", "latency", "max_ms"), ("rate: lost deliveries", "rate", "lost", None),
            ("rate: server CPU per delivery (us)", "rate", "server_cpu_us_per_delivery", None),
            ("saturate: deliveries/s", "saturate", "deliveries_per_s", None), ("saturate: messages/s", "saturate", "messages_per_s", None),
            ("saturate: latency p99 (ms)", "saturate", "latency", "p99_ms"), ("saturate: lost deliveries", "saturate", "lost", None),
            ("saturate: server CPU per delivery (us)", "saturate", "server_cpu_us_per_delivery", None)]
    for label, phase, key, sub in rows:
        vals = []
        for r in (tr, br):
            v = r[phase].get(key) if r and phase in r else None
            vals.append("-" if v is None else v[sub] if sub else v)
        log(f"{label:<48} {vals[0]!s:>12} {vals[1]!s:>12}")
    for key, v in verdict.items():
        extra = f"; by server CPU per delivery: {v['server_cpu_per_delivery_share']}" if key == "saturated_share_of_bare" else ""
        log(f"target {key}: {v['value']} (target {v['target']}): {'met' if v['met'] else 'NOT met'}{extra}")
    log(f"total {results['total_s']} s")
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds of each rate phase (default 20)")
    p.add_argument("--saturate-duration", type=float, default=10.0,
                   help="measured seconds of saturation per server, split into --saturate-rounds rounds (default 10)")
    p.add_argument("--saturate-rounds", type=int, default=2,
                   help="saturate rounds per server, alternating between the servers (default 2; each after 1 s of warm-up)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each rate phase (default 2; 1 for saturate)")
    p.add_argument("--clients", type=int, default=1000, help="gateway clients, one bot each (default 1000)")
    p.add_argument("--channels", type=int, default=10, help="text channels in the guild, posted to in turn (default 10)")
    p.add_argument("--senders", type=int, default=4, help="sending bots, one connection each (default 4)")
    p.add_argument("--saturate-senders", type=int, default=48,
                   help="sender connections in the saturate phases, over the same bots (default 48: enough that --window, "
                        "not the POST round trip of a busy server, bounds the rate)")
    p.add_argument("--client", choices=("task", "callback"), default="task",
                   help="task: websockets.asyncio client, one reader task per client (default); callback: websockets' "
                        "sans-I/O protocol counted in the transport callback (no task switch per frame: a cheaper client)")
    p.add_argument("--rate", type=float, default=20.0, help="messages/s in total during the rate phases (default 20)")
    p.add_argument("--window", type=int, default=100,
                   help="saturate phases: most messages not yet delivered to every client, so also the most frames queued "
                        "per session (default 100; the server closes a session at 2,048)")
    p.add_argument("--connect-concurrency", type=int, default=50, help="handshakes + IDENTIFYs at a time (default 50)")
    p.add_argument("--storm-concurrency", type=int, default=1000,
                   help="connect storm (before the other phases, with its own --clients clients): handshakes + IDENTIFYs, then "
                        "handshakes + RESUMEs, at a time (default 1000: all at once, as after a server restart; 0 skips the storm)")
    p.add_argument("--storm-only", action="store_true", help="only the connect storm (no bare server, no message phases)")
    p.add_argument("--storm-missed", type=int, default=20,
                   help="messages posted while the storm's clients are cut off, replayed to each on RESUME (default 20)")
    p.add_argument("--permessage-deflate", action="store_true", help="clients offer permessage-deflate (browsers do; bots usually not)")
    p.add_argument("--workers", type=int, default=1, help="Townsquare server processes (townsquare serve --workers N; default 1)")
    p.add_argument("--pool-size", type=int, default=0, help="server's TOWNSQUARE_DATABASE_POOL_SIZE (default: the server's default)")
    p.add_argument("--rate-limit-scale", type=float, default=1_000_000.0, help="TOWNSQUARE_RATE_LIMIT_SCALE for the server")
    p.add_argument("--skip-bare", action="store_true", help="no bare-server ceiling")
    p.add_argument("--skip-townsquare", action="store_true", help="only the bare-server ceiling")
    p.add_argument("--profile-dir", default="", help="run py-spy on the Townsquare server during each measured window; stacks go here")
    p.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy", help="py-spy binary for --profile-dir")
    args = p.parse_args(argv)
    if not 0 < args.duration <= 60 or not 0 < args.saturate_duration <= 60 or not 0 <= args.warmup <= 10 or not 1 <= args.saturate_rounds <= 10:
        p.error("--duration and --saturate-duration must be in (0, 60], --warmup in [0, 10] and --saturate-rounds 1-10 "
                "(the run stays bounded)")
    if not 1 <= args.clients <= 5000 or not 1 <= args.channels <= 100 or not 1 <= args.senders <= 50 or not 1 <= args.saturate_senders <= 100:
        p.error("--clients must be 1-5000, --channels 1-100, --senders 1-50, --saturate-senders 1-100")
    if not 0 < args.rate <= 10_000 or not 1 <= args.window <= 2000 or not 1 <= args.connect_concurrency <= 500:
        p.error("--rate must be in (0, 10000], --window 1-2000 (below the server's 2,048-frame queue), --connect-concurrency 1-500")
    if not 0 <= args.storm_concurrency <= 5000 or not 0 <= args.storm_missed <= 1000:
        p.error("--storm-concurrency must be 0-5000, --storm-missed 0-1000")
    if args.storm_only:
        if not args.storm_concurrency or args.skip_townsquare:
            p.error("--storm-only needs the storm (--storm-concurrency > 0) and Townsquare")
        args.skip_bare = True
    if not 1 <= args.workers <= 16:
        p.error("--workers must be 1-16")
    if args.skip_bare and args.skip_townsquare:
        p.error("nothing to run")
    return args


def run(argv: list[str] | None = None) -> int:
    return _api.run_bench(main, parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
