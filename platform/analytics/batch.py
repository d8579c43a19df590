"""The HTML report of a batch: every run of one `townsquare run` (its arms × repeats) in one file.
Per question, each arm's mean and spread and A - B with its 95% interval (the command's own
numbers: `compare_runs`), with every run's value as a dot; each planted fact's diffusion over
simulated time in every run, on one chart coloured by arm; the runs and their answers. Charts are
inline SVG in report.py's style (no script, nothing fetched; prints to PDF).

One run's scorecard is computed at a time and only its curves are kept: a batch of many large
runs costs the memory of one."""

from __future__ import annotations

import math
import time
from html import escape
from typing import Any

from markupsafe import Markup
from sqlalchemy import select

from ...agents.scenario.stats import answer, compare_runs
from ..actions.context import Platform
from ..actions.runs import run_object, run_scope
from ..core.errors import NotFound, UnknownBatch
from ..db.models import Run
from .report import COLOURS, _environment, _nice
from .scorecard import compute
from .window import iso, seconds_of

DASHES = ("", "6 3", "2 3", "8 3 2 3")  # repeats of one arm: one colour, a dash each


def _ticks(lo: float, hi: float) -> list[float]:
    """Round ticks 1, 2 or 5 times a power of ten apart, from 0 or below `lo` to `hi` or above (a
    share, a count, a sentiment below 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    step = _nice((hi - lo) / 4) if hi > lo else 1.0
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, 9) for k in range(first, max(last, first + 1) + 1)]


def _frame(title: str, width: int, height: int, ticks: list[float], box: tuple[int, int, int, int]) -> list[str]:
    """The <svg> opening, its title and the horizontal grid with its labels."""
    x0, y0, x1, y1 = box
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for k, v in enumerate(ticks):
        y = y1 - (y1 - y0) * k / (len(ticks) - 1)
        parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(f"{v:g}")}</text>')
    return parts


def dots_svg(title: str, arms: list[tuple[str, list[tuple[str, float]]]], *, width: int = 420, height: int = 180) -> Markup:
    """Every run's value as a dot in its arm's column, the arm's mean as a bar: the spread across repeats."""
    x0, y0, x1, y1 = 48, 12, width - 10, height - 24
    values = [v for _, runs in arms for _, v in runs]
    ticks = _ticks(min(values, default=0.0), max(values, default=0.0))

    def y(v: float) -> float:
        return y1 - (y1 - y0) * (v - ticks[0]) / (ticks[-1] - ticks[0])

    parts = _frame(title, width, height, ticks, (x0, y0, x1, y1))
    column = (x1 - x0) / max(1, len(arms))
    for k, (arm, runs) in enumerate(arms):
        colour, cx = COLOURS[k % len(COLOURS)], x0 + column * (k + 0.5)
        parts.append(f'<text x="{cx:.1f}" y="{height - 8}" text-anchor="middle">{escape(arm)}</text>')
        step = min(10.0, column * 0.6 / max(1, len(runs)))  # side by side, so that equal values stay countable
        for j, (label, v) in enumerate(runs):
            x = cx + (j - (len(runs) - 1) / 2) * step
            parts.append(f'<circle cx="{x:.1f}" cy="{y(v):.1f}" r="4" fill="{colour}" fill-opacity="0.75">'
                         f'<title>{escape(f"{label}: {v:.3f}")}</title></circle>')
        if runs:
            mean = sum(v for _, v in runs) / len(runs)
            half = min(column * 0.4, 10 + step * len(runs) / 2)
            parts.append(f'<line x1="{cx - half:.1f}" x2="{cx + half:.1f}" y1="{y(mean):.1f}" y2="{y(mean):.1f}" stroke="{colour}" '
                         f'stroke-width="2"><title>{escape(f"{arm} mean: {mean:.3f}")}</title></line>')
    parts.append("</svg>")
    return Markup("".join(parts))


def curves_svg(title: str, series: list[tuple[str, int, int, list[tuple[float, float]]]], *, width: int = 640,
               height: int = 240) -> Markup:
    """Lines over simulated seconds, one per run: (legend name, arm index, repeat index, points).
    Each run's end is a dot: its members informed in the end."""
    x0, y0, x1, y1 = 48, 16, width - 10, height - 28
    end = max((x for *_, pts in series for x, _ in pts), default=0.0)
    unit, symbol = (1, " s") if end <= 120 else (60, "′") if end <= 3 * 3600 else (3600, " h")
    across = _ticks(0.0, end / unit)
    up = _ticks(0.0, max((v for *_, pts in series for _, v in pts), default=0.0))

    def x(s: float) -> float:
        return x0 + (x1 - x0) * s / (across[-1] * unit)

    def y(v: float) -> float:
        return y1 - (y1 - y0) * v / up[-1]

    parts = _frame(title, width, height, up, (x0, y0, x1, y1))
    for v in across:
        anchor = "end" if v == across[-1] else "middle"  # the last one inside the frame
        parts.append(f'<text x="{x(v * unit):.1f}" y="{height - 8}" text-anchor="{anchor}">{v:g}{symbol}</text>')
    for name, arm, repeat, pts in series:
        colour, dash = COLOURS[arm % len(COLOURS)], DASHES[repeat % len(DASHES)]
        d = " ".join(f"{'L' if i else 'M'}{x(px):.1f},{y(py):.1f}" for i, (px, py) in enumerate(pts)) or "M0,0"
        parts.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "")
                     + f"><title>{escape(name)}</title></path>")
        if pts:
            px, py = pts[-1]
            parts.append(f'<circle cx="{x(px):.1f}" cy="{y(py):.1f}" r="3" fill="{colour}">'
                         f'<title>{escape(f"{name}: {py:g} informed by the end ({px / 60:.0f} simulated minutes)")}</title></circle>')
    parts.append("</svg>")
    legend = "".join(f'<span class="key"><svg class="dash" viewBox="0 0 24 6" aria-hidden="true"><line x1="0" x2="24" y1="3" y2="3" '
                     f'stroke="{COLOURS[arm % len(COLOURS)]}" stroke-width="2" '
                     f'stroke-dasharray="{DASHES[repeat % len(DASHES)] or "none"}"/></svg>{escape(name)}</span>'
                     for name, arm, repeat, _ in series)
    return Markup("".join(parts) + f'<div class="legend">{legend}</div>')


def _informed(fact: dict[str, Any], start: float, end: float, speed: float) -> list[tuple[float, float]]:
    """A fact's members informed over real seconds since the window's start, to its end. With every
    member's first mention linked, a step at each (a run at a high clock speed lasts few of the
    scorecard's minute-wide buckets); else the buckets."""
    if fact["informed"] <= len(fact["speakers"]):
        points = [(0.0, 0.0)]
        for k, first in enumerate(fact["speakers"]):
            at = seconds_of(int(first["message_id"])) - start
            points += [(at, float(k)), (at, float(k + 1))]
    else:
        points = [(p["sim_seconds"] / speed, float(p["informed"])) for p in fact["curve"]]
    return [*points, (end - start, float(fact["informed"]))]


async def _curves(platform: Platform, run_id: int) -> dict[str, list[tuple[float, float]]]:
    """A run's members-informed curve per planted fact, over the run's simulated seconds."""
    scope = await run_scope(platform, run_id)
    if not scope.facts:
        return {}
    card = await compute(platform, scope.guild_id, scope.since_id, scope.until_id, scope.facts, topic_sample=0)  # no topics: not shown
    window = card["window"]
    start, end, speed = seconds_of(int(window["since_id"])), seconds_of(int(window["until_id"])), window["sim_speed"] or 1.0
    run_speed = scope.sim_speed or speed  # the run's clock was its scenario's, not this server's
    return {fact["fact"]: [(t * run_speed, v) for t, v in _informed(fact, start, end, speed)] for fact in card["diffusion"]}


async def batch(platform: Platform, batch_id: int) -> dict[str, Any]:
    """What the report shows, as data."""
    async with platform.read() as conn:
        rows = (await conn.execute(select(Run).where(Run.batch_id == batch_id).order_by(Run.id))).all()
    if not rows:
        raise UnknownBatch()
    runs = [run_object(r) for r in rows]
    summary = compare_runs(runs)
    arms = list(dict.fromkeys(r["arm"] for r in runs))
    by_arm = {arm: sorted((r for r in runs if r["arm"] == arm), key=lambda r: r["repeat"]) for arm in arms}
    kinds = {a.get("name"): a.get("kind") for r in runs for a in (r["results"] or {}).get("questions", [])}

    def values(q: str, arm: str) -> list[tuple[str, float]]:  # the runs the summary counts: done, with a value
        done = [(f"{arm} #{r['repeat'] + 1}", answer(r["results"], q)) for r in by_arm[arm] if r["state"] == "done"]
        return [(label, float(v)) for label, v in done if v is not None]

    questions = [{"name": q, "kind": kinds.get(q), **entry, "plot": dots_svg(q, [(arm, values(q, arm)) for arm in arms])}
                 for q, entry in summary.items()]
    curves: dict[str, list[tuple[str, int, int, list[tuple[float, float]]]]] = {}
    notes: dict[str, str] = {}
    for r in runs:
        if r["guild_id"] is None:
            notes[r["id"]] = "no society (never founded, or deleted)"
            continue
        try:
            per_fact = await _curves(platform, int(r["id"]))
        except NotFound:  # its society was deleted since
            notes[r["id"]] = "society gone"
            continue
        for fact, points in per_fact.items():
            curves.setdefault(fact, []).append((f"{r['arm']} #{r['repeat'] + 1}", arms.index(r["arm"]), r["repeat"], points))
    diffusion = [{"fact": fact, "plot": curves_svg(f"Diffusion of {fact}", sorted(series, key=lambda s: (s[1], s[2])))}
                 for fact, series in curves.items()]
    return {"batch_id": str(batch_id), "scenario": " vs ".join(dict.fromkeys(r["name"] for r in runs)), "arms": arms, "runs": runs,
            "questions": questions, "diffusion": diffusion, "notes": notes, "generated_at": iso(time.time())}


def render(data: dict[str, Any]) -> str:
    return _environment().get_template("batch_report.html").render(b=data)


async def report(platform: Platform, batch_id: int) -> str:
    return render(await batch(platform, batch_id))
