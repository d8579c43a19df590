"""`townsquare export` and `townsquare report`: a society's window written as files or as an HTML
report (platform/analytics/)."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

T = TypeVar("T")


def _on_platform(work: Callable[[Any], Awaitable[T]]) -> T:
    """`work(platform)`; a domain error ends the command with its message (exit 1), not a traceback."""
    from ..core.errors import TownsquareError
    from .session import on_platform

    try:
        return on_platform(work)
    except TownsquareError as exc:
        typer.echo(f"error: {exc.message} {exc.errors or ''}".rstrip(), err=True)
        raise typer.Exit(1) from exc


def export(guild: Annotated[int, typer.Option("--guild", help="The society's guild id.")],
           out: Annotated[Path, typer.Option("--out", help="The folder to write (created if needed).")],
           format: Annotated[str, typer.Option("--format", help="parquet | csv | gexf | graphml")] = "parquet",
           since: Annotated[str | None, typer.Option(help="ISO time with a zone, or a snowflake (default: the society's founding).")] = None,
           until: Annotated[str | None, typer.Option(help="ISO time with a zone, or a snowflake (default: now).")] = None,
           fact: Annotated[list[str] | None, typer.Option(help="A planted fact for the scorecard: `keyword,keyword` or `label=keyword,...` (repeatable).")] = None,
           ) -> None:
    """Export a society's messages, reactions, relationships, graph snapshots, memories' metadata,
    LLM calls, interventions and scorecard series (parquet, csv), or its social graph (gexf, graphml)."""
    from ..analytics.export import export as run_export
    from ..analytics.scorecard import parse_facts
    from ..analytics.window import parse_bound

    manifest = _on_platform(lambda platform: run_export(platform, guild, format, out, parse_bound(since, "since"),
                                                        parse_bound(until, "until"), parse_facts(fact)))
    for name, entry in manifest["files"].items():
        typer.echo(f"{out / entry['file']}  {next(v for k, v in entry.items() if k != 'file')}")
    typer.echo(f"{out / 'manifest.json'}  ({manifest['seconds']} s)")


def report(guild: Annotated[int, typer.Option("--guild", help="The society's guild id.")],
           out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
           since: Annotated[str | None, typer.Option(help="ISO time with a zone, or a snowflake (default: the society's founding).")] = None,
           until: Annotated[str | None, typer.Option(help="ISO time with a zone, or a snowflake (default: now).")] = None,
           fact: Annotated[list[str] | None, typer.Option(help="A planted fact: `keyword,keyword` or `label=keyword,...` (repeatable).")] = None,
           ) -> None:
    """Write a society's HTML report over a window: plots, the scorecard, the notable moments (print it to PDF from a browser)."""
    from ..analytics.report import report as render_report
    from ..analytics.scorecard import parse_facts
    from ..analytics.window import parse_bound

    html = _on_platform(lambda platform: render_report(platform, guild, parse_bound(since, "since"), parse_bound(until, "until"),
                                                       parse_facts(fact)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    typer.echo(f"{out}  ({len(html)} bytes)")
