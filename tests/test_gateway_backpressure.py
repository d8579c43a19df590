"""Backpressure: a client too slow to read loses typing first, is then closed with a
resumable code, and a RESUME gives it every message exactly once."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from townsquare.platform.core.config import Settings

from .gwclient import GatewayClient
from .helpers import RunningServer, World, start_server, wait_for


class SlowSocket:
    """A WebSocket client on a raw socket with a tiny receive buffer that stops reading."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /gateway?v=10&encoding=json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0]
        self.pending = b""

    def send(self, payload: dict) -> None:
        data = json.dumps(payload).encode()
        mask = os.urandom(4)
        header = bytes([0x81]) + (bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + struct.pack(">H", len(data)))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def read_all(self) -> tuple[list[dict], int | None]:
        """Everything the server managed to send, and the close code if it closed."""
        self.sock.settimeout(2)
        chunks = [self.pending]
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (TimeoutError, OSError):
            pass
        data = b"".join(chunks)
        frames, code, i = [], None, 0
        while i + 2 <= len(data):
            opcode, length = data[i] & 0x0F, data[i + 1] & 0x7F
            i += 2
            if length == 126:
                length = struct.unpack(">H", data[i:i + 2])[0]
                i += 2
            elif length == 127:
                length = struct.unpack(">Q", data[i:i + 8])[0]
                i += 8
            payload = data[i:i + length]
            i += length
            if opcode == 1:
                frames.append(json.loads(payload))
            elif opcode == 8:
                code = struct.unpack(">H", payload[:2])[0]
        return frames, code


@pytest.fixture
def small_queue(settings: Settings, services) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    """A server whose sessions have small queues, so that a slow client overflows soon."""
    running = start_server(settings, services.database_url, services.redis_url, gateway_queue_high_water=8, gateway_queue_limit=40)
    yield running
    running.stop()


async def test_slow_client_drops_typing_then_is_closed_resumably(world: World, small_queue: RunningServer) -> None:
    server = small_queue
    port = int(server.url.rsplit(":", 1)[1])
    slow = SlowSocket(port)
    slow.send({"op": 2, "d": {"token": world.bob.token}})
    hub = server.app.state.hub
    await wait_for(lambda: _async(world.bob.id in hub.by_user))
    [session] = list(hub.by_user[world.bob.id])
    sent: list[str] = []
    body = "x" * 3990
    typists = [world.alice, world.owner, world.bot]
    for batch in range(300):  # ~4 KB a message: the socket's buffers fill after a few MB
        for typist in typists:
            await world.client.post(f"/api/v10/channels/{world.general_id}/typing", headers=typist.headers)
        msgs = await asyncio.gather(*(world.send(world.alice, f"{batch}.{k} {body}") for k in range(8)))
        sent += sorted((m["id"] for m in msgs), key=int)
        if session.closed:
            break
    await wait_for(lambda: _async(session.closed))
    assert session.dropped > 0
    frames, code = slow.read_all()
    assert code == 4000  # resumable: "too slow to keep up"
    got = [f["d"]["id"] for f in frames if f.get("t") == "MESSAGE_CREATE"]
    last_seq = max(f["s"] for f in frames if f.get("s") is not None)
    slow.sock.close()
    # resume: every message the slow session missed arrives, none twice
    gw = GatewayClient(server.url)
    await gw.resume(world.bob.token, session_id=session.id, seq=last_seq)
    await wait_for(lambda: _async(bool(gw.events("RESUMED"))))
    rest = await _collect_until(gw, sent[-1])
    delivered = got + rest
    assert len(delivered) == len(set(delivered)) and set(sent) <= set(delivered)  # all of them, none twice
    async with world.platform.read() as conn:  # and in stream order
        order = (await conn.execute(text(
            "SELECT data->>'id' FROM events WHERE type = 'MESSAGE_CREATE' AND data->>'id' = ANY(:ids) ORDER BY position"),
            {"ids": delivered})).scalars().all()
    assert delivered == list(order)
    await gw.close()


async def _collect_until(gw: GatewayClient, last_id: str) -> list[str]:
    ids: list[str] = []

    async def done() -> bool:
        ids[:] = [m["id"] for m in gw.events("MESSAGE_CREATE")]
        return last_id in ids

    await wait_for(done, timeout=30)
    return ids


async def _async(value: bool) -> bool:
    await asyncio.sleep(0)
    return value
