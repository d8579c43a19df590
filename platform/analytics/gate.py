"""The quality gate's verdicts over the window, from the recorded LLM calls: every candidate
line of a conversational turn (tasks `reply` and `revive`) is a call, recorded `ok` when it
passed and `rejected` with `gate:<reason>` when the gate refused it (platform/core/metrics.py).

Rates are over candidates: self-naming (the gate's `self_address` and `self_reference`: an
agent addressing or naming itself) and wrong voice (a line in another member's voice)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..core.metrics import GATE_REASONS, gate_reason
from .source import Reader
from .window import Window

TASKS = ["reply", "revive"]
SELF_NAMING = ("self_address", "self_reference")

_CALLS = """
    SELECT agent_id, outcome, error, count(*) AS n FROM llm_calls
    WHERE guild_id = $1 AND id >= $2 AND id < $3 AND task = ANY($4::text[]) GROUP BY agent_id, outcome, error
"""


async def gate(reader: Reader, window: Window) -> tuple[dict[str, Any], dict[int, Counter[str]]]:
    """The scorecard's gate section, and each agent's rejections by reason (for the anomalies)."""
    by_reason: Counter[str] = Counter()
    per_agent: dict[int, Counter[str]] = {}
    candidates = passed = 0
    for r in await reader.fetch(_CALLS, window.guild_id, window.since_id, window.until_id, TASKS):
        n = int(r["n"])
        if r["outcome"] not in ("ok", "rejected"):
            continue  # the backend failed: no line to judge
        candidates += n
        reason = gate_reason(r["outcome"], r["error"])
        if reason is None:
            passed += n if r["outcome"] == "ok" else 0
            continue
        by_reason[reason] += n
        if r["agent_id"] is not None:
            per_agent.setdefault(r["agent_id"], Counter())[reason] += n

    def rate(x: int) -> float | None:
        return round(x / candidates, 4) if candidates else None

    naming = sum(by_reason[r] for r in SELF_NAMING)
    rejected = sum(by_reason.values())
    return {"candidates": candidates, "passed": passed, "rejected": rejected, "rejection_rate": rate(rejected),
            "by_reason": {reason: by_reason.get(reason, 0) for reason in (*GATE_REASONS, "other")},
            "self_naming": naming, "self_naming_rate": rate(naming),
            "wrong_voice": by_reason["wrong_voice"], "wrong_voice_rate": rate(by_reason["wrong_voice"])}, per_agent
