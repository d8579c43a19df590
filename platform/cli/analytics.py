"""`townsquare export` and `townsquare report`: a society's window written as files or as an HTML
report, or a batch of scenario runs as one HTML report (platform/analytics/)."""

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


_GUILD = typer.Option("--guild", help="The society's guild id (or give --run).")
_RUN = typer.Option("--run", help="A scenario run (`townsquare run`): its society, window and planted facts, where not given.")


def _scoped(work: Callable[[Any, int, int | None, int | None, list[Any]], Awaitable[T]], guild: int | None, run: int | None,
            since: str | None, until: str | None, fact: list[str] | None) -> T:
    """`work(platform, guild, since, until, facts)` over the window asked for: bounds and facts as
    given, the run's where not."""
    from ..actions.runs import scoped
    from ..analytics.scorecard import parse_facts
    from ..analytics.window import parse_bound

    async def scoped_work(platform: Any) -> T:
        g, lo, hi, facts = await scoped(platform, guild, run, parse_bound(since, "since"), parse_bound(until, "until"),
                                        parse_facts(fact))
        return await work(platform, g, lo, hi, facts)

    return _on_platform(scoped_work)


def export(out: Annotated[Path, typer.Option("--out", help="The folder to write (created if needed).")],
           guild: Annotated[int | None, _GUILD] = None,
           format: Annotated[str, typer.Option("--format", help="parquet | csv | gexf | graphml")] = "parquet",
           since: Annotated[str | None, typer.Option(help="ISO time with a zone, or a snowflake (default: the society's founding).")] = None,
           until: Annotated[str | None, typer.Option(help="ISO time with a zone, or a snowflake (default: now).")] = None,
           fact: Annotated[list[str] | None, typer.Option(help="A planted fact for the scorecard: `keyword,keyword` or `label=keyword,...` (repeatable).")] = None,
           run: Annotated[int | None, _RUN] = None,
           ) -> None:
    """Export a society's messages, reactions, relationships, graph snapshots, memories' metadata,
    LLM calls, interventions and scorecard series (parquet, csv), or its social graph (gexf, graphml)."""
    from ..analytics.export import export as run_export

    manifest = _scoped(lambda platform, g, lo, hi, facts: run_export(platform, g, format, out, lo, hi, facts), guild, run, since, until, fact)
    for name, entry in manifest["files"].items():
        typer.echo(f"{out / entry['file']}  {next(v for k, v in entry.items() if k != 'file')}")
    typer.echo(f"{out / 'manifest.json'}  ({manifest['seconds']} s)")


def report(out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
           guild: Annotated[int | None, _GUILD] = None,
           since: Annotated[str | None, typer.Option(help="ISO time with a zone, or a snowflake (default: the society's founding).")] = None,
           until: Annotated[str | None, typer.Option(help="ISO time with a zone, or a snowflake (default: now).")] = None,
           fact: Annotated[list[str] | None, typer.Option(help="A planted fact: `keyword,keyword` or `label=keyword,...` (repeatable).")] = None,
           run: Annotated[int | None, _RUN] = None,
           batch: Annotated[int | None, typer.Option("--batch", help="Instead: a batch of runs (`townsquare run` prints its id), "
                                                                    "its arms side by side, each run over its own window.")] = None,
           ) -> None:
    """Write a society's HTML report over a window: plots, the scorecard, the notable moments (print it to PDF from a browser);
    or, with --batch, an A/B comparison's arms and repeats side by side."""
    from ..analytics.report import report as render_report

    if batch is not None:
        given = [name for name, value in (("--guild", guild), ("--run", run), ("--since", since), ("--until", until), ("--fact", fact))
                 if value not in (None, [])]
        if given:  # a batch's runs each have their own society, window and facts
            raise typer.BadParameter(f"--batch takes each run's own society, window and facts: "
                                     f"give --batch or {', '.join(given)}, not both")
        from ..analytics.batch import report as batch_report

        html = _on_platform(lambda platform: batch_report(platform, batch))
    else:
        html = _scoped(lambda platform, g, lo, hi, facts: render_report(platform, g, lo, hi, facts), guild, run, since, until, fact)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    typer.echo(f"{out}  ({len(html)} bytes)")
