"""Society-wide counters of the agent workers (turns, LLM calls, tokens, fallbacks, quality-gate
rejections by reason), kept in one Redis hash so that a scrape of any server instance's /metrics
sees the figures of every worker and rq job, across restarts of any of them.

Why Redis and not the recorded rows: `llm_calls` and `agent_turns` grow without bound (until the
retention job prunes them, which would also make counters go backwards), and aggregating them
at every scrape means scanning them. Workers already flush their records in batches once a
second; the same batch increments a few hash fields (one pipeline, no round trip per call).

A field is a JSON array `[metric, [label, value, ...], part, le]` where part is `b` (one
histogram bucket, not cumulative: the reader sums them), `sum` or `n` (a plain counter).
Label values are code constants (outcomes, triggers) and backend names from the routing
file, so the hash stays small (labels x buckets)."""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

log = logging.getLogger(__name__)

# Why the quality gate rejected a candidate reply: an LLM call the gate rejected is recorded with
# outcome "rejected" and error "gate:<reason>". The known reasons are the counter's label values
# (anything else counts as "other", so the label set stays bounded).
GATE_REASONS = ("wrong_voice", "self_reference", "self_address", "assistant_speak", "recital", "parrot", "off_topic",
                "invented_fact", "loop", "unfinished", "empty")
GATE_PREFIX = "gate:"


def gate_reason(outcome: Any, error: Any) -> str | None:
    """The gate's reason of a rejected LLM call ("other" when unknown); None for any other call."""
    if outcome != "rejected" or not isinstance(error, str) or not error.startswith(GATE_PREFIX):
        return None
    reason = error[len(GATE_PREFIX):].strip()
    return reason if reason in GATE_REASONS else "other"


LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
TURN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 45.0, 90.0)
BUCKETS = {"llm_call_seconds": LLM_BUCKETS, "agent_turn_seconds": TURN_BUCKETS}


def metrics_key(prefix: str) -> str:
    return f"{prefix}metrics"


def _field(metric: str, labels: Iterable[tuple[str, str]], part: str, le: str = "") -> str:
    flat = [str(x) for pair in labels for x in pair]
    return orjson.dumps([metric, flat, part, le]).decode()


def _observe(ints: Counter[str], floats: Counter[str], metric: str, labels: list[tuple[str, str]], value: float) -> None:
    buckets = BUCKETS[metric]
    i = bisect_left(buckets, value)
    le = repr(buckets[i]) if i < len(buckets) else "+Inf"
    ints[_field(metric, labels, "b", le)] += 1
    floats[_field(metric, labels, "sum")] += value


def tally(calls: list[dict[str, Any]], turns: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str]]:
    """The hash increments for a batch of LLM-call and turn records (the rows' own dicts)."""
    ints: Counter[str] = Counter()
    floats: Counter[str] = Counter()
    for c in calls:
        backend = str(c["backend"])
        _observe(ints, floats, "llm_call_seconds", [("backend", backend), ("outcome", str(c["outcome"]))], c["latency_ms"] / 1000)
        ints[_field("llm_tokens", [("backend", backend), ("kind", "prompt")], "n")] += int(c.get("prompt_tokens") or 0)
        ints[_field("llm_tokens", [("backend", backend), ("kind", "completion")], "n")] += int(c.get("completion_tokens") or 0)
        if int(c.get("fallback_step") or 0) > 0:  # the chain went past its first backend to get here
            ints[_field("llm_fallbacks", [("backend", backend)], "n")] += 1
        reason = gate_reason(c.get("outcome"), c.get("error"))
        if reason is not None:
            ints[_field("gate_rejections", [("reason", reason)], "n")] += 1
    for t in turns:
        _observe(ints, floats, "agent_turn_seconds", [("trigger", str(t["trigger"])), ("outcome", str(t["outcome"]))],
                 int(t.get("total_ms") or 0) / 1000)
    return ints, floats


async def count_records(redis: Any, prefix: str, calls: list[dict[str, Any]], turns: list[dict[str, Any]]) -> None:
    """Adds a recorded batch to the society's counters. Never raises: a metrics hiccup must not
    fail a worker's flush (the rows are the record; the counters are for dashboards)."""
    if not calls and not turns:
        return
    ints, floats = tally(calls, turns)
    key = metrics_key(prefix)
    try:
        pipe = redis.pipeline(transaction=False)
        for field, n in ints.items():
            if n:
                pipe.hincrby(key, field, n)
        for field, x in floats.items():
            pipe.hincrbyfloat(key, field, x)
        await pipe.execute()
    except Exception as exc:  # noqa: BLE001 - see above
        log.warning("metrics counters not updated: %s", type(exc).__name__)


def parse_counters(raw: dict[bytes, bytes]) -> dict[str, dict[tuple[tuple[str, str], ...], dict[str, Any]]]:
    """HGETALL's answer as {metric: {labels: {"buckets": {le: n}, "sum": x, "n": n}}}; foreign
    or malformed fields are skipped (the hash is ours, but a reader must not fail a scrape)."""
    out: dict[str, dict[tuple[tuple[str, str], ...], dict[str, Any]]] = {}
    for field, value in raw.items():
        try:
            metric, flat, part, le = orjson.loads(field)
            labels = tuple(zip(flat[0::2], flat[1::2], strict=True))
            number = float(value)
        except (ValueError, TypeError, orjson.JSONDecodeError):
            continue
        entry = out.setdefault(metric, {}).setdefault(labels, {"buckets": {}, "sum": 0.0, "n": 0.0})
        if part == "b":
            entry["buckets"][le] = entry["buckets"].get(le, 0.0) + number
        elif part == "sum":
            entry["sum"] += number
        elif part == "n":
            entry["n"] += number
    return out
