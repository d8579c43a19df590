"""Real-time gateway benchmark: REST sends fanned out over the WebSocket gateway to 1,000 clients.

    .venv/bin/python bench/gateway.py [--duration 20] [--clients 1000] [--rate 20] [--channels 10] [--senders 4]

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

Phases, against Townsquare and then against a bare `websockets` broadcast server (the ceiling):
  rate      --senders senders post at a fixed total --rate messages/s (open loop, evenly
            staggered), round-robin over the channels, for --duration s after --warmup s.
            Townsquare: POST /api/v10/channels/{id}/messages (Authorization: Bot <token>), every
            message persisted. Bare: each sender has a WebSocket to the bare server, which
            relays each frame to every client with websockets.broadcast() (no parsing, no
            storage, no per-connection task). The bare frames have the size of the MESSAGE_CREATE
            dispatch Townsquare sent in the same run (its bytes with the marker replaced).
  saturate  --saturate-senders sender connections (over the same bots) as fast as the system
            delivers, for --saturate-duration s: a new message is sent only while fewer than
            --window messages are still undelivered to some client (closed loop). This keeps
            every session's queue below --window frames, so the server's backpressure (close
            4000 at 2,048 queued frames) never triggers, and measures the maximum sustained
            deliveries/s (more sender connections than --senders, so that the POST round trip of
            a busy server does not bound the rate instead of the window).

Clients (--client): "task" (default) is the websockets.asyncio client, one reader task per
client; "callback" drives websockets' sans-I/O ClientProtocol from an asyncio.Protocol and
counts each frame in data_received, without a task switch per frame: it halves the client's CPU
per delivery, which on a 2-core machine leaves more CPU to the server under test.

Each message's content starts with "gwb:<seq>:<send time, perf_counter_ns>;" (the *scheduled*
send time in the rate phase, so a sender that falls behind cannot hide it). A client finds it
with one bytes.find() -- no JSON parsing -- and records receive time - send time for every
(message, client) delivery: latency percentiles are over all deliveries of the messages sent in
the measured window. After each phase the script waits (bounded) until every message is
delivered to every client and counts losses and duplicates. It also reports, per message, the
latency to the first client and the spread between the first and the last client (fan-out time).

CPU per party for each measured window, from /proc: the server process, its PostgreSQL backends
(found through its sockets), Redis, this bench process (clients + senders), and everything else
on the machine. Shares these helpers (and Http1, its minimal HTTP/1.1 client) with bench/api.py.

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
import importlib.util
import json
import os
import random
import resource
import secrets
import shutil
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
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri


def _load_api_helpers() -> Any:
    spec = importlib.util.spec_from_file_location("townsquare_bench_api", Path(__file__).with_name("api.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_api = _load_api_helpers()
log, machine, source_revision, pct = _api.log, _api.machine, _api.source_revision, _api.pct
Http1, Probe, free_port, plain_pg_dsn, wait_ready, stop_embedded = (_api.Http1, _api.Probe, _api.free_port, _api.plain_pg_dsn,
                                                                      _api.wait_ready, _api.stop_embedded)

INTENTS = 1 | 512 | 32768  # GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT
MARK = b"gwb:"
FILLER = "The quick brown fox jumps over the lazy dog while the agents discuss the harvest."
TARGETS = {"saturated_share_of_bare": 0.5, "rate_p99_ms": 50.0}
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
from townsquare.platform.core.config import Settings
settings = Settings()
app = create_app(settings, database_url=os.environ["DATABASE_URL"], redis_url=os.environ["REDIS_URL"])
uvicorn.run(app, host=settings.host, port=settings.port, loop="uvloop", http="httptools", log_config=None,
            access_log=False, lifespan="on", timeout_graceful_shutdown=5, backlog=4096)
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


class Fleet:
    """C WebSocket clients (and, for Townsquare, one heartbeat task each)."""

    def __init__(self, tally: Tally, *, compression: str | None, mode: str) -> None:
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

    async def _identify(self, conn: Any, token: str, guild_id: str) -> tuple[float, int]:
        """HELLO, IDENTIFY, then frames until READY and the guild's GUILD_CREATE."""
        hello = orjson.loads(await conn.recv_setup())
        assert hello["op"] == 10, hello
        await conn.send(orjson.dumps({"op": 2, "d": {"token": token, "intents": INTENTS,
                                                     "properties": {"os": "linux", "browser": "bench", "device": "bench"}}}).decode())
        ready = False
        guild_bytes = 0
        while not (ready and guild_bytes):
            raw = await conn.recv_setup()
            frame = orjson.loads(raw)
            if frame["op"] == 0 and frame["t"] == "READY":
                ready = True
            elif frame["op"] == 0 and frame["t"] == "GUILD_CREATE" and frame["d"]["id"] == guild_id:
                guild_bytes = len(raw)
            elif frame["op"] == 9:
                raise RuntimeError("INVALID_SESSION")
        return hello["d"]["heartbeat_interval"] / 1000, guild_bytes

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

    async def send(self, k: int, seq: int, sent_at: int) -> str | None:
        try:
            await self.conns[k].send(b"%sgwb:%d:%d%s" % (self.prefix, seq, sent_at, self.suffix), text=True)
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
                    warmup: float, duration: float, probe: Any, profile: tuple[str, int, Path] | None,
                    drain_timeout: float = 30.0) -> dict[str, Any]:
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
    completed0, total0 = t.completed, t.total
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
        cpu["cores"] = await probe.measure(lo / 1e9, hi / 1e9)

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
        binary, pid, out = profile
        await asyncio.sleep(max(0.0, (lo - clock()) / 1e9))
        proc = await asyncio.create_subprocess_exec(
            binary, "record", "--pid", str(pid), "--duration", str(max(1, int(duration))), "--rate", "100", "--nonblocking",
            "--format", "raw", "--output", str(out), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
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
            f"bench {c['bench']}, others {c['others']} (machine busy {c['machine_busy']} of {os.cpu_count()}); "
            f"server {result.get('server_cpu_us_per_delivery')} us/delivery, bench {result.get('bench_cpu_us_per_delivery')} us/delivery")
    return result


# --- set-up -------------------------------------------------------------------------------------

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


def bare_server(port: int, compression: str | None, cwd: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", BARE_CODE, str(port), compression or "none"], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"bare server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
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


async def run_target(name: str, args: argparse.Namespace, *, tally: Tally, fleet: Fleet, senders: Any, probe: Any,
                     profile_pid: int | None, connect_kwargs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    log(f"  connecting {args.clients} clients, {args.connect_concurrency} at a time")
    spy = None
    if profile_pid is not None and args.profile_dir:  # until the last client is in (py-spy writes its stacks on SIGINT)
        spy = await asyncio.create_subprocess_exec(
            args.py_spy, "record", "--pid", str(profile_pid), "--rate", "100", "--nonblocking", "--format", "raw",
            "--output", str(Path(args.profile_dir) / f"{name}-connect.txt"), stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
    out["connect"] = conn = await fleet.connect_all(args.clients, args.connect_concurrency, **connect_kwargs)
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        await spy.wait()
    log(f"  {conn['clients']} clients connected in {conn['total_s']} s ({conn['connects_per_s']}/s; per client p50 {conn['p50_ms']} ms, "
        f"p99 {conn['p99_ms']} ms{', GUILD_CREATE ' + str(conn['guild_create_bytes_mean']) + ' bytes' if 'guild_create_bytes_mean' in conn else ''})"
        f"{'; errors ' + str(conn['errors']) if conn['errors'] else ''}")
    gc.collect()
    gc.freeze()  # the long-lived connection objects: keep the collector off them during the phases
    await asyncio.sleep(1.0)

    def profile(phase: str) -> tuple[str, int, Path] | None:
        if profile_pid is None or not args.profile_dir:
            return None
        return args.py_spy, profile_pid, Path(args.profile_dir) / f"{name}-{phase}.txt"

    log(f"\n  {name} rate: {args.rate:g} msg/s over {args.senders} senders, {args.channels} channels, {fleet.open} clients")
    out["rate"] = await run_phase(f"{name} rate", tally=tally, fleet=fleet, senders=senders, n_senders=args.senders, rate=args.rate,
                                  window=args.window, warmup=args.warmup, duration=args.duration, probe=probe, profile=profile("rate"))
    log(f"\n  {name} saturate: closed loop over {args.saturate_senders} sender connections, at most {args.window} undelivered messages")
    out["saturate"] = await run_phase(f"{name} saturate", tally=tally, fleet=fleet, senders=senders, n_senders=args.saturate_senders,
                                      rate=None,
                                      window=args.window, warmup=min(args.warmup, 1.0), duration=args.saturate_duration, probe=probe,
                                      profile=profile("saturate"))
    out["other_frames"] = fleet.other_frames
    return out


# --- main -------------------------------------------------------------------------------------

async def main(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg
    from redis.asyncio import Redis

    from townsquare.platform.core.config import Settings
    from townsquare.platform.db.migrate import upgrade
    from townsquare.platform.services.embedded import resolve_services

    began = time.monotonic()
    nofile = raise_nofile()
    results: dict[str, Any] = {"bench": "gateway", "machine": machine(), "source": source_revision()}
    m = results["machine"]
    log(f"machine: {m.get('nproc')} cpus ({m.get('cpu_model')}), {m.get('mem_total_gib')} GiB, Linux {m['kernel']}, Python {m['python']}")
    if nofile < args.clients + 200:
        raise SystemExit(f"open-file limit {nofile} is too low for {args.clients} clients")

    tmp = tempfile.TemporaryDirectory(prefix="townsquare-gwbench-")
    data_dir = Path(tmp.name)
    services = resolve_services(Settings(data_dir=data_dir / "services", database_url=os.environ.get("DATABASE_URL"),
                                         redis_url=os.environ.get("REDIS_URL")))
    database_url, redis_url = services.database_url, services.redis_url
    embedded = not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
    tag = secrets.token_hex(4)
    schema, prefix = f"ts_gwbench_{tag}", f"ts:gwbench:{tag}:"
    port, bare_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    compression = "deflate" if args.permessage_deflate else None
    results["config"] = {
        "clients": args.clients, "channels": args.channels, "senders": args.senders, "rate_messages_per_s": args.rate,
        "duration_s": args.duration, "warmup_s": args.warmup, "saturate_duration_s": args.saturate_duration, "window": args.window,
        "connect_concurrency": args.connect_concurrency, "intents": INTENTS, "permessage_deflate": bool(compression),
        "rate_limit_scale": args.rate_limit_scale, "embedded_services": embedded, "schema": schema, "open_file_limit": nofile,
        "saturate_senders": args.saturate_senders, "client": args.client,
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
    server_log = data_dir / "server.log"
    tally = Tally()
    try:
        results["postgres_version"] = await pg.fetchval("SHOW server_version")
        t = time.monotonic()
        upgrade(database_url, schema)
        log(f"migrated schema in {time.monotonic() - t:.1f} s")

        if not args.skip_townsquare:
            env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "TOWNSQUARE_DATABASE_SCHEMA": schema,
                   "TOWNSQUARE_REDIS_PREFIX": prefix, "TOWNSQUARE_HOST": "127.0.0.1", "TOWNSQUARE_PORT": str(port),
                   "TOWNSQUARE_PUBLIC_URL": url, "TOWNSQUARE_RATE_LIMIT_SCALE": str(args.rate_limit_scale),
                   "TOWNSQUARE_LOG_LEVEL": "WARNING", "TOWNSQUARE_DATA_DIR": str(data_dir / "app"), "PYTHONUNBUFFERED": "1"}
            if args.pool_size:
                env["TOWNSQUARE_DATABASE_POOL_SIZE"] = str(args.pool_size)
            # cwd outside the repo: its platform/ folder would shadow the standard library's `platform`
            with open(server_log, "wb") as out:
                proc = subprocess.Popen([sys.executable, "-c", SERVER_CODE], env=env, cwd=str(data_dir), stdout=out, stderr=subprocess.STDOUT)
            await wait_ready(url, proc, server_log)
            log(f"server pid {proc.pid} ready at {url}")
            probe = Probe(proc.pid, pg, pg_port, interval=1.0)  # 1 s: reading 1,000+ socket fds costs the bench CPU
            results["background_cpu_cores_before"] = idle = await probe.background(1.0)
            log(f"background load before the run: {idle['others']} cores used by other programs")

            t = time.monotonic()
            world = await create_world(url, pg, args.channels, args.clients + args.senders)
            log(f"world: guild {world['guild_id']}, {len(world['channel_ids'])} channels, {args.clients + args.senders} bots "
                f"({time.monotonic() - t:.1f} s)")
            results["world_s"] = round(time.monotonic() - t, 2)

            log("\nTownsquare")
            fleet = Fleet(tally, compression=compression, mode=args.client)
            senders = RestSenders(port, world["tokens"][args.clients:], world["channel_ids"], max(args.senders, args.saturate_senders))
            try:
                results["townsquare"] = await run_target(
                    "townsquare", args, tally=tally, fleet=fleet, senders=senders, probe=probe,
                    profile_pid=proc.pid, connect_kwargs={"townsquare": (
                        url.replace("http://", "ws://") + "/gateway?v=10&encoding=json", world["tokens"][:args.clients],
                        str(world["guild_id"]))})
            finally:
                await senders.close()
                await fleet.close()
            if tally.sample is not None:
                results["townsquare"]["message_create_frame_bytes"] = len(tally.sample)
            stored = await pg.fetchval("SELECT count(*) FROM messages WHERE guild_id = $1", world["guild_id"])
            accepted = sum(results["townsquare"][p]["messages_accepted"] for p in ("rate", "saturate"))
            results["townsquare"]["persisted"] = {"messages_accepted": accepted, "rows": stored, "consistent": stored == accepted}
            log(f"  persisted: {accepted} messages accepted, {stored} rows stored")
            stop_process(proc)
            log(f"  server stopped (exit {proc.returncode})")

        if not args.skip_bare:
            log("\nbare websockets broadcast server (the ceiling)")
            bare = bare_server(bare_port, compression, str(data_dir))
            await wait_port(bare_port, bare)
            bare_probe = Probe(bare.pid, pg, pg_port, interval=1.0)
            template = tally.sample or synthetic_template()
            fleet = Fleet(tally, compression=compression, mode=args.client)
            senders = BareSenders(f"ws://127.0.0.1:{bare_port}/publish", max(args.senders, args.saturate_senders), template)
            await senders.open()
            try:
                results["bare"] = await run_target("bare", args, tally=tally, fleet=fleet, senders=senders, probe=bare_probe,
                                                   profile_pid=None, connect_kwargs={"bare_url": f"ws://127.0.0.1:{bare_port}/"})
            finally:
                await senders.close()
                await fleet.close()
            results["bare"]["frame_bytes"] = len(template) + 10
            stop_process(bare)
    finally:
        t = time.monotonic()
        stop_process(proc)
        stop_process(bare)
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
        log(f"\ncleaned up (schema dropped, redis keys deleted) in {time.monotonic() - t:.1f} s")
        if proc is not None and proc.returncode not in (0, None, -signal.SIGINT):
            log(f"server exited with {proc.returncode}; last log lines:\n{server_log.read_text()[-2000:]}")
        stop_embedded(services)
        tmp.cleanup()

    # --- verdict -------------------------------------------------------------------------------
    ts, bare_r = results.get("townsquare"), results.get("bare")
    targets: dict[str, Any] = {}
    if ts and bare_r:
        share = ts["saturate"]["deliveries_per_s"] / max(bare_r["saturate"]["deliveries_per_s"], 1e-9)
        targets["saturated_share_of_bare"] = {"value": round(share, 3), "target": TARGETS["saturated_share_of_bare"],
                                              "townsquare_deliveries_per_s": ts["saturate"]["deliveries_per_s"],
                                              "bare_deliveries_per_s": bare_r["saturate"]["deliveries_per_s"],
                                              "met": share >= TARGETS["saturated_share_of_bare"]}
    if ts:
        p99 = ts["rate"]["latency"]["p99_ms"]
        targets["rate_p99_ms"] = {"value": p99, "target": TARGETS["rate_p99_ms"], "clients": ts["rate"]["clients"],
                                  "messages_per_s": args.rate, "met": p99 is not None and p99 <= TARGETS["rate_p99_ms"]}
        lost = ts["rate"]["lost"] + ts["saturate"]["lost"]
        targets["no_loss"] = {"value": lost, "target": 0, "met": lost == 0 and not ts["rate"]["duplicates"] and not ts["saturate"]["duplicates"]
                              and ts.get("persisted", {}).get("consistent", False)}
    results["targets"] = targets
    results["all_targets_met"] = bool(targets) and all(v["met"] for v in targets.values())
    results["total_s"] = round(time.monotonic() - began, 1)

    log(f"\n{'figure':<48} {'townsquare':>12} {'bare':>12}")
    rows = [("rate: deliveries/s", "rate", "deliveries_per_s", None), ("rate: latency p50 (ms)", "rate", "latency", "p50_ms"),
            ("rate: latency p99 (ms)", "rate", "latency", "p99_ms"), ("rate: latency max (ms)", "rate", "latency", "max_ms"),
            ("rate: lost deliveries", "rate", "lost", None),
            ("saturate: deliveries/s", "saturate", "deliveries_per_s", None), ("saturate: messages/s", "saturate", "messages_per_s", None),
            ("saturate: latency p99 (ms)", "saturate", "latency", "p99_ms"), ("saturate: lost deliveries", "saturate", "lost", None)]
    for label, phase, key, sub in rows:
        vals = []
        for r in (ts, bare_r):
            v = r[phase][key] if r else None
            vals.append("-" if v is None else v[sub] if sub else v)
        log(f"{label:<48} {vals[0]!s:>12} {vals[1]!s:>12}")
    for key, v in targets.items():
        log(f"target {key}: {v['value']} (target {v['target']}): {'met' if v['met'] else 'NOT met'}")
    log(f"total {results['total_s']} s")
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds of each rate phase (default 20)")
    p.add_argument("--saturate-duration", type=float, default=10.0, help="measured seconds of each saturate phase (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each rate phase (default 2; 1 for saturate)")
    p.add_argument("--clients", type=int, default=1000, help="gateway clients, one bot each (default 1000)")
    p.add_argument("--channels", type=int, default=10, help="text channels in the guild, posted to in turn (default 10)")
    p.add_argument("--senders", type=int, default=4, help="sending bots, one connection each (default 4)")
    p.add_argument("--saturate-senders", type=int, default=16,
                   help="sender connections in the saturate phases, over the same bots (default 16: enough that --window, "
                        "not the POST round trip, bounds the rate)")
    p.add_argument("--client", choices=("task", "callback"), default="task",
                   help="task: websockets.asyncio client, one reader task per client (default); callback: websockets' "
                        "sans-I/O protocol counted in the transport callback (no task switch per frame: a cheaper client)")
    p.add_argument("--rate", type=float, default=20.0, help="messages/s in total during the rate phases (default 20)")
    p.add_argument("--window", type=int, default=50, help="saturate phases: most messages not yet delivered to every client (default 50)")
    p.add_argument("--connect-concurrency", type=int, default=50, help="handshakes + IDENTIFYs at a time (default 50)")
    p.add_argument("--permessage-deflate", action="store_true", help="clients offer permessage-deflate (browsers do; bots usually not)")
    p.add_argument("--pool-size", type=int, default=0, help="server's TOWNSQUARE_DATABASE_POOL_SIZE (default: the server's default)")
    p.add_argument("--rate-limit-scale", type=float, default=1_000_000.0, help="TOWNSQUARE_RATE_LIMIT_SCALE for the server")
    p.add_argument("--skip-bare", action="store_true", help="no bare-server ceiling")
    p.add_argument("--skip-townsquare", action="store_true", help="only the bare-server ceiling")
    p.add_argument("--profile-dir", default="", help="run py-spy on the Townsquare server during each measured window; stacks go here")
    p.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy", help="py-spy binary for --profile-dir")
    args = p.parse_args(argv)
    if not 0 < args.duration <= 60 or not 0 < args.saturate_duration <= 60 or not 0 <= args.warmup <= 10:
        p.error("--duration and --saturate-duration must be in (0, 60] and --warmup in [0, 10] (the run stays bounded)")
    if not 1 <= args.clients <= 5000 or not 1 <= args.channels <= 100 or not 1 <= args.senders <= 50 or not 1 <= args.saturate_senders <= 100:
        p.error("--clients must be 1-5000, --channels 1-100, --senders 1-50, --saturate-senders 1-100")
    if not 0 < args.rate <= 10_000 or not 1 <= args.window <= 2000 or not 1 <= args.connect_concurrency <= 500:
        p.error("--rate must be in (0, 10000], --window 1-2000 (below the server's 2,048-frame queue), --connect-concurrency 1-500")
    if args.skip_bare and args.skip_townsquare:
        p.error("nothing to run")
    return args


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop

        results = uvloop.run(main(args))
    except ImportError:  # pragma: no cover
        results = asyncio.run(main(args))
    print(json.dumps(results, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run())
