"""The one place where domain errors and framework errors become HTTP responses in Discord's
JSON error shape."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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
    async def _validation(_: Request, exc: RequestValidationError) -> FastJSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return FastJSONResponse({"message": "The request body contains invalid JSON.", "code": 50109}, status_code=400)
        return FastJSONResponse({"message": "Invalid Form Body", "code": 50035, "errors": validation_errors(errors)}, status_code=400)

    @app.exception_handler(DBAPIError)
    async def _data(request: Request, exc: DBAPIError) -> FastJSONResponse:
        return response_for(exc, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> FastJSONResponse:
        if isinstance(exc, DomainHTTPException):
            return error_response(exc.error)
        code = {413: 40005}.get(exc.status_code, 0)
        message = {404: "404: Not Found", 405: "405: Method Not Allowed"}.get(exc.status_code, str(exc.detail))
        return FastJSONResponse({"message": message, "code": code}, status_code=exc.status_code)

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
