"""One WebSocket connection: its identity, its filters, and a bounded send queue.

Output: while nothing is queued and the connection's transport is below its high-water mark, a
frame is written at once through the connection's FrameWriter (wire.py); a frame every viewer
gets is framed once for all of them. Otherwise frames wait in a bounded queue drained by one
writer task, in order.

Backpressure: past the queue's high-water mark, typing and presence frames are dropped; at the
limit a session that still cannot keep up is closed with a resumable code (4000), so it resumes
and replays instead of silently missing a message."""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from .protocol import SEQ_SHIFT, Close
from .wire import EXTENSION, FrameWriter, binary_frame, text_frame

CORK_FRAMES = 64  # most frames held by a cork before they are written


def deflate(compressor: Any, frame: str) -> bytes:
    """One frame through a connection's zlib-stream context (in send order: one context), flushed
    so the client can inflate it at once."""
    return compressor.compress(frame.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)


@dataclass(eq=False)
class Session:
    id: str
    user_id: int
    token_id: int
    bot: bool
    intents: int
    ws: WebSocket
    guild_ids: set[int] = field(default_factory=set)
    position: int = 0  # stream position of the last dispatch sent (or replayed)
    ephemeral_n: int = 0  # ephemeral dispatches sent since `position`
    buffer: list[tuple[int, str, bool]] | None = None  # live frames held back while replaying
    closed: bool = False
    dropped: int = 0
    _queue: deque[str] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _writable: asyncio.Event = field(default_factory=asyncio.Event)
    compressor: Any = None  # the connection's zlib-stream context (one per socket, shared with HELLO)
    large_threshold: int = 50  # IDENTIFY's large_threshold (ready.py)
    high_water: int = 256  # settings.gateway_queue_high_water
    limit: int = 2048  # settings.gateway_queue_limit
    _writer: asyncio.Task[None] | None = None
    wire: FrameWriter | None = None  # the connection's direct writer, when its server offers one
    _corked: list[bytes] | None = None  # direct writes held to go out as one (a replay: `cork`)

    def __post_init__(self) -> None:
        self.wire = (self.ws.scope.get("extensions") or {}).get(EXTENSION)

    def start_writer(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"gw-writer-{self.id}")

    def next_seq(self, position: int | None) -> int:
        """Stream events carry their position; ephemeral ones the count since the last one."""
        if position is not None:
            self.position, self.ephemeral_n = position, 0
            return position << SEQ_SHIFT
        self.ephemeral_n = min(self.ephemeral_n + 1, (1 << SEQ_SHIFT) - 1)
        return (self.position << SEQ_SHIFT) | self.ephemeral_n

    def send_dispatch(self, event: str, data_json: str, position: int | None, *, replay: bool = False,
                      frame: str | None = None, wire: bytes | None = None) -> None:
        """Sends one dispatch; `data_json` is the already-encoded `d` (and `frame`, for a stream
        event, the whole frame, `wire` that frame as a WebSocket text frame: the same for every
        session, built once). A stream event at or before the last position sent is a duplicate
        (a replay overlapping live delivery) and is dropped, so a session gets every event
        exactly once and in order."""
        if (wire is not None and self.buffer is None and not self._queue and self.compressor is None and self.wire is not None
                and not self.closed and position is not None and position > self.position and self.wire.writable):
            # the common case, once per session per message: the shared frame, written at once
            self.position, self.ephemeral_n = position, 0
            self.wire.write(wire)
            return
        if self.closed:
            return
        ephemeral = position is None
        if self.buffer is not None and not replay:
            if len(self.buffer) >= self.limit * 4:
                asyncio.create_task(self.close(Close.UNKNOWN_ERROR, "too slow to keep up; resume"))
                return
            self.buffer.append((position or 0, f"{event}\x00{data_json}", ephemeral))
            return
        if not ephemeral and position <= self.position:  # type: ignore[operator]
            return
        if ephemeral and len(self._queue) >= self.high_water:
            self.dropped += 1
            return
        if len(self._queue) >= self.limit and not replay:  # a replay waits for the writer instead
            self.dropped += 1
            asyncio.create_task(self.close(Close.UNKNOWN_ERROR, "too slow to keep up; resume"))
            return
        seq = self.next_seq(position)
        if frame is None or position is None:
            frame, wire = f'{{"op":0,"t":"{event}","s":{seq},"d":{data_json}}}', None
        self._push(frame, wire)

    def send_raw(self, frame: str) -> None:
        if not self.closed:
            self._push(frame)

    def _push(self, frame: str, wire: bytes | None = None) -> None:
        if not self._queue and self.wire is not None and self.wire.writable:
            data = wire if wire is not None and self.compressor is None else self._encode(frame)
            corked = self._corked
            if corked is None:
                self.wire.write(data)
                return
            corked.append(data)
            if len(corked) >= CORK_FRAMES:
                self._flush_cork()
            return
        self._flush_cork()  # what was held goes before anything queued
        self._queue.append(frame)
        self._ready.set()

    def cork(self) -> None:
        """From now until `uncork`, frames written at once are joined into few writes (one
        system call for a replay's frames instead of one each); order is kept: anything queued
        meanwhile goes after them."""
        if self._corked is None:
            self._corked = []

    def uncork(self) -> None:
        self._flush_cork()
        self._corked = None

    def _flush_cork(self) -> None:
        corked = self._corked
        if corked:
            self._corked = []
            if self.wire is not None and self.wire.open and not self.closed:
                self.wire.write(b"".join(corked))

    def _encode(self, frame: str) -> bytes:
        """The frame on the wire; with zlib-stream, compressed in send order (one context)."""
        if self.compressor is not None:
            return binary_frame(deflate(self.compressor, frame))
        return text_frame(frame.encode())

    def flush_buffer(self) -> None:
        """Ends a start-up or replay: sends the live frames held back meanwhile (those the
        replay already covered are dropped by the position check)."""
        held, self.buffer = self.buffer or [], None
        for position, packed, ephemeral in held:
            event, _, data_json = packed.partition("\x00")
            self.send_dispatch(event, data_json, None if ephemeral else position, replay=True)

    async def writable(self) -> None:
        """Waits until the queue is below its high-water mark (replays pace themselves so)."""
        while len(self._queue) >= self.high_water and not self.closed:
            self._writable.clear()
            await self._writable.wait()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def _write_loop(self) -> None:
        wire = self.wire
        try:
            while not self.closed:
                await self._ready.wait()
                self._ready.clear()
                while self._queue:
                    if wire is not None:
                        if not wire.writable:
                            if not wire.open:
                                self.closed = True  # the socket is closing: the reader ends the session
                                return
                            await wire.wait_writable()
                            continue
                        # no await between taking a frame and writing it: _push's direct writes
                        # (allowed only once the queue is empty) cannot overtake it
                        wire.write(self._encode(self._queue.popleft()))
                    elif self.compressor is not None:
                        await self.ws.send_bytes(deflate(self.compressor, self._queue.popleft()))
                    else:
                        await self.ws.send_text(self._queue.popleft())
                    if len(self._queue) < self.high_water:
                        self._writable.set()
        except Exception:  # noqa: BLE001 - a broken socket ends the session; the reader notices too
            self.closed = True
        finally:
            self._writable.set()

    async def drain(self, timeout: float = 2.0) -> None:
        """Waits (bounded) until queued frames are written."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._queue and not self.closed and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    def abandon(self) -> None:
        """The socket is gone (the client closed it or the connection was lost): nothing more is
        written, and the writer task ends (left waiting, it would be destroyed still pending when
        the session is collected, which asyncio logs as an error)."""
        self.closed = True
        self._writable.set()
        if self._writer is not None:
            self._writer.cancel()

    async def close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        self.uncork()  # what was held (a RECONNECT during a start) goes before the close
        await self.drain(1.0)
        self.abandon()
        with contextlib.suppress(Exception):
            await self.ws.close(code=int(code), reason=reason[:120])
