"""The HTML report of a society over a window: the scorecard with its plots (inline SVG drawn
here, no script, no external asset: the file opens anywhere, offline, and prints to PDF from
the browser with its print stylesheet), and the notable moments: first mentions of the
planted facts, breakthroughs, alerts, each with the words of its messages."""

from __future__ import annotations

from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from ..actions.context import Platform
from .diffusion import Fact
from .scorecard import compute

TEMPLATES = Path(__file__).resolve().parents[2] / "webui" / "templates"
COLOURS = ("#3558d8", "#e0641a", "#1f9d6b", "#b3396b", "#7a5bd6", "#9a7b12", "#2a8fa8", "#666666")


def _nice(top: float) -> float:
    if top <= 0:
        return 1.0
    for power in range(-3, 9):  # the smallest 1, 2 or 5 times a power of ten that reaches the top
        for step in (1, 2, 5):
            value = step * 10.0 ** power
            if value >= top:
                return value
    return top


def line_svg(title: str, labels: list[str], series: list[tuple[str, list[float | None]]], *, width: int = 640,
             height: int = 220, percent: bool = False) -> Markup:
    """A line chart as inline SVG with a <title>, axes, and a legend."""
    x0, y0, x1, y1 = 48, 16, width - 10, height - 28
    values = [v for _, vs in series for v in vs if v is not None]
    top = _nice(max(values, default=0.0))
    n = max(1, len(labels))

    def x(i: int) -> float:
        return x0 + (x1 - x0) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return y1 - (y1 - y0) * v / top

    fmt = (lambda v: f"{v * 100:.0f}%") if percent else (lambda v: f"{v:g}")
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for k in range(5):
        v = top * k / 4
        parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                     f'<text x="{x0 - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{escape(fmt(v))}</text>')
    step = max(1, n // 6)
    for i, label in enumerate(labels):
        if i % step == 0 or i == n - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="middle">{escape(label)}</text>')
    for k, (name, vs) in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        d, pen = [], False
        for i, v in enumerate(vs):
            if v is None:
                pen = False
                continue
            d.append(f"{'L' if pen else 'M'}{x(i):.1f},{y(v):.1f}")
            pen = True
        parts.append(f'<path d="{" ".join(d) or "M0,0"}" fill="none" stroke="{colour}" stroke-width="2"><title>{escape(name)}</title></path>')
    parts.append("</svg>")
    legend = "".join(f'<span class="key"><span class="swatch" style="background:{COLOURS[k % len(COLOURS)]}"></span>{escape(name)}</span>'
                     for k, (name, _) in enumerate(series))
    return Markup("".join(parts) + (f'<div class="legend">{legend}</div>' if len(series) > 1 else ""))


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def render(card: dict[str, Any]) -> str:
    clock = [p["t"][11:16] for p in card["activity"].get("series", [])]
    plots: list[tuple[str, Markup]] = []
    minutes = card["window"]["bucket_seconds"] / 60
    plots.append(("Activity (messages per minute)", line_svg("Activity", clock, [
        ("all members", [p["per_minute"] for p in card["activity"]["series"]]),
        ("agents", [p["agent_messages"] / minutes for p in card["activity"]["series"]])])))
    plots.append(("Sentiment (mean of the messages with any, -1..1, shifted by +1)", line_svg("Sentiment", clock, [
        ("sentiment + 1", [None if p["mean"] is None else p["mean"] + 1 for p in card["sentiment"]["series"]])])))
    for fact in card["diffusion"]:
        sim = [f"{p['sim_seconds'] / 60:.0f}′" for p in fact["curve"]]
        plots.append((f"Diffusion of “{fact['fact']}” over simulated minutes", line_svg(fact["fact"], sim, [
            ("members informed", [p["informed"] for p in fact["curve"]]), ("mentions", [p["mentions"] for p in fact["curve"]])])))
    topics = card["topics"].get("topics", [])
    if topics:
        plots.append(("Topics (share of the sampled messages)", line_svg("Topics", clock, [
            (t["label"], [p["share"] for p in t["series"]]) for t in topics[:8]], percent=True)))
    timeline = card["graph"].get("timeline", [])
    if len(timeline) > 1:
        plots.append(("Communities over the graph snapshots", line_svg("Communities", [t["t"][11:16] for t in timeline], [
            ("communities", [t["communities"] for t in timeline])])))
    return _environment().get_template("report.html").render(card=card, plots=plots, messages=card["messages"])


async def report(platform: Platform, guild_id: int, since: int | None = None, until: int | None = None,
                 facts: list[Fact] | None = None) -> str:
    return render(await compute(platform, guild_id, since, until, facts))
