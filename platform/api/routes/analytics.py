"""A society's analytics (instance administrators): the scorecard over a window and the
exports as a zip, streamed. A window is `since` / `until`, each an ISO time with a zone or a
snowflake; both default to the society's founding and now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import HTMLResponse, StreamingResponse

from ...actions import runs
from ...actions.agents import require_admin
from ...analytics import export as exports
from ...analytics.report import report as render_report
from ...analytics.scorecard import compute, parse_facts
from ...analytics.window import parse_bound
from ...core.errors import InvalidFormBody
from ..deps import Me, PlatformDep, Snowflake
from ..strictjson import StrictJSONRoute, check_text

router = APIRouter(prefix="/api/v10/townsquare/societies", route_class=StrictJSONRoute)

Bound = Annotated[str | None, Query(max_length=40)]
Facts = Annotated[list[str] | None, Query(max_length=10, description="a planted fact: `keyword,keyword` or `label=keyword,keyword`")]
Format = Annotated[str, Query(description="parquet | csv | gexf | graphml")]


RunId = Annotated[str | None, Query(max_length=20, description="a scenario run of this society: its window and planted facts "
                                                                 "(where `since`, `until`, `fact` are not given)")]


async def _scope(platform: Any, guild_id: int, run: str | None, since: str | None, until: str | None,
                 fact: list[str] | None) -> tuple[int | None, int | None, list[Any]]:
    if fact:
        check_text(fact, "fact")
    run_id = None
    if run is not None:
        if not (run.isascii() and run.isdigit()):
            raise InvalidFormBody.field("run", "NUMBER_TYPE_COERCE", "A run id (a snowflake).")
        run_id = int(run)
    _, lo, hi, facts = await runs.scoped(platform, guild_id, run_id, parse_bound(since, "since"), parse_bound(until, "until"),
                                         parse_facts(fact))
    return lo, hi, facts


@router.get("/{guild_id}/scorecard")
async def scorecard(guild_id: Snowflake, me: Me, platform: PlatformDep, since: Bound = None, until: Bound = None,
                    fact: Facts = None, run: RunId = None) -> dict[str, Any]:
    """Activity, conversation, text quality, the gate, diffusion of the given facts, the graph,
    sentiment, topics, alerts and breakthroughs over the window."""
    require_admin(me)
    lo, hi, facts = await _scope(platform, guild_id, run, since, until, fact)
    return await compute(platform, guild_id, lo, hi, facts)


@router.get("/{guild_id}/export",
            responses={200: {"description": "A zip of the export", "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}})
async def export(guild_id: Snowflake, me: Me, platform: PlatformDep, format: Format = "parquet", since: Bound = None,
                 until: Bound = None, fact: Facts = None, run: RunId = None) -> StreamingResponse:
    """A zip of the window's tables (parquet, csv) or social graphs (gexf, graphml), streamed."""
    require_admin(me)
    exports.check_format(format)
    lo, hi, facts = await _scope(platform, guild_id, run, since, until, fact)
    name, chunks = await exports.export_zip(platform, guild_id, format, lo, hi, facts)
    return StreamingResponse(chunks, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'})


# the report is a self-contained file: inline styles and SVG, no script, nothing fetched
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


@router.get("/{guild_id}/report",
            responses={200: {"description": "The report, one HTML file", "content": {"text/html": {"schema": {"type": "string"}}}}})
async def report(guild_id: Snowflake, me: Me, platform: PlatformDep, since: Bound = None, until: Bound = None,
                 fact: Facts = None, download: bool = False, run: RunId = None) -> HTMLResponse:
    """The HTML report of the window (plots, scorecard, notable moments; printable to PDF)."""
    require_admin(me)
    lo, hi, facts = await _scope(platform, guild_id, run, since, until, fact)
    return report_response(await render_report(platform, guild_id, lo, hi, facts), f"townsquare-{guild_id}-report.html", download)


def report_response(html: str, filename: str, download: bool) -> HTMLResponse:
    """A report as served (the society's, a batch's): locked down, never cached, a file to save when asked."""
    headers = {"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return HTMLResponse(html, headers=headers)
