"""Dependencies shared by the routes, as `Annotated` aliases (FastAPI template style)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import Depends, Header, Path, Query, Request
from pydantic import Field

from ..actions.context import Platform
from ..actions.users import AuthUser, authenticate
from ..core.errors import Unauthorized
from ..core.logging import annotate_log_context
from ..core.snowflake import MAX_SNOWFLAKE
from .strictjson import check_text


async def get_platform(request: Request) -> Platform:
    return request.app.state.platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", request.url.path)


async def _rate_limit(request: Request, who: str) -> None:
    platform: Platform = request.app.state.platform
    if not platform.settings.rate_limits_enabled:
        return
    params = request.path_params
    major = str(params.get("channel_id") or params.get("guild_id") or "")
    verdict = await request.app.state.ratelimiter.hit(who=who, method=request.method, route=_route_template(request), major=major)
    request.state.ratelimit = verdict


async def current_user(request: Request, platform: PlatformDep,
                       authorization: Annotated[str | None, Header(include_in_schema=False)] = None) -> AuthUser:
    """`Authorization: Bot <token>` for bots, `Bearer <token>` for people; every authenticated
    request also counts against the caller's rate limits."""
    if not authorization:
        raise Unauthorized()
    scheme, _, token = authorization.partition(" ")
    if scheme not in ("Bot", "Bearer"):
        raise Unauthorized()
    user = await authenticate(platform, scheme, token.strip())
    annotate_log_context(user_id=str(user.id))  # the request's log lines and its access line
    await _rate_limit(request, f"t{user.token_id}")
    return user


async def anonymous_rate_limit(request: Request) -> None:
    client = request.client.host if request.client else "unknown"
    await _rate_limit(request, f"ip{client}")


Me = Annotated[AuthUser, Depends(current_user)]
AnonLimited = Depends(anonymous_rate_limit)

# Snowflakes in paths and queries: a bounded positive 64-bit integer, so hostile values
# ("1e999", "-1", 2**80) are a 400, never an overflow in PostgreSQL.
Snowflake = Annotated[int, Path(ge=0, le=MAX_SNOWFLAKE)]
OptSnowflakeQuery = Annotated[int | None, Query(ge=0, le=MAX_SNOWFLAKE)]
SnowflakeInt = Annotated[int, Field(ge=0, le=MAX_SNOWFLAKE)]  # ids inside bodies
SnowflakeListQuery = Annotated[list[SnowflakeInt], Query(max_length=100)]


async def audit_reason(x_audit_log_reason: Annotated[str | None, Header()] = None) -> str | None:
    if x_audit_log_reason is None:
        return None
    reason = unquote(x_audit_log_reason)[:512]
    check_text(reason, "X-Audit-Log-Reason")
    return reason


Reason = Annotated[str | None, Depends(audit_reason)]


def as_body(model: Any) -> dict[str, Any]:
    """The fields a client actually sent (PATCH semantics: absent != null)."""
    return model.model_dump(exclude_unset=True)
