"""Scenario benchmark: the bundled diffusion scenario on `city`, with and without its planted
fact, through `townsquare run` (the real CLI, the whole stack, the bundled model).

    .venv/bin/python bench/scenario.py [--scenario diffusion] [--duration 4h] [--repeat 1] [--without plant]

`townsquare run SCENARIO --without NAME --json` runs both arms (A: as written; B: without the
timeline entry NAME), each on a fresh copy of the society, on free loopback ports. DATABASE_URL /
REDIS_URL are used when set, in a fresh schema `bench_<hex>` and Redis prefix, both removed at
the end; otherwise embedded PostgreSQL and Redis in a temporary data folder. The default is SHORT
on purpose (this machine is shared): 4 simulated hours at the scenario's speed (96x: 150 s of
real time per arm), one repeat; the issue's measurement is 2 simulated days (30 minutes per arm),
2 repeats: `--duration 2d --repeat 2`.

Figures per arm: the informed share of the other agents at the end (the memory interview of
`knows` questions), how many agents said the fact's keywords in chat (and how many of them were
not told it), the number of messages about the topic; A - B with its interval (`townsquare run`'s
summary). The LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).parent))
import api as _api  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="diffusion")
    p.add_argument("--duration", default="4h", help="simulated time per arm (the scenario's own: 2d)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--without", default="plant", help="the B arm: the scenario without this timeline entry")
    p.add_argument("--timeout", type=float, default=1800.0, help="real seconds before the run is stopped")
    return p.parse_args(argv)


def arm_figures(report: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for run in report["runs"]:
        arm = out.setdefault(run["arm"], {"runs": []})
        entry: dict[str, Any] = {"run_id": run["id"], "state": run["state"], "seed": run["seed"], "error": run["error"]}
        for q in run.get("results", {}).get("questions", []):
            if q["kind"] == "knows":
                entry[q["name"]] = {"informed_share_of_others": q["share_of_others"], "informed": q["informed"], "agents": q["agents"],
                                    "who": q["who"], "said": len(q["said"]), "said_by_others": len(q["said_by_others"])}
            else:
                entry[q["name"]] = {"value": q["value"], **({"messages": q["messages"]} if "messages" in q else {})}
        entry["real_seconds"] = run.get("results", {}).get("real_seconds")
        entry["messages"] = run.get("results", {}).get("messages")
        arm["runs"].append(entry)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = _api.bench_header("scenario")
    results["parameters"] = {"scenario": args.scenario, "duration": args.duration, "repeat": args.repeat, "without": args.without,
                             "short": args.duration not in ("2d", "48h")}
    results["load_before"] = os.getloadavg()
    tag = secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="townsquare-bench-scenario-") as folder:
        env = {**os.environ, "TOWNSQUARE_DATA_DIR": str(Path(folder) / "data"), "TOWNSQUARE_LOG_LEVEL": "INFO"}
        for key in ("CHROMA_URL", "OLLAMA_HOST", "TOWNSQUARE_ROUTING_FILE"):
            env.pop(key, None)  # the run's own memory and model servers
        schema = prefix = None
        if os.environ.get("DATABASE_URL"):
            schema, prefix = f"bench_{tag}", f"ts:bench:{tag}:"
            env["TOWNSQUARE_DATABASE_SCHEMA"], env["TOWNSQUARE_REDIS_PREFIX"] = schema, prefix
        command = [sys.executable, "-m", "townsquare.platform.cli", "run", args.scenario, "--without", args.without,
                   "--duration", args.duration, "--repeat", str(args.repeat), "--json", "--no-progress"]
        _api.log(f"running: {' '.join(command[2:])}")
        started = time.monotonic()
        try:
            done = subprocess.run(command, env=env, cwd=str(ROOT), capture_output=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            results["error"] = f"townsquare run did not finish within {args.timeout:.0f} s"
            done = None
        results["wall_seconds"] = round(time.monotonic() - started, 1)
        results["load_after"] = os.getloadavg()
        if done is not None:
            lines = [line for line in done.stdout.decode().splitlines() if line.startswith("{")]
            if lines:
                report = orjson.loads(lines[-1])
                results["arms"] = arm_figures(report)
                results["summary"] = report["summary"]
                results["model"] = report["model"]
            else:
                results["error"] = f"townsquare run exited {done.returncode}: {done.stderr.decode()[-600:]}"
        if schema is not None and prefix is not None:
            import asyncpg

            async def drop() -> None:
                pg = await asyncpg.connect(_api.plain_pg_dsn(os.environ["DATABASE_URL"]))
                await _api.drop_bench_state(pg, os.environ.get("REDIS_URL", ""), schema, prefix)

            asyncio.run(drop())
    for arm, figures in results.get("arms", {}).items():
        for run in figures["runs"]:
            knows = {k: v for k, v in run.items() if isinstance(v, dict) and "informed_share_of_others" in v}
            for name, v in knows.items():
                _api.log(f"{arm}: {name}: {v['informed']}/{v['agents']} informed ({v['informed_share_of_others']:.0%} of the others), "
                         f"{v['said']} said it in chat ({v['said_by_others']} not told it), {run['real_seconds']} s")
    print(orjson.dumps(results).decode(), flush=True)
    return 0 if "error" not in results else 1


if __name__ == "__main__":
    sys.exit(main())
