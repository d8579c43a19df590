"""Repeats and arms: each question's mean and spread across repeats, and the difference between
two arms with a 95% interval (a percentile bootstrap of the difference of means: it assumes
nothing about the shape of a share or a sentiment, and a fixed seed makes it reproducible)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

BOOTSTRAP = 2000


def summary(values: Sequence[float | None]) -> dict[str, Any]:
    """mean, sample standard deviation, min, max and n over the repeats that had a value."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return {"n": 0, "mean": None, "sd": None, "min": None, "max": None}
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return {"n": len(xs), "mean": mean, "sd": sd, "min": min(xs), "max": max(xs)}


def difference(a: Sequence[float | None], b: Sequence[float | None], *, level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """mean(a) - mean(b) with a bootstrap interval. With one repeat per arm the interval is the
    point itself (no spread is known): `method` says so."""
    xa = [float(v) for v in a if v is not None]
    xb = [float(v) for v in b if v is not None]
    if not xa or not xb:
        return {"diff": None, "low": None, "high": None, "level": level, "method": "none"}
    diff = sum(xa) / len(xa) - sum(xb) / len(xb)
    if len(xa) < 2 and len(xb) < 2:
        return {"diff": diff, "low": diff, "high": diff, "level": level, "method": "single repeat: no interval"}
    rng = random.Random(seed)
    draws = sorted(sum(rng.choices(xa, k=len(xa))) / len(xa) - sum(rng.choices(xb, k=len(xb))) / len(xb) for _ in range(BOOTSTRAP))
    lo = draws[int((1 - level) / 2 * (BOOTSTRAP - 1))]
    hi = draws[int((1 + level) / 2 * (BOOTSTRAP - 1))]
    return {"diff": diff, "low": lo, "high": hi, "level": level, "method": f"bootstrap ({BOOTSTRAP} resamples)"}


def answer(results: dict[str, Any] | None, question: str) -> float | None:
    """A run's value for a question (None: not asked, or no value)."""
    return next((a.get("value") for a in (results or {}).get("questions", []) if a.get("name") == question), None)


def compare_arms(questions: Sequence[str], per_arm: dict[str, list[dict[str, Any]]], *, seed: int) -> dict[str, Any]:
    """Per question: each arm's summary over its repeats (their results) and, with two arms, the
    first arm minus the second (A - B) with an interval."""
    out: dict[str, Any] = {}
    labels = list(per_arm)
    for q in questions:
        values = {arm: [answer(r, q) for r in results] for arm, results in per_arm.items()}
        entry: dict[str, Any] = {"arms": {arm: summary(v) for arm, v in values.items()}}
        if len(labels) == 2:
            entry["difference"] = {"of": f"{labels[0]} - {labels[1]}", **difference(values[labels[0]], values[labels[1]], seed=seed)}
        out[q] = entry
    return out


def compare_runs(runs: Sequence[dict[str, Any]], questions: Sequence[str] | None = None) -> dict[str, Any]:
    """`compare_arms` over a batch's run records in id order (`run_object`): arms in the order they
    first ran (A first), only runs that ended `done`, the bootstrap seeded by the first run's seed
    (A's first repeat), so that the command's summary and the batch report agree to the digit.
    Questions: the given ones, else every one answered, in order."""
    per_arm: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        per_arm.setdefault(r["arm"], [])
        if r["state"] == "done":
            per_arm[r["arm"]].append(r["results"] or {})
    if questions is None:
        names = (a.get("name") for r in runs for a in (r["results"] or {}).get("questions", []))
        questions = list(dict.fromkeys(n for n in names if isinstance(n, str)))
    return compare_arms(questions, per_arm, seed=runs[0]["seed"] if runs else 0)
