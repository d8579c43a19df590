"""A pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path) that caps request
bodies, tags each request with an id, and adds rate-limit headers to responses."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.config import Settings


def _too_large(limit: int) -> bytes:
    return orjson.dumps({"message": f"Request entity too large (limit {limit} bytes)", "code": 40005})


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
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
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await _respond(send, 413, _too_large(limit))
                return
        request_id = headers.get(b"x-request-id", b"")[:64].decode("latin-1") or secrets.token_hex(8)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
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
                await _respond(send, 413, _too_large(limit))


class _BodyTooLarge(StarletteHTTPException):
    """An HTTPException so that FastAPI's body parsing lets it through as a 413."""

    def __init__(self) -> None:
        super().__init__(413, "Request entity too large")


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
