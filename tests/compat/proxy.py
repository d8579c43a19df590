"""A TCP relay between a bot library and the server, so a test can cut the network under a
gateway connection the way a real outage does (both sockets reset, no close frame) and point
the library at a server that is restarted behind the same address."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

HOLD_SECONDS = 120.0


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    websocket: bool = False


@dataclass
class Relay:
    target_port: int
    port: int = 0
    _server: asyncio.Server | None = None
    _pairs: set[_Pair] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    cuts: int = 0
    _open: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: new connections wait (pause/resume)

    def __post_init__(self) -> None:
        self._open.set()

    def pause(self) -> None:
        """New connections wait until `resume()` (the network is down for a while)."""
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def start(self) -> Relay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def websockets(self) -> int:
        return sum(1 for p in self._pairs if p.websocket)

    def cut_websockets(self) -> int:
        """Resets every gateway connection at once (the REST connections stay)."""
        cut = [p for p in self._pairs if p.websocket]
        for pair in cut:
            self._abort(pair)
        self.cuts += len(cut)
        return len(cut)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self._pairs):
            self._abort(pair)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """While the server restarts, a new connection waits for it, as behind a load balancer
        that retries (else each library's reconnect backoff, which grows to minutes, would set
        the pace of the test)."""
        await asyncio.wait_for(self._open.wait(), HOLD_SECONDS)
        deadline = asyncio.get_running_loop().time() + HOLD_SECONDS
        while True:
            try:
                return await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.05)

    def _abort(self, pair: _Pair) -> None:
        self._pairs.discard(pair)
        for writer in (pair.client, pair.upstream):
            if writer is not None:
                writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        pair = _Pair(writer)
        self._pairs.add(pair)
        try:
            first = await reader.read(65536)
            if not first:
                return
            up_reader, up_writer = await self._connect_upstream()
            pair.upstream = up_writer
            await asyncio.gather(_pipe(reader, up_writer, pair, first), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a cancelled relay task ends quietly (the streams callback would log it)
        finally:
            self._abort(pair)
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pair: _Pair | None = None, data: bytes = b"") -> None:
    """Copies one direction. Client to server (`pair` given), it marks the connection a gateway
    one at its upgrade request, which may come after REST requests on a kept-alive connection."""
    try:
        while data or (data := await reader.read(65536)):
            if pair is not None and not pair.websocket and b"upgrade: websocket" in data.lower():
                pair.websocket = True
            writer.write(data)
            data = b""
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.transport.abort() if reader.exception() is not None else _half_close(writer)


def _half_close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
