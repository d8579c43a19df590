"""llama.cpp thread counts under contention: seconds per agent turn with 1 or 2 threads for
generation (`n_threads`) and prompt evaluation (`n_threads_batch`), with and without a CPU-bound
neighbour process taking one core.

    python bench/model_threads.py [--model PATH] [--turns 6] [--neighbour both|on|off]

Each turn: a fresh ~350-token society prompt (no prefix reuse) and 40 generated tokens. Bounded,
local only; the last line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _spin(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 31 + 7) % 1_000_003


def _prompt(i: int) -> str:
    lines = [f"Member{j % 5}: line {i}-{j} about the market, the bread, the weather and the old mill by the river." for j in range(12)]
    return "Chat log of Ashford Green, #general.\n" + "\n".join(lines) + "\nMaren Holt:"


def run(model: str, n_threads: int, n_batch: int, turns: int) -> dict[str, float]:
    """n_threads 0: chosen before each turn from the machine's load, as `model serve` does by default."""
    import llama_cpp
    from llama_cpp import Llama

    from townsquare.worker.modelserver.threads import ThreadChooser

    chooser = ThreadChooser() if n_threads == 0 else None
    llm = Llama(model_path=model, n_ctx=2048, n_threads=n_threads or 1, n_threads_batch=n_batch or 1, verbose=False)
    times, tokens, chosen = [], 0, []
    for i in range(turns):
        llm.reset()
        if chooser is not None:
            n = chooser.choose()
            llama_cpp.llama_set_n_threads(llm._ctx.ctx, n, n)
            chosen.append(n)
        started = time.perf_counter()
        out = llm.create_completion(_prompt(i), max_tokens=40, temperature=0.7, seed=i, stop=["\n"])
        times.append(time.perf_counter() - started)
        tokens += out["usage"]["completion_tokens"] + out["usage"]["prompt_tokens"]
    llm.close()
    return {"turn_p50_s": round(statistics.median(times), 3), "turn_max_s": round(max(times), 3),
            "tokens_per_s": round(tokens / sum(times), 1), **({"threads_chosen": chosen} if chosen else {})}


def main() -> None:
    from townsquare.worker.modelserver.models import bundled_gguf

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(bundled_gguf()))
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--neighbour", choices=["both", "on", "off"], default="both")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    for neighbour in (["off", "on"] if args.neighbour == "both" else [args.neighbour]):
        stop = multiprocessing.Event()
        spinner = multiprocessing.Process(target=_spin, args=(stop,), daemon=True) if neighbour == "on" else None
        if spinner:
            spinner.start()
        try:
            for n_threads, n_batch in ((1, 1), (2, 2), (1, 2), (0, 0)):
                key = f"neighbour_{neighbour}_threads_{n_threads or 'auto'}_batch_{n_batch or 'auto'}"
                results[key] = run(args.model, n_threads, n_batch, args.turns)
                print(key, results[key], flush=True)
        finally:
            if spinner:
                stop.set()
                spinner.join(5)
    print(json.dumps({"model": Path(args.model).name, "cores": os.cpu_count(), "load_1min": os.getloadavg()[0], **results}))


if __name__ == "__main__":
    main()
