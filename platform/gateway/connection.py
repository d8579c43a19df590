"""The gateway protocol for one WebSocket: HELLO, IDENTIFY / RESUME, heartbeats, presence,
and every close code for bad input. Nothing a client sends can raise out of here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import zlib
from collections import deque
from functools import partial
from typing import Any

import orjson
from sqlalchemy import text
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..actions import users
from ..core.errors import Unauthorized
from ..core.logging import annotate_log_context, bind_log_context, reset_log_context
from .hub import MAX_REPLAY, GatewayHub
from .presence import STATUSES, set_presence
from .protocol import ALL_INTENTS, API_VERSION, FRAMES_PER_MINUTE, GUILDS, MAX_FRAME_BYTES, SEQ_SHIFT, Close, Op
from .ready import BadRequest, guild_create, large_threshold, my_members, ready_payload, request_members
from .session import Session, deflate
from .wire import EXTENSION, FrameWriter, binary_frame, text_frame

log = logging.getLogger(__name__)


class GatewayClose(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _frame(op: int, d: Any) -> str:
    return orjson.dumps({"op": int(op), "d": d, "s": None, "t": None}).decode()


class Connection:
    def __init__(self, hub: GatewayHub, ws: WebSocket, ws_url: str) -> None:
        self.hub = hub
        self.ws = ws
        self.ws_url = ws_url
        self.session: Session | None = None
        self.compressor: Any = None
        self.wire: FrameWriter | None = None  # the connection's direct writer (wire.py), once accepted
        self._frames: deque[float] = deque()
        settings = hub.platform.settings
        self.heartbeat_ms = settings.gateway_heartbeat_ms
        self.heartbeat_timeout = self.heartbeat_ms / 1000 * 1.5
        self.queue_limits = {"high_water": settings.gateway_queue_high_water, "limit": settings.gateway_queue_limit}

    async def run(self) -> None:
        params = self.ws.query_params
        if params.get("v", str(API_VERSION)) != str(API_VERSION):
            await self.ws.accept()
            await self.ws.close(Close.INVALID_API_VERSION, "Invalid API version")
            return
        if params.get("encoding", "json") != "json":
            await self.ws.accept()
            await self.ws.close(Close.DECODE_ERROR, "Only encoding=json is supported")
            return
        compress = params.get("compress")
        if compress not in (None, "zlib-stream"):
            await self.ws.accept()
            await self.ws.close(Close.DECODE_ERROR, "Only compress=zlib-stream is supported")
            return
        self.compressor = zlib.compressobj() if compress == "zlib-stream" else None
        await self.ws.accept()
        wire = self.wire = (self.ws.scope.get("extensions") or {}).get(EXTENSION)
        if wire is not None:
            wire.on_shutdown = partial(self._server_stopping, wire)
        await self._send_direct(_frame(Op.HELLO, {"heartbeat_interval": self.heartbeat_ms}))
        code, reason = 1000, ""
        log_token = bind_log_context()  # this connection's task: its lines carry session_id once known
        try:
            while True:
                raw = await self._receive()
                await self._handle(self._decode(raw))
        except GatewayClose as close:
            code, reason = close.code, close.reason
        except WebSocketDisconnect:
            code = -1
        except Exception:  # noqa: BLE001 - never let a client crash the server
            log.exception("gateway connection failed")
            code, reason = Close.UNKNOWN_ERROR, "Unknown error"
        finally:
            if self.wire is not None:
                self.wire.on_shutdown = None  # ended: nothing to tell (and no cycle through the writer)
            await self._finish(code, reason)
            if self.session is not None:
                log.info("gateway session ended", extra={"close_code": code})
            reset_log_context(log_token)

    # --- input -----------------------------------------------------------------------------

    async def _receive(self) -> str | bytes:
        try:
            message = await asyncio.wait_for(self.ws.receive(), self.heartbeat_timeout)
        except asyncio.TimeoutError:
            raise GatewayClose(Close.SESSION_TIMED_OUT, "Session timed out: no heartbeat") from None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        if len(data) > MAX_FRAME_BYTES or (isinstance(data, str) and len(data.encode()) > MAX_FRAME_BYTES):
            raise GatewayClose(Close.DECODE_ERROR, "Payload over 4096 bytes")
        now = time.monotonic()
        self._frames.append(now)
        while self._frames and self._frames[0] < now - 60:
            self._frames.popleft()
        if len(self._frames) > FRAMES_PER_MINUTE:
            raise GatewayClose(Close.RATE_LIMITED, "You are sending too many payloads")
        return data

    @staticmethod
    def _decode(raw: str | bytes) -> dict[str, Any]:
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise GatewayClose(Close.DECODE_ERROR, "Error while decoding payload") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("op"), int) or isinstance(payload.get("op"), bool):
            raise GatewayClose(Close.DECODE_ERROR, "Payload must be an object with an integer op")
        return payload

    async def _handle(self, payload: dict[str, Any]) -> None:
        op, d = payload["op"], payload.get("d")
        if op == Op.HEARTBEAT:
            if d is not None and (not isinstance(d, int) or isinstance(d, bool)):
                raise GatewayClose(Close.DECODE_ERROR, "Heartbeat d must be the last sequence or null")
            await self._send(_frame(Op.HEARTBEAT_ACK, None))  # the hub keeps the resume record alive meanwhile
            return
        if op == Op.IDENTIFY:
            if self.session is not None:
                raise GatewayClose(Close.ALREADY_AUTHENTICATED, "Already authenticated")
            await self._identify(_object(d))
            return
        if op == Op.RESUME:
            if self.session is not None:
                raise GatewayClose(Close.ALREADY_AUTHENTICATED, "Already authenticated")
            await self._resume(_object(d))
            return
        if op in (Op.PRESENCE_UPDATE, Op.REQUEST_GUILD_MEMBERS, Op.VOICE_STATE_UPDATE):
            if self.session is None:
                raise GatewayClose(Close.NOT_AUTHENTICATED, "Not authenticated")
            if op == Op.PRESENCE_UPDATE:
                await self._presence(_object(d))
            elif op == Op.REQUEST_GUILD_MEMBERS:
                await self._request_members(_object(d))
            return
        if op in (Op.DISPATCH, Op.RECONNECT, Op.INVALID_SESSION, Op.HELLO, Op.HEARTBEAT_ACK) or op not in set(Op):
            raise GatewayClose(Close.UNKNOWN_OPCODE, "Unknown opcode")

    # --- identify and resume ---------------------------------------------------------------

    async def _authenticate(self, token: Any) -> users.AuthUser:
        if not isinstance(token, str) or not token or len(token) > 200:
            raise GatewayClose(Close.AUTHENTICATION_FAILED, "Authentication failed")
        scheme, _, rest = token.partition(" ")
        raw = rest if scheme in ("Bot", "Bearer") else token
        for kind in ("Bot", "Bearer"):
            with contextlib.suppress(Unauthorized):
                return await users.authenticate(self.hub.platform, kind, raw)
        raise GatewayClose(Close.AUTHENTICATION_FAILED, "Authentication failed")

    async def _identify(self, d: dict[str, Any]) -> None:
        me = await self._authenticate(d.get("token"))
        intents = d.get("intents")
        if intents is None:
            intents = ALL_INTENTS  # people's clients send no intents: they get everything they may see
        if not isinstance(intents, int) or isinstance(intents, bool) or intents < 0 or intents & ~ALL_INTENTS:
            raise GatewayClose(Close.INVALID_INTENTS, "Invalid intent(s)")
        shard = d.get("shard")
        if shard is not None and (not isinstance(shard, list) or shard[:2] != [0, 1]):
            raise GatewayClose(Close.INVALID_SHARD, "Invalid shard")
        s = Session(id=secrets.token_hex(16), user_id=me.id, token_id=me.token_id, bot=me.bot, intents=intents, ws=self.ws,
                    compressor=self.compressor, large_threshold=large_threshold(d.get("large_threshold")), **self.queue_limits)
        await self._start(s, resume_after=None, user=me.as_user(), presence=d.get("presence"))

    async def _resume(self, d: dict[str, Any]) -> None:
        me = await self._authenticate(d.get("token"))
        session_id, seq = d.get("session_id"), d.get("seq")
        record = await self.hub.load_session(session_id) if isinstance(session_id, str) and len(session_id) <= 64 else None
        if record is None or record["user_id"] != me.id:
            await self._send_direct(_frame(Op.INVALID_SESSION, False))
            return
        if seq is None:
            seq = 0
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise GatewayClose(Close.INVALID_SEQ, "Invalid seq")
        after = seq >> SEQ_SHIFT
        newest = self.hub.position
        if after > newest:  # ahead of what this instance has read: ask the event log itself
            async with self.hub.platform.read() as conn:
                newest = (await conn.execute(text("SELECT coalesce(max(position), 0) FROM events"))).scalar_one()
        if after > newest:
            raise GatewayClose(Close.INVALID_SEQ, "Invalid seq")
        if newest - after > MAX_REPLAY:
            await self._send_direct(_frame(Op.INVALID_SESSION, False))  # too far behind: start over
            return
        old = self.hub.sessions.get(session_id)
        if old is not None:  # the same session still open here (a half-dead socket): replace it
            self.hub.unregister(old)
            await old.close(Close.UNKNOWN_ERROR, "Session resumed elsewhere")
        s = Session(id=session_id, user_id=me.id, token_id=me.token_id, bot=record["bot"], intents=record["intents"], ws=self.ws,
                    compressor=self.compressor, position=after, large_threshold=large_threshold(record.get("large_threshold")),
                    **self.queue_limits)
        # the sequence numbers the client has seen stay used: RESUMED (and any dispatch before
        # the next stream event) counts on from the client's last `s`
        s.ephemeral_n = seq & ((1 << SEQ_SHIFT) - 1)
        await self._start(s, resume_after=after, user=None, presence=None)

    async def _start(self, s: Session, *, resume_after: int | None, user: dict[str, Any] | None, presence: Any) -> None:
        hub = self.hub
        s.buffer = []  # live events wait while the session is set up / replayed
        hub.register(s)
        self.session = s
        annotate_log_context(session_id=s.id, user_id=str(s.user_id))
        log.info("gateway session started", extra={"resumed": resume_after is not None})
        s.start_writer()
        mine = await my_members(hub, s.user_id)  # its guilds, and its own member in each
        for gid in mine:
            await hub.join_guild(s, gid)
        await hub.save_session(s)
        if resume_after is None:
            s.position = hub.position
            s.cork()  # READY and the GUILD_CREATEs go out in one write
            s.send_raw(_dispatch_frame("READY", await ready_payload(hub, s, user or {}, self.ws_url), s.position))
            if s.intents & GUILDS:
                for gid in sorted(s.guild_ids):
                    s.send_raw(_dispatch_frame("GUILD_CREATE", await guild_create(hub, s, gid, mine.get(gid)), None, s))
            s.uncork()
            status = "online"
            activities: list[Any] = []
            if isinstance(presence, dict):
                status = presence.get("status") if presence.get("status") in STATUSES else "online"
                activities = presence.get("activities") if isinstance(presence.get("activities"), list) else []
            await set_presence(hub, s.user_id, status, activities, connected=1, guild_ids=s.guild_ids)
        else:
            s.cork()  # the replay and RESUMED go out in few writes
            await hub.replay(s, resume_after)
            s.send_raw(_dispatch_frame("RESUMED", {"_trace": ["townsquare"]}, None, s))
            s.uncork()
            await set_presence(hub, s.user_id, "online", [], connected=1, guild_ids=s.guild_ids)
        s.flush_buffer()

    # --- other ops -------------------------------------------------------------------------

    async def _presence(self, d: dict[str, Any]) -> None:
        status = d.get("status")
        if status not in STATUSES:
            raise GatewayClose(Close.DECODE_ERROR, "Invalid status")
        activities = d.get("activities") if isinstance(d.get("activities"), list) else []
        assert self.session is not None
        await set_presence(self.hub, self.session.user_id, status, activities)

    async def _request_members(self, d: dict[str, Any]) -> None:
        """Op 8: GUILD_MEMBERS_CHUNK dispatches (ready.request_members)."""
        s = self.session
        assert s is not None
        try:
            chunks = await request_members(self.hub, s, d)
        except BadRequest as exc:
            raise GatewayClose(Close.DECODE_ERROR, f"Invalid Request Guild Members: {exc}") from None
        for chunk in chunks:
            s.send_raw(_dispatch_frame("GUILD_MEMBERS_CHUNK", chunk, None, s))
            await s.writable()  # a big guild's chunks wait for the socket, like a replay

    # --- output and end --------------------------------------------------------------------

    async def _send(self, frame: str) -> None:
        if self.session is not None:
            self.session.send_raw(frame)
        else:
            await self._send_direct(frame)

    async def _send_direct(self, frame: str) -> None:
        """A frame before (or instead of) a session: through the connection's FrameWriter
        when its transport takes it at once (HELLO to each client of a reconnect storm), else
        through ASGI."""
        wire = self.wire
        if wire is not None and wire.writable:
            wire.write(binary_frame(deflate(self.compressor, frame)) if self.compressor is not None else text_frame(frame.encode()))
        elif self.compressor is not None:
            await self.ws.send_bytes(deflate(self.compressor, frame))
        else:
            await self.ws.send_text(frame)

    def _server_stopping(self, wire: FrameWriter) -> None:
        """The server is stopping and is about to close this socket (wire.py): op 7 RECONNECT
        first, written at once after whatever was already written (a frame still queued is
        not sent; the client resumes from its last `s` and gets it then)."""
        if self.session is not None:
            self.session.abandon()
        frame = _frame(Op.RECONNECT, None)
        wire.write(binary_frame(deflate(self.compressor, frame)) if self.compressor is not None else text_frame(frame.encode()))

    async def _finish(self, code: int, reason: str) -> None:
        s = self.session
        if s is not None:
            guild_ids = set(s.guild_ids)  # before unregister empties them
            self.hub.unregister(s)
            if code == -1:
                s.abandon()
            with contextlib.suppress(Exception):
                await set_presence(self.hub, s.user_id, "offline", [], connected=-1, guild_ids=guild_ids)
            if code != -1:
                await s.close(code, reason)
            with contextlib.suppress(Exception):
                await self.hub.save_session(s)  # the resume window starts now
        elif code != -1:
            with contextlib.suppress(Exception):
                await self.ws.close(code=code, reason=reason)


def _object(d: Any) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise GatewayClose(Close.DECODE_ERROR, "d must be an object")
    return d


def _dispatch_frame(event: str, data: Any, position: int | None, s: Session | None = None) -> str:
    seq = (position << SEQ_SHIFT) if position is not None else (s.next_seq(None) if s is not None else 0)
    return f'{{"op":0,"t":"{event}","s":{seq},"d":{orjson.dumps(data).decode()}}}'
