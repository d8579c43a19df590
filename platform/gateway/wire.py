"""The WebSocket protocol uvicorn runs for Townsquare: uvicorn's own sans-I/O protocol, plus a
way for a gateway session to write frames it framed itself.

Why: a MESSAGE_CREATE goes to every viewer with the same bytes (server frames are not masked),
so it is framed once and written straight to each idle connection's transport. Going through
ASGI instead costs a writer-task wake-up and Starlette's and uvicorn's send path per session
per frame, three times the bare relay's CPU per delivery (docs/benchmarks.md, bench/gateway.py).

The writer is offered to the application as the ASGI scope extension `townsquare.frames`; an
app served by another protocol (a test client, another server) does not find it and keeps
the ordinary `websocket.send` path.

Shutdown: when the server stops (SIGTERM, SIGINT), uvicorn closes every WebSocket with 1012
before the application's shutdown runs. The gateway sets the writer's `on_shutdown` to write
op 7 RECONNECT, and this protocol calls it just before that close frame, so every client is
told to resume elsewhere, whichever server class runs the protocol (`serve --workers N` too)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode

EXTENSION = "townsquare.frames"


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame (what a server sends), ready for any connection."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


def binary_frame(payload: bytes) -> bytes:
    return Frame(Opcode.BINARY, payload).serialize(mask=False)


class FrameWriter:
    """Writes whole frames to one connection's transport, in the caller's order."""

    __slots__ = ("_proto", "on_shutdown")

    def __init__(self, proto: GatewayWebSocketProtocol) -> None:
        self._proto = proto
        self.on_shutdown: Callable[[], None] | None = None  # called once, before the server's close frame

    @property
    def open(self) -> bool:
        """Frames may still be written: no close frame sent and the peer still there (a frame
        after the close frame would break the protocol)."""
        p = self._proto
        return not (p.close_sent or p.disconnected or p.transport.is_closing())

    @property
    def writable(self) -> bool:
        """Open and below the transport's high-water mark (uvicorn's own sends wait for that).
        Checked once per frame per session: plain attributes only."""
        p = self._proto
        return not (p.write_paused or p.close_sent or p.disconnected or p.transport.is_closing())

    def write(self, frame: bytes) -> None:
        self._proto.transport.write(frame)

    async def wait_writable(self) -> None:
        """Returns when the transport has drained below its low-water mark or the connection
        is lost (uvicorn sets the same event then)."""
        await self._proto.writable.wait()


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `ws` protocol class for Townsquare (see `server.uvicorn_options`)."""

    write_paused = False

    def pause_writing(self) -> None:
        self.write_paused = True
        super().pause_writing()

    def resume_writing(self) -> None:
        self.write_paused = False
        super().resume_writing()

    def shutdown(self) -> None:
        """The server is stopping: the application's last word (RECONNECT) goes out before
        uvicorn's close frame (1012)."""
        writer = (getattr(self, "scope", None) or {}).get("extensions", {}).get(EXTENSION)
        hook = writer.on_shutdown if writer is not None else None
        open_ = self.handshake_complete and self.initial_response is None and not self.close_sent and not self.transport.is_closing()
        if hook is not None and open_:
            writer.on_shutdown = None
            with contextlib.suppress(Exception):  # a failing hook must not stop the shutdown
                hook()
        super().shutdown()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # A refused handshake has no scope. Negotiated extensions (per-message deflate) keep a
        # compression context that bypassing the protocol object would corrupt: no writer then.
        scope = getattr(self, "scope", None)
        if scope is not None and not self.conn.extensions:
            scope["extensions"][EXTENSION] = FrameWriter(self)
