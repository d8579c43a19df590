"""Direct frame writes (platform/gateway/wire.py): sessions write frames straight to their
connection's transport while it keeps up, queue them in order while it does not, and fall back
to the ASGI send path under a server that offers no writer."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from townsquare.platform.core.config import Settings
from townsquare.platform.gateway.session import Session
from townsquare.platform.gateway.wire import EXTENSION, FrameWriter, text_frame

from .gwclient import GatewayClient
from .helpers import RunningServer, World, start_server, wait_for


async def _session_of(server: RunningServer, user_id: int) -> Session:
    hub = server.app.state.hub

    async def registered() -> bool:
        await asyncio.sleep(0)
        return bool(hub.by_user.get(user_id))

    await wait_for(registered)
    return next(iter(hub.by_user[user_id]))


async def test_sessions_on_townsquare_servers_write_directly(world: World, server: RunningServer) -> None:
    gw = GatewayClient(server.url)
    await gw.identify(world.bob.token)
    session = await _session_of(server, world.bob.id)
    assert isinstance(session.wire, FrameWriter) and session.wire.writable
    sent = [await world.send(world.alice, f"direct {i}") for i in range(5)]
    await wait_for(lambda: _now(len(gw.events("MESSAGE_CREATE")) >= 5))
    assert [m["id"] for m in gw.events("MESSAGE_CREATE")][-5:] == [m["id"] for m in sent]
    assert session.queued == 0
    await gw.close()


async def test_zlib_stream_frames_decode_in_order(world: World, server: RunningServer) -> None:
    """HELLO goes through the ASGI path, later frames through the writer: one zlib context."""
    inflate = zlib.decompressobj()
    url = server.url.replace("http://", "ws://") + "/gateway?v=10&encoding=json&compress=zlib-stream"
    async with connect(url) as ws:
        async def frame() -> dict[str, Any]:
            raw = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(raw, bytes) and raw.endswith(b"\x00\x00\xff\xff")
            return json.loads(inflate.decompress(raw))

        assert (await frame())["op"] == 10
        await ws.send(json.dumps({"op": 2, "d": {"token": world.bob.token}}))
        seen: list[dict[str, Any]] = []
        while not any(f.get("t") == "GUILD_CREATE" for f in seen):
            seen.append(await frame())
        session = await _session_of(server, world.bob.id)
        assert session.wire is not None and session.compressor is not None
        sent = [await world.send(world.alice, f"compressed {i}") for i in range(3)]
        got: list[str] = []
        while len(got) < 3:
            f = await frame()
            if f.get("t") == "MESSAGE_CREATE" and f["d"]["content"].startswith("compressed"):
                got.append(f["d"]["id"])
        assert got == [m["id"] for m in sent]


@pytest.fixture
def stock_server(settings: Settings, services) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    """A server on uvicorn's stock protocol: no writer in the scope."""
    running = start_server(settings, services.database_url, services.redis_url, uvicorn_overrides={"ws": "websockets-sansio"})
    yield running
    running.stop()


async def test_without_a_writer_sessions_use_the_asgi_path(world: World, stock_server: RunningServer) -> None:
    gw = GatewayClient(stock_server.url)
    await gw.identify(world.bob.token)
    session = await _session_of(stock_server, world.bob.id)
    assert session.wire is None
    sent = [await world.send(world.alice, f"asgi {i}") for i in range(3)]
    await wait_for(lambda: _now(len([m for m in gw.events("MESSAGE_CREATE") if m["content"].startswith("asgi")]) == 3))
    assert [m["id"] for m in gw.events("MESSAGE_CREATE") if m["content"].startswith("asgi")] == [m["id"] for m in sent]
    await gw.close()


@pytest.fixture
def deflate_server(settings: Settings, services) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    running = start_server(settings, services.database_url, services.redis_url, uvicorn_overrides={"ws_per_message_deflate": True})
    yield running
    running.stop()


async def test_per_message_deflate_connections_get_no_writer(world: World, deflate_server: RunningServer) -> None:
    """Compressed frames depend on the connection's deflate context: only uvicorn may frame them."""
    gw = GatewayClient(deflate_server.url)  # the websockets client offers permessage-deflate
    await gw.identify(world.bob.token)
    assert gw.ws is not None and gw.ws.protocol.extensions
    session = await _session_of(deflate_server, world.bob.id)
    assert session.wire is None
    sent = await world.send(world.alice, "deflated")
    await wait_for(lambda: _now(sent["id"] in [m["id"] for m in gw.events("MESSAGE_CREATE")]))
    await gw.close()


class _Transport:
    """What FrameWriter needs of a transport, recording the bytes written."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing


class _Protocol:
    """The state FrameWriter reads from uvicorn's protocol."""

    def __init__(self) -> None:
        self.transport = _Transport()
        self.write_paused, self.close_sent, self.disconnected = False, False, False
        self.writable = asyncio.Event()
        self.writable.set()


class _WebSocket:
    def __init__(self, writer: FrameWriter) -> None:
        self.scope = {"type": "websocket", "extensions": {EXTENSION: writer}}


def _frames(proto: _Protocol) -> list[int]:
    """The sequence numbers written, decoded from the raw frames."""
    return [json.loads(raw[raw.index(b"{"):])["s"] for raw in proto.transport.written]


async def test_a_paused_transport_queues_frames_and_keeps_their_order() -> None:
    proto = _Protocol()
    s = Session(id="s", user_id=1, token_id=1, bot=False, intents=0, ws=_WebSocket(FrameWriter(proto)))  # type: ignore[arg-type]
    s.start_writer()

    def dispatch(position: int) -> None:
        frame = f'{{"op":0,"t":"MESSAGE_CREATE","s":{position},"d":{{}}}}'
        s.send_dispatch("MESSAGE_CREATE", "{}", position, frame=frame, wire=text_frame(frame.encode()))

    dispatch(1)
    assert _frames(proto) == [1] and s.queued == 0  # written at once
    proto.write_paused = True  # the transport passed its high-water mark
    proto.writable.clear()
    dispatch(2)
    dispatch(3)
    await asyncio.sleep(0.01)
    assert _frames(proto) == [1] and s.queued == 2
    proto.write_paused = False  # drained: the writer task empties the queue first...
    proto.writable.set()
    dispatch(4)  # ...and a frame arriving meanwhile waits behind the queued ones
    await wait_for(lambda: _now(s.queued == 0))
    dispatch(5)  # the queue is empty again: written at once
    assert _frames(proto) == [1, 2, 3, 4, 5]
    proto.transport.closing = True  # the socket is going away: the writer ends the session
    dispatch(6)
    await wait_for(lambda: _now(s.closed))
    assert _frames(proto) == [1, 2, 3, 4, 5]


async def _now(value: bool) -> bool:
    await asyncio.sleep(0)
    return value
