"""The WebSocket protocol uvicorn runs for Townsquare: uvicorn's own sans-I/O protocol, plus a
way for a gateway session to write frames it framed itself.

Why: a MESSAGE_CREATE goes to every viewer with the same bytes (server frames are not masked),
so it is framed once and written straight to each idle connection's transport. Going through
ASGI instead costs a writer-task wake-up and Starlette's and uvicorn's send path per session
per frame, three times the bare relay's CPU per delivery (docs/benchmarks.md, bench/gateway.py).

The writer is offered to the application as the ASGI scope extension `townsquare.frames`; an
app served by another protocol (a test client, another server) does not find it and keeps
the ordinary `websocket.send` path."""

from __future__ import annotations

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

    __slots__ = ("_proto",)

    def __init__(self, proto: GatewayWebSocketProtocol) -> None:
        self._proto = proto

    @property
    def open(self) -> bool:
        """Frames may still be written: accepted, no close frame sent, the peer still there. A
        frame after the close frame would break the protocol; extensions (per-message deflate)
        would keep a compression context this writer does not see, so they rule it out too."""
        p = self._proto
        return (p.handshake_complete and not p.close_sent and not p.disconnected and not p.transport.is_closing()
                and not p.conn.extensions)

    @property
    def writable(self) -> bool:
        """Open and below the transport's high-water mark (uvicorn's own sends wait for this)."""
        return self.open and self._proto.writable.is_set()

    def write(self, frame: bytes) -> None:
        self._proto.transport.write(frame)

    async def wait_writable(self) -> None:
        """Returns when the transport has drained below its low-water mark or the connection
        is lost (uvicorn sets the same event then)."""
        await self._proto.writable.wait()


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `ws` protocol class for Townsquare (see `server.uvicorn_options`)."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None:
            scope["extensions"][EXTENSION] = FrameWriter(self)
