"""The admin dashboard's own reads (`/api/v10/townsquare/dashboard/...`, instance administrators
only): overview, agents with their live status, channel activity, logs and configuration. The
rest of the dashboard uses the public API and the other townsquare routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field, StringConstraints

from ...actions import dashboard
from ...actions.agents import require_admin
from ...core.errors import InvalidFormBody
from ..bodies import Body
from ..deps import Me, OptSnowflakeQuery, PlatformDep, Reason, Snowflake
from ..strictjson import StrictJSONRoute, check_text

router = APIRouter(prefix="/api/v10/townsquare/dashboard", route_class=StrictJSONRoute)

MAX_BUCKETS = 500  # points per channel line: enough for a chart, bounded for the query
YEAR_3000 = 32_503_680_000  # seconds: later times are a client's mistake


class SocietyBody(Body):
    revival_topics: Annotated[list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]],
                              Field(max_length=50)]


@router.get("/overview")
async def overview(me: Me, platform: PlatformDep, guild_id: OptSnowflakeQuery = None,
                   minutes: int = Query(default=60, ge=5, le=1440)) -> dict[str, Any]:
    return await dashboard.overview(platform, me, guild_id, minutes)


AGENTS_PAGE_MAX = 1000  # agents per page of the dashboard's list (as guild members are listed)


@router.get("/agents")
async def agents(me: Me, platform: PlatformDep, guild_id: OptSnowflakeQuery = None, after: OptSnowflakeQuery = None,
                 limit: int = Query(default=100, ge=1, le=AGENTS_PAGE_MAX)) -> list[dict[str, Any]]:
    """A page of agents by id, Discord style (as `GET /guilds/{id}/members`): those with an id
    above `after`, at most `limit` (1-1000, default 100); the next page starts after the last id."""
    return await dashboard.agents_live(platform, me, guild_id, after=after, limit=limit)


@router.get("/channels/activity")
async def channel_activity(me: Me, platform: PlatformDep, guild_id: Annotated[int, Query(ge=0, le=(1 << 63) - 1)],
                           minutes: int = Query(default=360, ge=10, le=10080),
                           bucket_minutes: int = Query(default=15, ge=1, le=1440)) -> dict[str, Any]:
    require_admin(me)
    if -(-minutes // bucket_minutes) > MAX_BUCKETS:
        raise InvalidFormBody.field("bucket_minutes", "NUMBER_TYPE_MIN", f"At most {MAX_BUCKETS} buckets: use larger buckets.")
    return await dashboard.channel_activity(platform, me, guild_id, minutes, bucket_minutes)


@router.get("/logs")
async def logs(me: Me, platform: PlatformDep, level: Literal["debug", "info", "warning", "error", "critical"] | None = None,
               logger: str | None = Query(default=None, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$"),
               q: str | None = Query(default=None, min_length=1, max_length=200),
               since: datetime | None = None, until: datetime | None = None,
               before: str | None = Query(default=None, max_length=32, pattern=r"^[0-9]{1,15}-[0-9]{1,10}$"),
               limit: int = Query(default=100, ge=1, le=500)) -> dict[str, Any]:
    """Newest first, from every process (see core/logstore.py); page with `before=next_before`."""
    require_admin(me)
    if q is not None:
        check_text(q, "q")
    if before is not None and not any(int(part) for part in before.split("-")):
        # the pattern bounds both parts below 2**64; 0-0 is the one id with nothing before it (Redis refuses "(0-0")
        raise InvalidFormBody.field("before", "BASE_TYPE_BAD_ID", "Not a log record id: nothing comes before 0-0.")
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidFormBody.field(name, "DATE_TYPE_TIMEZONE", "Give a time zone (e.g. 2026-01-01T10:00:00Z).")
        if moment is not None and not 0 <= moment.timestamp() < YEAR_3000:
            raise InvalidFormBody.field(name, "DATE_TYPE_PARSE", "Out of range.")
    return await dashboard.query_logs(platform, me, level=level, logger=logger, q=q, since=since, until=until,
                                      before=before, limit=limit)


@router.get("/config")
async def config(me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await dashboard.configuration(platform, me)


@router.patch("/societies/{guild_id}")
async def update_society(guild_id: Snowflake, body: SocietyBody, me: Me, platform: PlatformDep, reason: Reason) -> dict[str, Any]:
    require_admin(me)
    check_text(body.revival_topics, "revival_topics")
    return await dashboard.do_update_society(platform, me, guild_id, list(body.revival_topics), reason)
