"""The two hottest routes, served without FastAPI's routing and dependency machinery.

`POST /api/v10/channels/{id}/messages` and `GET /api/v10/channels/{id}/messages` are most of a
society's traffic. FastAPI spends more CPU finding and wrapping them (router scan, dependency
solving, five middleware layers) than the send itself costs. This ASGI layer recognises the
plain, well-formed case and calls the very same pieces the FastAPI routes call
(`deps.current_user`, `_read_message_request`, the action layer, `errors.response_for`), so
authentication, rate limits, validation, errors and responses stay identical. Anything it does
not recognise (a malformed id, an unknown or repeated query parameter, another method) goes on
to FastAPI, which answers it as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..actions import messages
from ..core.snowflake import MAX_SNOWFLAKE
from .deps import current_user
from .errors import response_for
from .responses import FastJSONResponse
from .routes.messages import _read_message_request
from .strictjson import StrictJSONRequest

_PATH = re.compile(r"/api/v10/channels/([0-9]{1,20})/messages")
_ID = re.compile(r"[0-9]{1,20}")
_HISTORY_KEYS = frozenset({"before", "after", "around", "limit"})


@dataclass(frozen=True, slots=True)
class _Route:
    """What the access log, the metrics and the rate limiter read from scope["route"]: the template."""
    path: str


_ROUTE = _Route("/api/v10/channels/{channel_id}/messages")


def _history_query(raw: bytes) -> dict[str, int] | None:
    """before/after/around/limit as FastAPI would accept them, or None to let FastAPI answer."""
    try:
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, strict_parsing=False)
    except ValueError:
        return None
    query: dict[str, int] = {}
    for key, value in pairs:
        if key not in _HISTORY_KEYS or key in query or not _ID.fullmatch(value):
            return None
        query[key] = int(value)
    if any(v > MAX_SNOWFLAKE for v in query.values()) or not 1 <= query.get("limit", 50) <= 100:
        return None
    if sum(k in query for k in ("before", "after", "around")) > 1:
        return None
    return query


class HotRoutes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "POST"):
            await self.app(scope, receive, send)
            return
        match = _PATH.fullmatch(scope["path"])
        if match is None or int(match.group(1)) > MAX_SNOWFLAKE:
            await self.app(scope, receive, send)
            return
        query = _history_query(scope["query_string"]) if scope["method"] == "GET" else {}
        if query is None:
            await self.app(scope, receive, send)
            return
        channel_id = int(match.group(1))
        scope["route"] = _ROUTE
        scope["path_params"] = {"channel_id": str(channel_id)}
        request = StrictJSONRequest(scope, receive)
        try:
            response = await self._serve(request, channel_id, query)
        except StarletteHTTPException:
            raise  # a body over the limit: EdgeMiddleware answers it
        except Exception as exc:  # noqa: BLE001 - mapped exactly as FastAPI's handlers map it
            response = response_for(exc, scope["path"])
        await response(scope, receive, send)

    async def _serve(self, request: Request, channel_id: int, query: dict[str, int]) -> FastJSONResponse:
        platform = request.app.state.platform
        me = await current_user(request, platform, request.headers.get("authorization"))
        if request.method == "POST":
            new = await _read_message_request(request, platform, channel_id)
            return FastJSONResponse(await messages.do_send_message(platform, me, channel_id, new))
        page = await messages.get_history(platform, me.id, channel_id, before=query.get("before"), after=query.get("after"),
                                          around=query.get("around"), limit=query.get("limit", 50))
        return FastJSONResponse(page)
