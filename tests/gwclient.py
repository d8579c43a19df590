"""A small gateway client for the tests (the protocol, spoken plainly)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class GatewayClient:
    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "/gateway?v=10&encoding=json"
        self.ws: ClientConnection | None = None
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.dispatches: list[dict[str, Any]] = []
        self.seq: int | None = None
        self.session_id: str | None = None
        self.close_code: int | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> dict[str, Any]:
        self.ws = await connect(self.url, max_size=2**24)
        self.close_code = None
        self._reader = asyncio.create_task(self._read())
        hello = await self.next(op=10)
        return hello

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame.get("s") is not None:
                    self.seq = frame["s"]
                if frame["op"] == 0:
                    self.dispatches.append(frame)
                    if frame["t"] == "READY":
                        self.session_id = frame["d"]["session_id"]
                await self.frames.put(frame)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            await self.frames.put({"op": -1, "close": self.ws.close_code})

    async def send(self, payload: Any) -> None:
        assert self.ws is not None
        await self.ws.send(payload if isinstance(payload, (str, bytes)) else json.dumps(payload))

    async def next(self, *, op: int | None = None, t: str | None = None, timeout: float = 10) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                frame = await self.frames.get()
                if frame["op"] == -1:
                    raise ConnectionError(f"closed with {frame['close']}")
                if (op is None or frame["op"] == op) and (t is None or frame.get("t") == t):
                    return frame

        return await asyncio.wait_for(wait(), timeout)

    async def identify(self, token: str, intents: int | None = None, **extra: Any) -> dict[str, Any]:
        await self.open()
        d: dict[str, Any] = {"token": token, "properties": {"os": "linux", "browser": "test", "device": "test"}, **extra}
        if intents is not None:
            d["intents"] = intents
        await self.send({"op": 2, "d": d})
        return await self.next(t="READY")

    async def resume(self, token: str, session_id: str | None = None, seq: int | None = None) -> None:
        await self.open()
        await self.send({"op": 6, "d": {"token": token, "session_id": session_id or self.session_id,
                                        "seq": self.seq if seq is None else seq}})

    async def closed(self, timeout: float = 10) -> int | None:
        async def wait() -> int | None:
            while True:
                frame = await self.frames.get()
                if frame["op"] == -1:
                    return frame["close"]

        return await asyncio.wait_for(wait(), timeout)

    async def drop(self) -> None:
        """Cuts the connection abruptly (no close handshake)."""
        if self.ws is not None:
            self.ws.transport.abort()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader

    def events(self, t: str) -> list[dict[str, Any]]:
        return [f["d"] for f in self.dispatches if f["t"] == t]


class ResilientClient:
    """Keeps one gateway session alive across drops: reconnects to any live instance and
    RESUMEs; records every MESSAGE_CREATE it is given, in order."""

    def __init__(self, urls: list[str], token: str, intents: int | None, rng: Any) -> None:
        self.urls, self.token, self.intents, self.rng = urls, token, intents, rng
        self.session_id: str | None = None
        self.seq: int | None = None
        self.messages: list[str] = []
        self.invalidated = 0
        self.resumes = 0
        self.current: GatewayClient | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            gw = GatewayClient(self.rng.choice(self.urls))
            self.current = gw
            try:
                if self.session_id is None:
                    await gw.identify(self.token, intents=self.intents)
                    self.session_id = gw.session_id
                else:
                    await gw.resume(self.token, session_id=self.session_id, seq=self.seq)
                    self.resumes += 1
                beat = asyncio.create_task(self._heartbeat(gw))
                try:
                    while not self._stop.is_set():
                        frame = await gw.next(timeout=3600)
                        if frame.get("s") is not None:
                            self.seq = frame["s"]
                        if frame["op"] == 9:
                            self.invalidated += 1
                            return
                        if frame["op"] == 7:
                            break
                        if frame["op"] == 0 and frame["t"] == "MESSAGE_CREATE":
                            self.messages.append(frame["d"]["id"])
                finally:
                    beat.cancel()
            except (ConnectionError, OSError, asyncio.TimeoutError, Exception):  # noqa: BLE001 - any failure: reconnect
                pass
            finally:
                await gw.close()
            await asyncio.sleep(0.05)

    @staticmethod
    async def _heartbeat(gw: GatewayClient) -> None:
        while True:
            await asyncio.sleep(5)
            await gw.send({"op": 1, "d": gw.seq})

    async def drop(self) -> None:
        if self.current is not None:
            await self.current.drop()

    async def stop(self) -> None:
        self._stop.set()
        if self.current is not None:
            await self.current.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
