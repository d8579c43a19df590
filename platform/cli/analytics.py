"""`townsquare export`: a society's window written as files (platform/analytics/export.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer


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
    from ..core.config import get_settings
    from ..core.errors import TownsquareError
    from ..services.embedded import resolve_services

    settings = get_settings()
    services = resolve_services(settings)

    async def main() -> Any:
        from ..api.app import build_platform, close_platform

        platform = await build_platform(settings, services.database_url, services.redis_url)
        try:
            return await run_export(platform, guild, format, out, parse_bound(since, "since"), parse_bound(until, "until"),
                                    parse_facts(fact))
        finally:
            await close_platform(platform)

    try:
        manifest = asyncio.run(main())
    except TownsquareError as exc:
        typer.echo(f"error: {exc.message} {exc.errors or ''}".rstrip(), err=True)
        raise typer.Exit(1) from exc
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
    from ..core.config import get_settings
    from ..core.errors import TownsquareError
    from ..services.embedded import resolve_services

    settings = get_settings()
    services = resolve_services(settings)

    async def main() -> str:
        from ..api.app import build_platform, close_platform

        platform = await build_platform(settings, services.database_url, services.redis_url)
        try:
            return await render_report(platform, guild, parse_bound(since, "since"), parse_bound(until, "until"), parse_facts(fact))
        finally:
            await close_platform(platform)

    try:
        html = asyncio.run(main())
    except TownsquareError as exc:
        typer.echo(f"error: {exc.message} {exc.errors or ''}".rstrip(), err=True)
        raise typer.Exit(1) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    typer.echo(f"{out}  ({len(html)} bytes)")
