"""The one place where domain errors and framework errors become HTTP responses in Discord's
JSON error shape."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from .responses import FastJSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from sqlalchemy.exc import DBAPIError

from ..core.errors import RateLimited, TownsquareError
from .strictjson import DomainHTTPException

log = logging.getLogger(__name__)

_PYDANTIC_CODES = {
    "missing": "BASE_TYPE_REQUIRED",
    "string_too_long": "BASE_TYPE_MAX_LENGTH",
    "string_too_short": "BASE_TYPE_MIN_LENGTH",
    "too_long": "BASE_TYPE_MAX_LENGTH",
    "too_short": "BASE_TYPE_MIN_LENGTH",
    "int_parsing": "NUMBER_TYPE_COERCE",
    "int_type": "NUMBER_TYPE_COERCE",
    "less_than_equal": "NUMBER_TYPE_MAX",
    "greater_than_equal": "NUMBER_TYPE_MIN",
    "less_than": "NUMBER_TYPE_MAX",
    "greater_than": "NUMBER_TYPE_MIN",
    "string_type": "BASE_TYPE_STRING",
    "bool_type": "BASE_TYPE_BOOLEAN",
    "bool_parsing": "BASE_TYPE_BOOLEAN",
    "literal_error": "BASE_TYPE_CHOICES",
    "enum": "BASE_TYPE_CHOICES",
    "dict_type": "DICT_TYPE_CONVERT",
    "list_type": "LIST_TYPE_CONVERT",
    "model_type": "DICT_TYPE_CONVERT",
    "json_invalid": "JSON_INVALID",
    "extra_forbidden": "BASE_TYPE_UNKNOWN_FIELD",
}


class ErrorBody(BaseModel):
    """Discord's JSON error: a message, a numeric code, and for an invalid form body (50035) the
    failing fields' `errors`, nested like the body, each with `_errors: [{code, message}]`."""
    message: str
    code: int
    errors: dict[str, Any] | None = None


class RateLimitedBody(BaseModel):
    message: str
    retry_after: float
    global_: bool = Field(alias="global")
    code: int


# What any API route may answer besides its success (the OpenAPI description lists them all).
DOCUMENTED_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed JSON (50109) or an invalid form body (50035, with `errors` per field): "
                                             "wrong types (a boolean is no number), values out of range (a snowflake is at most "
                                             "2^63 - 1), text with a NUL character, a username outside `[A-Za-z0-9_.-]{2,32}`"},
    401: {"model": ErrorBody, "description": "No valid `Authorization: Bot <token>` / `Bearer <token>`"},
    403: {"model": ErrorBody, "description": "Missing access (50001) or permissions (50013)"},
    404: {"model": ErrorBody, "description": "Unknown resource (10003 channel, 10004 guild, 10008 message, 10013 user, ...)"},
    413: {"model": ErrorBody, "description": "Request body over the limit (40005)"},
    429: {"model": RateLimitedBody, "description": "Rate limited: retry after `retry_after` seconds (also `Retry-After`)"},
}


def validation_errors(errors: list[Any]) -> dict[str, Any]:
    """Pydantic's error list as Discord's nested `errors` object."""
    out: dict[str, Any] = {}
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")] or ["_root"]
        node = out
        for part in loc:
            node = node.setdefault(part, {})
        msg = str(err.get("msg", "Invalid value"))[:200]
        node.setdefault("_errors", []).append({"code": _PYDANTIC_CODES.get(err.get("type", ""), "BASE_TYPE_INVALID"), "message": msg})
    return out


def error_response(exc: TownsquareError) -> FastJSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers = {
            "Retry-After": str(max(1, int(exc.retry_after + 0.999))),
            "X-RateLimit-Limit": str(exc.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{exc.reset_after:.3f}",
            "X-RateLimit-Reset": f"{time.time() + exc.reset_after:.3f}",
            "X-RateLimit-Bucket": exc.bucket,
            "X-RateLimit-Scope": "user",
        }
        if exc.is_global:
            headers["X-RateLimit-Global"] = "true"
    return FastJSONResponse(exc.to_json(), status_code=exc.status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(TownsquareError)
    async def _domain(_: Request, exc: TownsquareError) -> FastJSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> FastJSONResponse:
        errors = list(exc.errors())
        allowed = _methods_of_literal_path(request, errors)
        if allowed:
            return method_not_allowed(allowed)
        if any(e.get("type") == "json_invalid" for e in errors):
            return FastJSONResponse({"message": "The request body contains invalid JSON.", "code": 50109}, status_code=400)
        return FastJSONResponse({"message": "Invalid Form Body", "code": 50035, "errors": validation_errors(errors)}, status_code=400)

    @app.exception_handler(DBAPIError)
    async def _data(request: Request, exc: DBAPIError) -> FastJSONResponse:
        return response_for(exc, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> FastJSONResponse:
        if isinstance(exc, DomainHTTPException):
            return error_response(exc.error)
        if exc.status_code == 405:  # Allow: every method documented for the resource (RFC 9110), not one route's
            _, methods = documented_methods(request.app, request.scope["path"])
            return method_not_allowed(methods or set((exc.headers or {}).get("Allow", "").replace(" ", "").split(",")) - {""})
        code = {413: 40005}.get(exc.status_code, 0)
        message = {404: "404: Not Found"}.get(exc.status_code, str(exc.detail))
        return FastJSONResponse({"message": message, "code": code}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(ClientDisconnect)  # here, not below: the Exception handler's middleware re-raises
    async def _gone(request: Request, exc: ClientDisconnect) -> FastJSONResponse:
        return response_for(exc, request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> FastJSONResponse:
        return response_for(exc, request.url.path)


# nginx's "client closed request": the client went away before its request was read whole.
# Nothing reaches it (the server drops what is sent after a disconnect); the status is for the
# access line and the metrics, where it counts as a 4xx (the client's doing), never a 5xx.
CLIENT_CLOSED_REQUEST = 499


def method_not_allowed(allowed: set[str]) -> FastJSONResponse:
    return FastJSONResponse({"message": "405: Method Not Allowed", "code": 0}, status_code=405,
                            headers={"Allow": ", ".join(sorted(allowed))})


def documented_methods(app: Any, path: str) -> tuple[str | None, set[str]]:
    """The API resource `path` names (its most literal template in the OpenAPI description:
    `/guilds/1/members/@me` is `/guilds/{guild_id}/members/@me`, not `.../{user_id}`) and the
    methods documented for it."""
    actual = path.split("/")
    best: tuple[int, str | None, set[str]] = (-1, None, set())
    for template, operations in app.openapi().get("paths", {}).items():
        parts = template.split("/")
        if len(parts) != len(actual) or not all(p.startswith("{") or p == a for p, a in zip(parts, actual)):
            continue
        literal = sum(not p.startswith("{") for p in parts)
        if literal > best[0]:
            best = (literal, template, {m.upper() for m in operations if m in _HTTP_METHODS})
    return best[1], best[2]


def _methods_of_literal_path(request: Request, errors: list[Any]) -> set[str]:
    """`GET /guilds/1/members/@me`: the router picks `GET /guilds/{guild_id}/members/{user_id}`
    (the only GET that fits) and "@me" fails as a snowflake; but the path names another resource,
    `/guilds/{guild_id}/members/@me`, which exists for other methods: that is a 405, not a 400.
    Returns that resource's methods when only path parameters failed and the resource spells
    them out literally; otherwise (an id that is simply malformed) nothing."""
    failing = {str(e["loc"][1]) for e in errors if len(e.get("loc", ())) == 2 and e["loc"][0] == "path"}
    if not failing or len(failing) != len(errors):
        return set()
    selected = getattr(request.scope.get("route"), "path", None)
    template, methods = documented_methods(request.app, request.scope["path"])
    if not isinstance(selected, str) or template is None or template == selected or request.method in methods:
        return set()
    parts = selected.split("/")
    other = template.split("/")
    places = [i for i, part in enumerate(parts) if part.startswith("{") and part.strip("{}").split(":")[0] in failing]
    return methods if places and not any(other[i].startswith("{") for i in places) else set()


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


def response_for(exc: Exception, path: str) -> FastJSONResponse:
    """Any exception a handler let out (also the hot routes', which run outside FastAPI)."""
    if isinstance(exc, ClientDisconnect):
        log.debug("client disconnected before its request body was read", extra={"path": path})
        return FastJSONResponse({"message": "Client closed the request", "code": 0}, status_code=CLIENT_CLOSED_REQUEST)
    if isinstance(exc, DomainHTTPException):
        return error_response(exc.error)
    if isinstance(exc, TownsquareError):
        return error_response(exc)
    if _is_data_error(exc):
        # a value PostgreSQL refuses (out of range, bad characters) is the client's mistake
        return FastJSONResponse({"message": "Invalid Form Body", "code": 50035}, status_code=400)
    log.exception("database error" if isinstance(exc, DBAPIError) else "unhandled error", extra={"path": path})
    return FastJSONResponse({"message": "500: Internal Server Error", "code": 0}, status_code=500)


def _is_data_error(exc: Exception) -> bool:
    """asyncpg's DataError, raw (the hot routes' statements) or wrapped by SQLAlchemy."""
    import asyncpg

    if isinstance(exc, DBAPIError):
        exc = exc.orig.__cause__ if exc.orig is not None and exc.orig.__cause__ is not None else exc.orig
    return isinstance(exc, (asyncpg.DataError, OverflowError))
