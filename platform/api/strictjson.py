"""Request bodies are parsed with orjson (strict JSON: no NaN, no Infinity, no lone
surrogates) and any string holding a NUL character is refused before it can reach
PostgreSQL, which cannot store one."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..core.errors import InvalidFormBody, TownsquareError

MAX_DEPTH = 32


class DomainHTTPException(StarletteHTTPException):
    """Carries a domain error through FastAPI's body parsing, which re-raises HTTPExceptions."""

    def __init__(self, error: TownsquareError) -> None:
        super().__init__(error.status, error.message)
        self.error = error


def check_text(value: Any, path: str = "body", depth: int = 0) -> None:
    """Raises InvalidFormBody for a NUL anywhere in `value`, or nesting deeper than MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise InvalidFormBody.field(path, "BASE_TYPE_MAX_DEPTH", f"Nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidFormBody.field(path, "BASE_TYPE_BAD_CHARACTER", "Text may not contain NUL characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, path, depth + 1)
            check_text(item, f"{path}.{key}" if path != "body" else str(key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_text(item, f"{path}.{index}", depth + 1)


def parse_json(raw: bytes) -> Any:
    """orjson.JSONDecodeError subclasses json.JSONDecodeError: callers map it to 50109."""
    value = orjson.loads(raw)
    check_text(value)
    return value


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = parse_json(await self.body())
            except TownsquareError as error:
                raise DomainHTTPException(error) from None
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
