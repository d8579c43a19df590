"""Sentence-embedding benchmark: throughput in batches, single-message latency, memory.

    .venv/bin/python bench/embed.py [--n 2000] [--batch 32] [--threads N] [--singles 300] [--fixed-256 200]
                                    [--stock] [--no-agreement]

Embeds --n varied chat-like sentences (generated from a fixed seed: greetings, one-liners,
questions, multi-sentence messages, a few long posts; 3 to ~200 tokens) with
townsquare.agents.brain.embed.Embedder (all-MiniLM-L6-v2 on onnxruntime, each batch padded to its
own longest input; by default the integer-matmul model derived from the packaged int8 file, with
--stock the packaged file as is, float32 matmuls), then --singles single-sentence calls (the latency an agent sees when
it embeds one incoming message). Everything runs in this process, on the CPU, offline.

Phases:
  load      building the Embedder (tokenizer + ONNX session; the first run on a machine also
            derives and caches the integer model: "derived_built" in the JSON)
  warm-up   a few calls, not counted
  batch     --n sentences through embed() (sorted by length, internal batches of at most --batch
            texts and --batch-tokens padded tokens); wall time and CPU time (all threads)
  single    --singles calls of embed_one() on random sentences: p50 / p90 / p99 latency
  fixed-256 (only with --fixed-256 K > 0) the trap for comparison: K sentences padded to 256
            tokens, as Chroma's stock ONNX function does; measured on a sample, since it is slow
  agreement (unless --no-agreement or --stock) the same --n sentences through the packaged model
            run as is: cosine of each vector with its counterpart (min / p1 / mean)

The machine's other load during the batch phase is reported as "other_cores": CPU time used by
all other processes (from /proc/stat) divided by the wall time, in cores.

Memory: resident set size after each phase (VmRSS) and the peak (VmHWM) from /proc/self/status;
"peak_rss_mib" is taken before the agreement phase (which loads the packaged model too).
Figures are printed as they come; the LAST line printed is one JSON object with everything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

import numpy as np

from townsquare.agents.brain.embed import Embedder

SUBJECTS = ["the bakery", "my tomatoes", "the night bus", "that new jazz club", "the council", "our bouldering gym",
            "the harbour festival", "the library", "my sourdough starter", "the derby", "this mural", "the rooftop garden",
            "the old mill", "my bike", "the food truck", "the reading circle", "the power cut", "the market"]
VERBS = ["is amazing", "was closed again", "needs volunteers", "keeps surprising me", "smells incredible",
         "is way too loud", "finally reopened", "was packed last night", "is getting expensive", "made my day"]
QUESTIONS = ["Anyone going to {s} this weekend?", "What do you all think about {s}?", "Has anyone tried {s} yet?",
             "Is {s} open on Sundays?", "Who else is worried about {s}?"]
SHORT = ["hi!", "lol", "good morning everyone", "same here", "thanks!", "see you there", "night all", "haha yes",
         "agreed", "no way", "", "ok", "brb", "congrats!!"]
FILLER = ("I was walking past earlier and stopped to chat with a few neighbours about it, and honestly everyone "
          "seems to have a different opinion, which is half the fun of living here")


def make_sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.random()
        s = rng.choice(SUBJECTS)
        if kind < 0.15:
            text = rng.choice(SHORT)
        elif kind < 0.45:
            text = f"{s[0].upper()}{s[1:]} {rng.choice(VERBS)}."
        elif kind < 0.70:
            text = rng.choice(QUESTIONS).format(s=s)
        elif kind < 0.95:
            text = " ".join(f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)}." for _ in range(rng.randint(2, 5)))
            text += " " + rng.choice(QUESTIONS).format(s=s)
        else:
            text = " ".join([FILLER] * rng.randint(2, 6)) + f". Anyway, {s} {rng.choice(VERBS)}."
        out.append(f"{text} #{i}" if text and rng.random() < 0.5 else text)  # mostly distinct strings
    return out


def memory() -> dict[str, float]:
    figures = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = round(int(value.split()[0]) / 1024, 1)  # MiB
    except OSError:  # not Linux
        import resource

        figures["VmHWM"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return figures


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes of the machine have used since boot (user + nice + system + irq
    + softirq + steal), from /proc/stat; None where there is no /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def fast_model_path_exists() -> bool:
    from townsquare.agents.brain.embed import default_cache_dir, default_model_path, fast_model_name

    try:
        return (default_cache_dir() / fast_model_name(default_model_path())).is_file()
    except Exception:  # noqa: BLE001 - the model is missing: Embedder() will say so
        return False


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="sentences in the batch phase")
    parser.add_argument("--batch", type=int, default=32, help="internal batch size (texts)")
    parser.add_argument("--batch-tokens", type=int, default=1024, help="internal batch size (padded tokens)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores)")
    parser.add_argument("--singles", type=int, default=300, help="single-sentence calls for the latency figures")
    parser.add_argument("--fixed-256", type=int, default=0, help="also time K sentences padded to 256 (the trap)")
    parser.add_argument("--spin", action="store_true", help="let onnxruntime threads spin between calls")
    parser.add_argument("--stock", action="store_true", help="run the packaged int8 file as is (float32 matmuls)")
    parser.add_argument("--no-agreement", action="store_true", help="skip the cosine check against the packaged model")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    result: dict[str, object] = {"python": platform.python_version(), "cpus": os.cpu_count(), "n": args.n,
                                 "batch": args.batch, "batch_tokens": args.batch_tokens, "memory_start_mib": memory()}
    sentences = make_sentences(args.n, args.seed)

    started = time.perf_counter()
    options = dict(threads=args.threads, batch_size=args.batch, max_batch_tokens=args.batch_tokens, spin=args.spin)
    derived_before = fast_model_path_exists()
    embedder = Embedder(fast=not args.stock, **options)
    result["load_s"] = round(time.perf_counter() - started, 3)
    result["model"] = embedder.model_path.name
    result["fast"] = embedder.fast
    result["derived_built"] = embedder.fast and not derived_before
    result["threads"] = embedder.threads
    result["memory_loaded_mib"] = memory()
    tokens = [len(e.ids) for e in embedder._tokenizer.encode_batch(sentences)]
    result["tokens"] = {"mean": round(statistics.mean(tokens), 1), "max": max(tokens), "total": sum(tokens)}
    print(f"load {result['load_s']} s, {embedder.threads} threads, model {embedder.model_path.name}; "
          f"{args.n} sentences, tokens mean {result['tokens']['mean']} max {result['tokens']['max']}", flush=True)

    for _ in range(3):  # warm-up
        embedder.embed(sentences[:64])
        embedder.embed_one(sentences[0])

    busy_started = machine_busy_seconds()
    started, cpu_started = time.perf_counter(), time.process_time()
    vectors = embedder.embed(sentences)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if busy_started is not None and (busy := machine_busy_seconds()) is not None:
        result["other_cores"] = round(max(0.0, busy - busy_started - cpu) / elapsed, 2)
    assert vectors.shape == (args.n, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    result["batch_s"] = round(elapsed, 3)
    result["sentences_per_s"] = round(args.n / elapsed, 1)
    result["tokens_per_s"] = round(sum(tokens) / elapsed)
    result["cpu_ms_per_sentence"] = round(cpu * 1000 / args.n, 2)  # CPU time (all threads): robust to a busy machine
    result["load_average"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result["memory_batch_mib"] = memory()
    print(f"batch: {args.n} sentences in {elapsed:.2f} s = {result['sentences_per_s']} sentences/s "
          f"({result['tokens_per_s']} tokens/s, {result['cpu_ms_per_sentence']} CPU-ms/sentence, "
          f"load average {result['load_average']}, other processes {result.get('other_cores')} cores); "
          f"RSS {result['memory_batch_mib']}", flush=True)

    rng = random.Random(args.seed + 1)
    latencies = []
    for _ in range(args.singles):
        text = rng.choice(sentences)
        started = time.perf_counter()
        embedder.embed_one(text)
        latencies.append((time.perf_counter() - started) * 1000)
    short = [t for t in sentences if len(t) < 80]
    short_latencies = []
    for _ in range(args.singles):
        text = rng.choice(short)
        started = time.perf_counter()
        embedder.embed_one(text)
        short_latencies.append((time.perf_counter() - started) * 1000)
    result["single_ms"] = {"p50": round(percentile(latencies, 50), 2), "p90": round(percentile(latencies, 90), 2),
                           "p99": round(percentile(latencies, 99), 2), "max": round(max(latencies), 2)}
    result["single_short_ms"] = {"p50": round(percentile(short_latencies, 50), 2),
                                 "p90": round(percentile(short_latencies, 90), 2)}
    print(f"single: p50 {result['single_ms']['p50']} ms, p90 {result['single_ms']['p90']} ms, "
          f"p99 {result['single_ms']['p99']} ms; short messages (<80 chars) p50 {result['single_short_ms']['p50']} ms",
          flush=True)

    if args.fixed_256 > 0:
        sample = sentences[: args.fixed_256]
        encodings = embedder._tokenizer.encode_batch(sample)
        started = time.perf_counter()
        for start in range(0, len(sample), args.batch):
            chunk = encodings[start:start + args.batch]
            ids = np.zeros((len(chunk), 256), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, e in enumerate(chunk):
                ids[row, :len(e.ids)] = e.ids
                mask[row, :len(e.ids)] = 1
            embedder._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
        elapsed = time.perf_counter() - started
        result["fixed_256_sentences_per_s"] = round(len(sample) / elapsed, 1)
        started = time.perf_counter()
        one = np.zeros((1, 256), dtype=np.int64)
        e = encodings[0]
        one[0, :len(e.ids)] = e.ids
        m = (one != 0).astype(np.int64)
        for _ in range(10):
            embedder._session.run(None, {"input_ids": one, "attention_mask": m, "token_type_ids": np.zeros_like(one)})
        result["fixed_256_single_ms"] = round((time.perf_counter() - started) * 100, 2)
        result["memory_fixed_256_mib"] = memory()
        print(f"fixed-256 (the trap): {result['fixed_256_sentences_per_s']} sentences/s, "
              f"single {result['fixed_256_single_ms']} ms; RSS {result['memory_fixed_256_mib']}", flush=True)

    result["memory_end_mib"] = memory()
    result["peak_rss_mib"] = result["memory_end_mib"].get("VmHWM")  # before the agreement phase's second model

    if embedder.fast and not args.no_agreement:
        reference = Embedder(fast=False, **options).embed(sentences)
        agreement = np.sum(vectors * reference, axis=1)
        result["cosine_vs_packaged"] = {"min": round(float(agreement.min()), 4),
                                        "p1": round(float(np.percentile(agreement, 1)), 4),
                                        "mean": round(float(agreement.mean()), 5)}
        print(f"agreement with the packaged model: cosine min {result['cosine_vs_packaged']['min']}, "
              f"p1 {result['cosine_vs_packaged']['p1']}, mean {result['cosine_vs_packaged']['mean']}", flush=True)

    print(json.dumps(result))


if __name__ == "__main__":
    main()
