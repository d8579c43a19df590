"""The society's social graph for the dashboard (`/api/v10/townsquare/graph`, instance
administrators only): the live graph with its layout, the snapshot timeline, one member's
metrics over time, and on-demand snapshots taken by the rq worker."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from ...actions import graph
from ...core.snowflake import MAX_SNOWFLAKE
from ..bodies import Body
from ..deps import Me, OptSnowflakeQuery, PlatformDep, Snowflake, SnowflakeInt
from ..responses import FastJSONResponse
from ..strictjson import StrictJSONRoute

router = APIRouter(prefix="/api/v10/townsquare/graph", route_class=StrictJSONRoute)

GuildQuery = Annotated[int, Query(ge=0, le=MAX_SNOWFLAKE)]  # required: a graph is one society's
Limit = Query(default=50, ge=1, le=200)
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class SnapshotBody(Body):
    guild_id: SnowflakeInt


@router.get("")
async def current_graph(guild_id: GuildQuery, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await graph.current_graph(platform, me, guild_id)


@router.get("/snapshots")
async def list_snapshots(guild_id: GuildQuery, me: Me, platform: PlatformDep, before: OptSnowflakeQuery = None,
                         limit: int = Limit) -> list[dict[str, Any]]:
    return await graph.list_snapshots(platform, me, guild_id, before, limit)


@router.post("/snapshots", status_code=202)
async def request_snapshot(body: SnapshotBody, me: Me, platform: PlatformDep) -> FastJSONResponse:
    """Queued for the rq worker (202); poll `GET /snapshots/jobs/{job_id}` for the snapshot's id."""
    queued = await graph.request_snapshot(platform, me, body.guild_id)
    return FastJSONResponse(queued, status_code=202, headers={"Location": f"{router.prefix}/snapshots/jobs/{queued['job_id']}"})


@router.get("/snapshots/jobs/{job_id}")
async def snapshot_job(job_id: JobId, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await graph.snapshot_job(platform, me, job_id)


@router.get("/snapshots/{snapshot_id}")
async def get_snapshot(snapshot_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await graph.get_snapshot(platform, me, snapshot_id)


@router.get("/members/{user_id}")
async def member_metrics(user_id: Snowflake, guild_id: GuildQuery, me: Me, platform: PlatformDep,
                         before: OptSnowflakeQuery = None, limit: int = Limit) -> dict[str, Any]:
    return await graph.member_metrics(platform, me, guild_id, user_id, before, limit)
