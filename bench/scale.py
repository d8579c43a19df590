"""Scale benchmark (issue 18): one generated society of 100, 300 and 1,000 agents (or any sizes),
each run for a window with the bundled model, then a large society seeded and left idle.

    .venv/bin/python bench/scale.py [--sizes 100,300,1000] [--duration 480] [--seed 7] [--workers 1]
        [--idle-agents 10000] [--idle-duration 300] [--set NAME=VALUE ...] [--json-only]

Each society comes from `townsquare.agents.society.generate` (varied personas from a seeded
generator; channels with a few popular ones and a long tail of followers, about half the society
in #general, one agent in ten reading everything), written as a society file and run by
bench/society.py (the real CLI stack: server, model server, memory server, workers, rq worker;
TOWNSQUARE_MODEL_THREADS=1 unless --set says otherwise), which keeps its logs here for the
figures below. The idle run seeds `--idle-agents` agents with no channel budget (no roll, no
revival: no agent speaks and no model is asked; nobody has friends to write to yet) and measures
the stack at rest.

Per size, the issue's figures:
  messages_per_min   agent messages per minute in the window.
  model_busy         share of the window the model server spent generating (its "generated" log
                     lines in the window: prompt_eval_duration + eval_duration, not the time a
                     request waited in its queue).
  overhead_p50_ms    platform time of a posted turn (total - LLM time), p50; overhead_share its
                     share of the posted turns' total time (sum), overhead_share_p50 per turn.
  worker_cpu_ms_per_event  CPU of the agent workers in the window / events of the stream in it.
  memory_layer       CPU cores and peak RSS of the memory server (Chroma), and of the workers.
  warnings           warning and error lines in every log of the stack; those saying "recall
                     failed" and "remembering failed" apart.
  dashboard_ms       GET /townsquare/dashboard/agents (first page of 100), p50 / max, and bytes.
  load               the machine's load average before and after, and the cores other programs
                     used in the window (the machine is shared: read figures with it).
The last line printed is one JSON object with everything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
QUIET = False


def log(*parts: Any) -> None:
    if not QUIET:
        print(*parts, file=sys.stderr, flush=True)


def run_society(society_file: Path, log_dir: Path, args: argparse.Namespace, duration: float, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(HERE / "society.py"), "--society", str(society_file), "--duration", str(duration),
               "--json-only", "--log-dir", str(log_dir), "--workers", str(args.workers), "--sample-seconds", "5",
               "--set", "MODEL_THREADS=1", *extra]
    for item in args.set or []:
        command += ["--set", item]
    out, err = log_dir / "society.out", log_dir / "society.err"
    with out.open("w") as stdout, err.open("w") as stderr:  # files, not pipes: a large result line is written whole
        proc = subprocess.run(command, stdout=stdout, stderr=stderr, timeout=duration + 1800, cwd=str(HERE.parent))
    lines = [line for line in out.read_text().splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"bench/society.py printed no result (exit {proc.returncode}):\n{err.read_text()[-3000:]}")
    return orjson.loads(lines[-1])


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def scan_logs(log_dir: Path, t0: float, t_end: float) -> dict[str, Any]:
    """Model busy time in the window, warnings and errors (all of the run), from the JSON logs."""
    busy_ns, warnings, errors, recall, remember = 0, 0, 0, 0, 0
    for path in log_dir.glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            level, msg = entry.get("level"), str(entry.get("msg", ""))
            if level == "warning":
                warnings += 1
            elif level in ("error", "critical"):
                errors += 1
            recall += msg.startswith("recall failed")
            remember += msg.startswith("remembering failed")
            if msg == "generated" and entry.get("ts") and t0 <= _ts(entry["ts"]) <= t_end:
                # reading the prompt and writing the reply: total_duration would count a request's wait
                # in the server's own queue too (two at once with two workers or an rq job)
                busy_ns += int(entry.get("prompt_eval_duration") or 0) + int(entry.get("eval_duration") or 0)
    return {"model_busy": round(busy_ns / 1e9 / max(t_end - t0, 1e-9), 3), "warnings": warnings, "errors": errors,
            "recall_failed": recall, "remembering_failed": remember}


def figures(r: dict[str, Any], log_dir: Path, load: tuple[tuple[float, ...], tuple[float, ...]]) -> dict[str, Any]:
    window = r.get("window") or {}
    t0, t_end = window.get("start", 0.0), window.get("end", 0.0)
    seconds = max(t_end - t0, 1e-9)
    cpu = (r.get("memory") or {}).get("cpu_cores") or {}
    parts = cpu.get("by_part") or {}
    rss = (r.get("memory") or {}).get("rss_max_mib") or {}
    workers_cores = sum(v for k, v in parts.items() if k.startswith("worker"))
    events = r.get("stream_events") or 0
    turns = r.get("turns") or {}
    logs = scan_logs(log_dir, t0, t_end)
    return {
        "agents": (r.get("society") or {}).get("agents"), "seed_s": (r.get("society") or {}).get("seed_s"),
        "window_s": round(seconds, 1), "window": [t0, t_end], "error": r.get("error"),
        "messages_per_min": (r.get("messages") or {}).get("per_minute"),
        "model_busy": logs["model_busy"],
        "posted_turns": turns.get("posted"),
        "overhead_p50_ms": (turns.get("overhead_ms") or {}).get("p50"), "overhead_share": turns.get("overhead_share"),
        "overhead_share_p50": turns.get("overhead_share_p50"), "turn_total_p50_ms": (turns.get("total_ms") or {}).get("p50"),
        "stream_events": events,
        "worker_cpu_ms_per_event": round(workers_cores * seconds / events * 1000, 1) if events else None,
        "memory_layer": {"cores": parts.get("memory"), "rss_max_mib": rss.get("memory"),
                         "workers_cores": round(workers_cores, 2),
                         "workers_rss_max_mib": round(sum(v for k, v in rss.items() if k.startswith("worker")), 1)},
        "cpu_cores": parts, "rss_max_mib": rss, "stack_rss_max_mib": (r.get("memory") or {}).get("total_rss_max_mib"),
        "warnings": logs["warnings"], "errors": logs["errors"], "recall_failed": logs["recall_failed"],
        "remembering_failed": logs["remembering_failed"],
        "dashboard_ms": r.get("dashboard_agents"),
        "load": {"loadavg_before": load[0], "loadavg_after": load[1], "machine_busy_cores": cpu.get("machine_busy"),
                 "other_programs_cores": cpu.get("others")},
    }


def policy_cost(n: int, seed: int, messages: int = 300, policy_module: str = "townsquare.agents.mind.policy") -> dict[str, Any]:
    """CPU time (process time: what a shared machine's load does not inflate) of the turn policy
    alone in a society of `n` generated agents: per message (the state update, who answers, who
    reacts) and per tick (revivals, and the mood labels presence computes), with a fake clock."""
    import importlib
    import random

    from townsquare.agents.mind.clock import FakeClock, SimClock
    from townsquare.agents.society.generate import generate

    policy = importlib.import_module(policy_module)
    society = generate(n, seed=seed)
    clock = FakeClock(1_000_000.0)
    state = policy.SocietyState(SimClock(clock, epoch=clock.now(), start_hour=12.0))
    decide = policy.TurnPolicy(policy.PolicyConfig())
    channels = [state.set_channel(policy.ChannelState(10 + i, 1, c.name, c.topic)) for i, c in enumerate(society.channels)]
    for i, persona in enumerate(society.agents):
        state.set_agent(policy.AgentInfo(1000 + i, 1, persona))
    rng = random.Random(seed)
    ids = list(state.agents)
    texts = ["What a lovely morning at the market!", "Has anyone seen the new bakery?", "The bus was late again, so annoying.",
             "I think the garden needs more water.", "Anyone up for chess tonight?"]
    per_message: list[float] = []
    for m in range(messages):
        clock.advance(rng.uniform(1, 6))
        channel = rng.choice(channels)
        author = rng.choice(ids)
        msg = policy.Msg(10_000 + m, channel.id, 1, author, "x", True, rng.choice(texts), clock.now(), frozenset(),
                         rng.choice(ids) if rng.random() < 0.5 else None)
        t = time.process_time()
        state.observe(msg)
        decide.on_message(state, msg)
        decide.reactions(state, msg)
        per_message.append(time.process_time() - t)
    ticks: list[float] = []
    for _ in range(20):
        clock.advance(1.0)
        t = time.process_time()
        decide.revivals(state)
        touched = getattr(state.agents, "touched", None)  # presence's labels: the touched agents (before: every agent, every tick)
        looked = [state.agents[i] for i in touched if i in state.agents] if touched is not None else list(state.agents.values())
        {a.id: state.mood(a.id).label() for a in looked}
        if touched is not None:
            touched.clear()
        ticks.append(time.process_time() - t)
    per_message.sort()
    ticks.sort()
    return {"agents": n, "relationships": len(state.relations.bonds), "message_ms_p50": round(per_message[len(per_message) // 2] * 1000, 3),
            "message_ms_mean": round(sum(per_message) / len(per_message) * 1000, 3), "tick_ms_p50": round(ticks[len(ticks) // 2] * 1000, 3)}


def main(args: argparse.Namespace) -> dict[str, Any]:
    from townsquare.agents.society.generate import followers, generate, to_yaml

    out: dict[str, Any] = {"bench": "scale", "seed": args.seed, "duration_s": args.duration, "workers": args.workers,
                           "nproc": os.cpu_count(), "runs": []}
    if args.policy:
        out["policy"] = [policy_cost(n, args.seed) for n in args.policy]
        for row in out["policy"]:
            log(f"policy alone, {row['agents']} agents: {row['message_ms_p50']} ms CPU per message (p50), {row['tick_ms_p50']} ms per tick")
    with tempfile.TemporaryDirectory(prefix="townsquare-scale-") as tmp:
        folder = Path(tmp)
        plan = [(n, args.duration, []) for n in args.sizes]
        if args.idle_agents:
            # nobody speaks: no channel budget (no roll, no revival), so nothing but the society at rest
            plan.append((args.idle_agents, args.idle_duration, ["--revive-idle", "10000000", "--set", "CHANNEL_BUDGET_PER_MINUTE=0"]))
        for n, duration, extra in plan:
            idle = bool(extra)
            t = time.monotonic()
            society = generate(n, seed=args.seed, guild=f"Scale {n}")
            path = folder / f"society-{n}.yaml"
            path.write_text(to_yaml(society), encoding="utf-8")
            spread = followers(society)
            log(f"{'idle ' if idle else ''}society of {n} agents generated in {time.monotonic() - t:.1f} s; "
                f"followers: general {spread['general']}, largest {max(spread.values())}, smallest {min(spread.values())}")
            log_dir = (Path(args.log_dir) if args.log_dir else folder) / f"logs-{n}{'-idle' if idle else ''}"
            log_dir.mkdir(parents=True, exist_ok=True)
            before = os.getloadavg()
            r = run_society(path, log_dir, args, duration, [*extra, "--dashboard-every", "15"])
            result = {"idle": idle, "followers": spread, **figures(r, log_dir, (before, os.getloadavg()))}
            out["runs"].append(result)
            log(orjson.dumps(result).decode())
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100,300,1000", help="society sizes to run (comma-separated; empty: none)")
    p.add_argument("--duration", type=float, default=480.0, help="measured seconds per size (default 480)")
    p.add_argument("--seed", type=int, default=7, help="the generator's seed")
    p.add_argument("--workers", type=int, default=1, help="agent worker processes (default 1)")
    p.add_argument("--idle-agents", type=int, default=0, help="also seed a society this large and leave it idle (e.g. 10000)")
    p.add_argument("--idle-duration", type=float, default=300.0, help="seconds the large society stays idle (default 300)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="a TOWNSQUARE_ setting for the stack (repeatable)")
    p.add_argument("--log-dir", default=None, help="keep each run's logs under this folder (default: removed)")
    p.add_argument("--policy", default="", help="also time the turn policy alone (CPU per message) at these sizes, e.g. 1000,10000")
    p.add_argument("--json-only", action="store_true", help="print only the final JSON line")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.policy = [int(s) for s in args.policy.split(",") if s.strip()]
    if not all(1 <= n <= 20_000 for n in args.sizes) or not 0 <= args.idle_agents <= 20_000:
        p.error("society sizes are 1-20000")
    if not 10 <= args.duration <= 3600 or not 10 <= args.idle_duration <= 3600:
        p.error("--duration and --idle-duration must be 10-3600 s (the run stays bounded)")
    return args


if __name__ == "__main__":
    ARGS = parse_args()
    QUIET = ARGS.json_only
    print(orjson.dumps(main(ARGS)).decode(), flush=True)
