"""A pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path) that caps request
bodies, tags each request with an id (bound to the log context, so every log line written
while serving it carries `request_id`), adds rate-limit headers to responses, and ends each
request with one access line and one latency observation.

The access line holds the method, the route *template* (never the raw path or query string,
which may carry tokens), status, duration, request id and user id: never bodies or headers."""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

import orjson
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.config import Settings
from ..core.logging import bind_log_context, log_context, reset_log_context

if TYPE_CHECKING:
    from .metrics import HttpMetrics

access_log = logging.getLogger("townsquare.access")
# probes poll every few seconds: their lines only at debug level, so the log stays readable
_PROBES = frozenset({"/health", "/ready", "/metrics"})


def _too_large(limit: int) -> bytes:
    return orjson.dumps({"message": f"Request entity too large (limit {limit} bytes)", "code": 40005})


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, metrics: HttpMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.json_limit = settings.max_body_bytes
        self.upload_limit = settings.max_upload_bytes * settings.max_attachments_per_message + settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k: v for k, v in scope["headers"] if k in (b"content-length", b"content-type", b"x-request-id")}
        is_multipart = headers.get(b"content-type", b"").startswith(b"multipart/")
        limit = self.upload_limit if is_multipart else self.json_limit
        length = headers.get(b"content-length")
        request_id = _request_id(headers.get(b"x-request-id", b""))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = bind_log_context(request_id=request_id)
        began = time.perf_counter()
        status = 500  # unless a response starts
        try:
            if length is not None and (not length.isdigit() or int(length) > limit):
                status = 413
                await _respond(send, 413, _too_large(limit), request_id)
                return
            status = await self._serve(scope, receive, send, state, request_id, limit)
        finally:
            self._finish(scope, status, time.perf_counter() - began)
            reset_log_context(token)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any], request_id: str, limit: int) -> int:
        received = 0
        started = False
        status = 500

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                extra = [(b"x-request-id", request_id.encode("latin-1"))]
                verdict = state.get("ratelimit")
                if verdict is not None:
                    extra += [
                        (b"x-ratelimit-limit", str(verdict.limit).encode()),
                        (b"x-ratelimit-remaining", str(verdict.remaining).encode()),
                        (b"x-ratelimit-reset-after", f"{verdict.reset_after:.3f}".encode()),
                        (b"x-ratelimit-bucket", verdict.bucket.encode()),
                    ]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _BodyTooLarge:
            if not started:
                status = 413
                await _respond(send, 413, _too_large(limit), request_id)
        return status

    def _finish(self, scope: Scope, status: int, seconds: float) -> None:
        route = _route_template(scope)
        if self.metrics is not None:
            self.metrics.observe(scope["method"], route, status, seconds)
        level = logging.DEBUG if route in _PROBES else logging.INFO
        if access_log.isEnabledFor(level):
            fields = {"method": scope["method"], "route": route, "status": status, "duration_ms": round(seconds * 1000, 2)}
            if "user_id" in log_context():
                fields["user_id"] = str(log_context()["user_id"])
            access_log.log(level, "%s %s %s", scope["method"], route, status, extra=fields)


def _request_id(given: bytes) -> str:
    """The caller's X-Request-Id when it is a plain token (it ends up in logs and headers), else a new one."""
    text = given[:64].decode("latin-1")
    if text and all(c.isalnum() or c in "-_.:" for c in text):
        return text
    return secrets.token_hex(8)


def _route_template(scope: Scope) -> str:
    """The matched route's template (`/api/v10/channels/{channel_id}`): a bounded label set.
    Unmatched paths (404s, scans) all count as one."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if "endpoint" in scope and isinstance(scope.get("root_path"), str):  # inside a Mount (static files): its prefix
        return scope["root_path"] + "/{path}"
    return "unmatched"


class _BodyTooLarge(StarletteHTTPException):
    """An HTTPException so that FastAPI's body parsing lets it through as a 413."""

    def __init__(self) -> None:
        super().__init__(413, "Request entity too large")


async def _respond(send: Send, status: int, body: bytes, request_id: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"x-request-id", request_id.encode("latin-1"))]})
    await send({"type": "http.response.body", "body": body})
