"""Prefix-cache benchmark: the model server replaying agents' interleaved turns, with its per-prompt
KV cache (TOWNSQUARE_MODEL_PREFIX_CACHE_MB) on and off.

    .venv/bin/python bench/prefix_cache.py [--personas 25] [--turns 75] [--num-predict 40] [--threads N]
                                           [--cache-mb 256] [--max-seconds 140] [--json-only]

The prompts are the agents' own: townsquare.agents.turn.realise.chat_prompt for the first
--personas residents of the `city` society (persona, baseline mood shifted each turn, a few
remembered lines and ties that change every turn, their home channel and a transcript of recent
lines by the others), in rounds where every persona speaks once, in a seeded shuffled order, so
a persona's turns are always separated by others' (as 25 agents interleave in a society).

Each mode starts its own model server from the real CLI (`python -m townsquare.platform.cli model
serve --port P`, 127.0.0.1 only, stderr in a temporary log) with TOWNSQUARE_MODEL_PREFIX_CACHE_MB
set to --cache-mb ("on") or 0 ("off"), sends one warm-up chat (the model load, not counted),
then the --turns chats one after another (non-streaming /api/chat, greedy: temperature 0, top_k 1,
seed 7, so the two modes' replies can be compared), and stops the server. A mode ends early after
--max-seconds of turns. Figures per mode, from the server's replies:
  prompt_tokens         mean prompt size (prompt_eval_count)
  evaluated_per_turn    mean prompt tokens actually evaluated (prompt_eval_count - prompt_eval_cached_count)
  prompt_eval_ms_p50    median prompt_eval_duration (restore of a saved state included)
  reply_ms_p50          median eval_duration (the reply's tokens)
  turns_per_s           turns / wall time of the turns (HTTP round trips included)
and the same figures for the turns after the first round ("after_first_round": the steady state,
each persona's first turn has nothing to reuse in either mode).
Then "same_replies": the fraction of turns whose reply is the same in both modes.
Figures are printed as they come; the LAST line printed is one JSON object with everything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from townsquare.agents.mind.mood import Mood
from townsquare.agents.society.persona import load_society
from townsquare.agents.turn.plan import Heard, plan_reply
from townsquare.agents.turn.realise import Line, Scene, chat_prompt

MODEL = "smollm2:135m"
ROOT = Path(__file__).resolve().parent.parent
LINES = ["the ferry is late again", "anyone tried the new noodle place on Dock Street?", "rain all week, apparently",
         "the market moved to Saturday", "who left a bike by the bakery?", "gig at the Anchor tonight, come along",
         "my laptop died mid-build", "the mural on Pier 4 is finished", "long run along the harbour this morning",
         "the library has a chess night now", "power cut on the east side", "best coffee near the station?"]
TAILS = ["I waited forty minutes on the pier and nobody said a word about it.", "Honestly it made my whole morning.",
         "Does anyone know if it will last the whole summer?", "We should all go together one evening this week.",
         "I took photos, I'll post them later in the art channel.", "Not sure how I feel about it yet, to be fair."]
MEMORIES = ["{o} said the ferry timetable changed and the early boat now leaves at ten past six from the north pier",
            "{o} likes spicy food and recommended the stall next to the fish market on Saturdays",
            "the street fair is next month and the neighbourhood committee is still looking for volunteers",
            "{o} borrowed a book from you last week, a thick history of the harbour, and has not returned it",
            "the harbour lights were fixed after the storm, the whole east quay was dark for three nights",
            "{o} is learning the guitar and practises late at night, the walls in the ward are thin"]


def log(text: str, quiet: bool) -> None:
    if not quiet:
        print(text, flush=True)


def build_turns(personas: int, turns: int, seed: int) -> list[tuple[str, list[dict[str, str]]]]:
    society = load_society("city")
    residents = society.agents[:personas]
    names = [p.name for p in society.agents]
    channels = {c.name: c.topic for c in society.channels}
    rng = random.Random(seed)
    out: list[tuple[str, list[dict[str, str]]]] = []
    n = 0
    while len(out) < turns:
        order = list(residents)
        rng.shuffle(order)
        if out and order[0].name == out[-1][0]:  # never the same persona twice in a row
            order.append(order.pop(0))
        for persona in order:
            if len(out) == turns:
                break
            others = [x for x in names if x != persona.name]
            mood = Mood.baseline(persona.traits)
            mood = Mood(valence=max(-1.0, min(1.0, mood.valence + rng.uniform(-0.6, 0.6))),
                        arousal=rng.uniform(0.1, 0.9), energy=rng.uniform(0.2, 1.0))
            # as the worker builds a turn: 2 recalled memories (+1 per person present), up to 3 ties, 6 recent lines
            memories = [rng.choice(MEMORIES).format(o=rng.choice(others).split()[0]) for _ in range(rng.randint(2, 3))]
            ties = [f"{rng.choice(others)} is a {rng.choice(['friend', 'neighbour', 'rival'])}" for _ in range(rng.randint(0, 3))]
            said = [rng.choice(LINES) for _ in range(rng.randint(4, 6))]
            lines = [Line(rng.choice(others), f"{s}{'' if s.endswith('?') else '.'} {rng.choice(TAILS)}") for s in said]
            channel = (persona.home_channels or ["general"])[n % len(persona.home_channels or ["general"])]
            plan = plan_reply(persona, Heard(lines[-1].author, lines[-1].content, to_me=rng.random() < 0.3), seed=n, memories=memories)
            scene = Scene(society.guild, channel, channels.get(channel), tuple(lines), mood=mood.tone(), ties=tuple(ties))
            messages = list(chat_prompt(persona, plan, scene).messages)
            out.append((persona.name, messages))
            n += 1
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_mode(label: str, cache_mb: float, turns: list[tuple[str, list[dict[str, str]]]], args: argparse.Namespace,
             log_dir: Path) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "TOWNSQUARE_MODEL_PREFIX_CACHE_MB": str(cache_mb)}
    if args.threads:
        env["TOWNSQUARE_MODEL_THREADS"] = str(args.threads)
    log_path = log_dir / f"model-{label}.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "model", "serve", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    options = {"temperature": 0, "top_k": 1, "seed": 7, "num_predict": args.num_predict}
    replies: list[dict[str, Any]] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"model server exited: {log_path.read_text()[-2000:]}")
                try:
                    if http.get("/").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("model server did not start")
                time.sleep(0.2)
            http.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "Hello"}],
                                         "options": {**options, "num_predict": 2}, "stream": False}).raise_for_status()
            started = time.perf_counter()
            for i, (name, messages) in enumerate(turns):
                r = http.post("/api/chat", json={"model": MODEL, "messages": messages, "options": options, "stream": False})
                r.raise_for_status()
                body = r.json()
                replies.append({"persona": name, "text": body["message"]["content"], "prompt": body["prompt_eval_count"],
                                "cached": body.get("prompt_eval_cached_count", 0), "prompt_ns": body["prompt_eval_duration"],
                                "eval_ns": body["eval_duration"], "at": time.perf_counter() - started})
                if (i + 1) % 10 == 0:
                    log(f"  {label}: {i + 1} turns, {time.perf_counter() - started:.1f} s", args.json_only)
                if time.perf_counter() - started > args.max_seconds:
                    log(f"  {label}: --max-seconds reached after {i + 1} turns", args.json_only)
                    break
            wall = time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    def summary(part: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
        if not part:
            return {}
        return {"turns": len(part), "prompt_tokens": round(statistics.mean(r["prompt"] for r in part), 1),
                "evaluated_per_turn": round(statistics.mean(r["prompt"] - r["cached"] for r in part), 1),
                "prompt_eval_ms_p50": round(statistics.median(r["prompt_ns"] for r in part) / 1e6, 1),
                "reply_ms_p50": round(statistics.median(r["eval_ns"] for r in part) / 1e6, 1),
                "turns_per_s": round(len(part) / seconds, 3) if seconds > 0 else None}

    first_round = args.personas  # every persona's first turn: nothing saved yet in either mode
    later = replies[first_round:]
    figures = {"prefix_cache_mb": cache_mb, **summary(replies, wall), "wall_s": round(wall, 1),
               "after_first_round": summary(later, wall - replies[first_round - 1]["at"]) if later else {}}
    log(f"{label}: {json.dumps(figures)}", args.json_only)
    return {"figures": figures, "replies": replies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--personas", type=int, default=25, help="residents of the city society taking turns")
    parser.add_argument("--turns", type=int, default=75, help="turns replayed per mode")
    parser.add_argument("--num-predict", type=int, default=40, help="reply tokens at most")
    parser.add_argument("--threads", type=int, default=None, help="TOWNSQUARE_MODEL_THREADS (default: every core)")
    parser.add_argument("--cache-mb", type=float, default=256, help="TOWNSQUARE_MODEL_PREFIX_CACHE_MB of the 'on' mode")
    parser.add_argument("--max-seconds", type=float, default=140, help="a mode's turns end after this long")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.personas <= 25 or args.turns < 1 or args.cache_mb <= 0:
        parser.error("--personas is 1..25, --turns >= 1, --cache-mb > 0")
    turns = build_turns(args.personas, args.turns, args.seed)
    log(f"{len(turns)} turns of {args.personas} personas; cpu: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}", args.json_only)
    with tempfile.TemporaryDirectory(prefix="bench-prefix-") as tmp:
        on = run_mode("on", args.cache_mb, turns, args, Path(tmp))
        off = run_mode("off", 0, turns, args, Path(tmp))
    both = min(len(on["replies"]), len(off["replies"]))
    same = sum(on["replies"][i]["text"] == off["replies"][i]["text"] for i in range(both))
    result = {
        "bench": "prefix_cache", "personas": args.personas, "num_predict": args.num_predict, "threads": args.threads,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_end": round(os.getloadavg()[0], 2)},
        "on": on["figures"], "off": off["figures"],
        "same_replies": round(same / both, 3) if both else None,
        "speedup_turns_per_s": round(on["figures"]["turns_per_s"] / off["figures"]["turns_per_s"], 2),
        "speedup_after_first_round": (round(on["figures"]["after_first_round"]["turns_per_s"]
                                            / off["figures"]["after_first_round"]["turns_per_s"], 2)
                                      if on["figures"]["after_first_round"] and off["figures"]["after_first_round"] else None),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
