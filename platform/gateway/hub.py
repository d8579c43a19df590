"""The gateway of one server instance: reads the event stream (every instance reads all of
it), keeps the guild states its sessions need, and fans each event out to the local sessions
allowed to see it. Sessions are registered in Redis so that they can resume on any instance,
also after this one was killed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import text

from ..actions.context import Platform
from ..events.publisher import decode_entry, stream_key
from .guildstate import GuildState, load_guild_state
from .protocol import SEQ_SHIFT, CONTENT_EVENTS, GUILD_PRESENCES, GUILDS, MESSAGE_CONTENT, Close, Op, intent_allows
from .session import Session
from .wire import text_frame

log = logging.getLogger(__name__)

RESUME_WINDOW_SECONDS = 300  # how long after its connection ended a session may still be resumed
MAX_REPLAY = 50_000
RECENT_EVENTS = 4096  # stream events kept in memory for replays (with their encoded frames: a few MB)
_CHANNEL_SCOPED_GUILD_EVENTS = frozenset({"CHANNEL_DELETE", "THREAD_DELETE"})  # announced guild-wide


def ephemeral_key(prefix: str) -> str:
    return f"{prefix}ephemeral"


class GatewayHub:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.redis = platform.redis
        self.prefix = platform.settings.redis_prefix
        self.sessions: dict[str, Session] = {}
        self.by_user: dict[int, set[Session]] = defaultdict(set)
        self.by_guild: dict[int, set[Session]] = defaultdict(set)
        self.guilds: dict[int, GuildState] = {}
        self.position = 0
        self.dispatched = 0
        self._eph_id = "0-0"
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.resume_window: float = RESUME_WINDOW_SECONDS
        # the last stream events dispatched, contiguous by position: replays after a reconnect
        # storm read them here (`events_between`)
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)
        self._guild_lock = asyncio.Lock()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        async with self.platform.read() as conn:
            self.position = (await conn.execute(text("SELECT coalesce(max(position), 0) FROM events"))).scalar_one()
        top = await self.redis.xrevrange(ephemeral_key(self.prefix), count=1)
        self._eph_id = top[0][0].decode() if top else "0-0"
        self._task = asyncio.create_task(self._read_loop(), name="gateway-reader")
        self._sweeper = asyncio.create_task(self._sweep_presences(), name="presence-sweeper")
        self._refresher = asyncio.create_task(self._refresh_sessions(), name="session-refresher")

    async def _sweep_presences(self) -> None:
        """Presence leases run out when their agent worker dies, and with no worker left nobody else
        would tell connected clients. Every instance sweeps: the sweep is one atomic Redis step, so an
        expiry is announced once."""
        from .presence import write_presences  # presence imports this module

        while True:
            await asyncio.sleep(self.platform.settings.gateway_presence_sweep_seconds)
            try:
                await write_presences(self.redis, self.prefix, self.platform.read, [], sweep=True)
            except Exception:  # noqa: BLE001 - a failed sweep is retried at the next one
                log.warning("presence sweep failed", exc_info=True)

    async def stop(self) -> None:
        """Graceful shutdown: every session is told to RECONNECT (and will RESUME elsewhere)."""
        sessions = list(self.sessions.values())
        for s in sessions:
            s.send_raw(orjson.dumps({"op": Op.RECONNECT, "d": None}).decode())
        await asyncio.gather(*(s.close(Close.UNKNOWN_ERROR, "server restarting: reconnect and resume") for s in sessions),
                             return_exceptions=True)
        for task in (self._task, self._sweeper, self._refresher):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # --- reading the streams ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        events, ephemeral = stream_key(self.prefix), ephemeral_key(self.prefix)
        while True:
            try:
                reply = await self.redis.xread({events: f"{self.position}-1", ephemeral: self._eph_id}, count=500, block=1000)
                for stream, entries in reply or []:
                    if stream.decode() == events:
                        for _, fields in entries:
                            await self._on_event(decode_entry(fields))
                    else:
                        for entry_id, fields in entries:
                            self._eph_id = entry_id.decode()
                            self._on_ephemeral(orjson.loads(fields[b"event"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gateway stream read failed; retrying")
                await asyncio.sleep(0.5)

    async def _on_event(self, env: dict[str, Any]) -> None:
        position = env["position"]
        if position <= self.position:
            return
        if position > self.position + 1:
            # the stream lost entries (trimmed or Redis restarted): fill the gap from PostgreSQL
            for missed in await self.events_between(self.position, position - 1):
                await self._dispatch_safely(missed)
        await self._dispatch_safely(env)

    async def _dispatch_safely(self, env: dict[str, Any]) -> None:
        """One malformed event must not stop the stream for everyone: it is logged and skipped."""
        try:
            await self._dispatch(env)
        except Exception:
            log.exception("gateway could not dispatch an event; skipped", extra={"position": env.get("position"), "type": env.get("type")})
        finally:
            self.position = max(self.position, env["position"])
            recent = self.recent
            if recent and recent[-1]["position"] != env["position"] - 1:
                recent.clear()  # kept contiguous: a slice of it is exactly a range of positions
            recent.append(env)

    async def _dispatch(self, env: dict[str, Any]) -> None:
        self.position = env["position"]
        event, data = env["type"], env["data"]
        gid = int(env["guild_id"]) if env.get("guild_id") else None
        guild = self.guilds.get(gid) if gid is not None else None
        before: dict[Session, bool] = {}
        if guild is not None:
            if event == "CHANNEL_UPDATE":
                cid = int(data["id"])
                before = {s: guild.can_view(s.user_id, cid) for s in self.by_guild[gid]}
            guild.apply(event, data)
            guild.note_event(event, data)
        if event == "USER_UPDATE" and "id" in data:
            self.platform.auth_cache.forget_user(int(data["id"]))
        if event == "TOKEN_REVOKED":
            revoked = {int(t) for t in data["token_ids"]}
            self.platform.auth_cache.forget_tokens(revoked)  # other processes' revocations
            for s in list(self.sessions.values()):
                if s.token_id in revoked:
                    asyncio.create_task(s.close(Close.AUTHENTICATION_FAILED, "token revoked"))
            return
        if event == "GUILD_MEMBER_ADD" and gid is not None:
            for s in list(self.by_user.get(int(data["user"]["id"]), ())):
                await self.join_guild(s, gid, announce=True)
        self.deliver_all(self.audience(env), env)
        if before:
            self._visibility_changes(guild, before, data, env["position"])  # type: ignore[arg-type]
        if event == "GUILD_MEMBER_REMOVE" and gid is not None:
            for s in list(self.by_user.get(int(data["user"]["id"]), ())):
                self.leave_guild(s, gid)
        elif event == "GUILD_DELETE":
            for uid in env.get("user_ids") or []:
                for s in list(self.by_user.get(int(uid), ())):
                    self.leave_guild(s, int(data["id"]))

    def _visibility_changes(self, guild: GuildState, before: dict[Session, bool], data: dict[str, Any], position: int) -> None:
        """A permission change on a channel: those who lost it see it deleted, those who gained
        it see it created (CHANNEL_UPDATE itself went to those who see it now)."""
        cid = int(data["id"])
        payload = orjson.dumps(data).decode()
        for s, saw in before.items():
            sees = guild.can_view(s.user_id, cid)
            if saw and not sees and s.intents & GUILDS:
                s.send_dispatch("CHANNEL_DELETE", payload, None)
            elif sees and not saw and s.intents & GUILDS:
                s.send_dispatch("CHANNEL_CREATE", payload, None)

    def audience(self, env: dict[str, Any]) -> list[Session]:
        """Local sessions that may receive this stream event (before intents)."""
        user_ids = env.get("user_ids")
        if user_ids:
            return [s for u in user_ids for s in self.by_user.get(int(u), ())]
        if not env.get("guild_id"):
            return []
        gid = int(env["guild_id"])
        sessions = self.by_guild.get(gid)
        if not sessions:
            return []
        cid = env.get("channel_id")
        if cid is None or env["type"] in _CHANNEL_SCOPED_GUILD_EVENTS:
            return list(sessions)
        viewers = self.guilds[gid].viewers(int(cid))
        return [s for s in sessions if s.user_id in viewers]

    def reaches(self, s: Session, env: dict[str, Any]) -> bool:
        """`s in self.audience(env)`, for one session: what a replay asks of every event, without
        building the event's whole audience each time."""
        user_ids = env.get("user_ids")
        if user_ids:
            return str(s.user_id) in user_ids
        if not env.get("guild_id"):
            return False
        gid = int(env["guild_id"])
        if gid not in s.guild_ids:
            return False
        cid = env.get("channel_id")
        if cid is None or env["type"] in _CHANNEL_SCOPED_GUILD_EVENTS:
            return True
        return s.user_id in self.guilds[gid].viewers(int(cid))

    def deliver_all(self, sessions: Iterable[Session], env: dict[str, Any], *,
                    encoded: dict[int, tuple[str, str, bytes]] | None = None, replay: bool = False) -> None:
        """Sends one stream event to each of `sessions` that its intents allow. The frame is
        encoded once per variant (with or without content) and reused for every session; this
        loop runs once per session per message, so its per-event work is hoisted out of it."""
        event, data, position = env["type"], env["data"], env["position"]
        in_dm = not env.get("guild_id") and env.get("channel_id") is not None
        cache = env.setdefault("_encoded", {}) if encoded is None else encoded
        allowed: dict[int, bool] = {}  # by intents: sessions share a handful of intent sets
        content_gated = event in CONTENT_EVENTS and not in_dm
        for s in sessions:
            ok = allowed.get(s.intents)
            if ok is None:
                ok = allowed[s.intents] = intent_allows(s.intents, event, in_dm=in_dm)
            if not ok:
                continue
            key = 1 if content_gated and s.bot and not s.intents & MESSAGE_CONTENT and not _addressed_to(data, s.user_id) else 0
            hit = cache.get(key)
            if hit is None:
                payload = orjson.dumps(_without_content(data) if key else data).decode()
                frame = f'{{"op":0,"t":"{event}","s":{position << SEQ_SHIFT},"d":{payload}}}'
                hit = cache[key] = (payload, frame, text_frame(frame.encode()))
            s.send_dispatch(event, hit[0], position, replay=replay, frame=hit[1], wire=hit[2])
            self.dispatched += 1

    def _on_ephemeral(self, env: dict[str, Any]) -> None:
        """TYPING_START and PRESENCE_UPDATE: not in the event log, never replayed."""
        event, data = env["type"], env["data"]
        payload = orjson.dumps(data).decode()
        if event == "PRESENCE_UPDATE":
            for gid in env.get("guild_ids", []):
                per_guild = None
                for s in self.by_guild.get(int(gid), ()):
                    if s.intents & GUILD_PRESENCES:
                        per_guild = per_guild or orjson.dumps({**data, "guild_id": str(gid)}).decode()
                        s.send_dispatch(event, per_guild, None)
            return
        env = {**env, "position": None}
        for s in self.audience(env):
            if intent_allows(s.intents, event, in_dm=not env.get("guild_id")) and s.user_id != int(data.get("user_id", 0)):
                s.send_dispatch(event, payload, None)

    # --- sessions --------------------------------------------------------------------------

    def register(self, s: Session) -> None:
        self.sessions[s.id] = s
        self.by_user[s.user_id].add(s)

    def unregister(self, s: Session) -> None:
        if self.sessions.get(s.id) is s:  # not a newer connection of the same session (a resume here)
            del self.sessions[s.id]
        self.by_user[s.user_id].discard(s)
        if not self.by_user[s.user_id]:
            del self.by_user[s.user_id]
        for gid in list(s.guild_ids):
            self.leave_guild(s, gid)

    async def ensure_guild(self, gid: int) -> GuildState | None:
        state = self.guilds.get(gid)
        if state is not None:
            return state
        async with self._guild_lock:
            state = self.guilds.get(gid)
            if state is None:
                async with self.platform.read() as conn:
                    state = await load_guild_state(conn, gid)
                if state is not None:
                    self.guilds[gid] = state
        return state

    async def join_guild(self, s: Session, gid: int, *, announce: bool = False) -> None:
        state = await self.ensure_guild(gid)
        if state is None or gid in s.guild_ids:
            return
        s.guild_ids.add(gid)
        self.by_guild[gid].add(s)
        if announce and s.intents & GUILDS:
            from .ready import guild_create

            s.send_dispatch("GUILD_CREATE", orjson.dumps(await guild_create(self, s, gid)).decode(), None)

    def leave_guild(self, s: Session, gid: int) -> None:
        s.guild_ids.discard(gid)
        members = self.by_guild.get(gid)
        if members is not None:
            members.discard(s)
            if not members:
                del self.by_guild[gid]
                self.guilds.pop(gid, None)  # nobody here needs it; reloaded on demand

    # --- resume ----------------------------------------------------------------------------

    async def events_between(self, after: int, upto: int) -> list[dict[str, Any]]:
        """Positions (after, upto]: from the events this hub dispatched last when they cover
        the range (a reconnect storm's replays then cost no Redis read, no decoding, and reuse
        each event's encoded frames), else from the Redis stream when it still holds them, else
        from PostgreSQL (the event log keeps everything)."""
        if upto <= after:
            return []
        recent = self.recent
        if recent and recent[0]["position"] <= after + 1 and recent[-1]["position"] >= upto:
            start = after + 1 - recent[0]["position"]
            return list(itertools.islice(recent, start, start + upto - after))
        key = stream_key(self.prefix)
        first = await self.redis.xrange(key, count=1)
        if first and int(first[0][0].split(b"-")[0]) <= after + 1:
            entries = await self.redis.xrange(key, min=f"{after + 1}-0", max=f"{upto}-1")
            found = [decode_entry(fields) for _, fields in entries]
            if len(found) == upto - after:
                return found
        async with self.platform.read() as conn:
            rows = (await conn.execute(text(
                "SELECT position, type, guild_id, channel_id, user_ids, data, created_at FROM events "
                "WHERE position > :a AND position <= :b ORDER BY position"), {"a": after, "b": upto})).all()
        return [{"position": r.position, "type": r.type, "guild_id": _s(r.guild_id), "channel_id": _s(r.channel_id),
                 "user_ids": [str(u) for u in r.user_ids] if r.user_ids else None, "created_at": r.created_at.isoformat(),
                 "data": r.data} for r in rows]

    async def replay(self, s: Session, after: int) -> None:
        """Sends `s` what it missed after `after`, up to what this instance has read; later
        events reach it live (held in its buffer meanwhile)."""
        for env in await self.events_between(after, self.position):
            if env["type"] == "GUILD_MEMBER_ADD" and int(env["data"]["user"]["id"]) == s.user_id and env.get("guild_id"):
                await self.join_guild(s, int(env["guild_id"]))
            if self.reaches(s, env):
                self.deliver_all((s,), env, replay=True)  # the event's frames, as encoded for live delivery
                await s.writable()
            if s.closed:
                return

    # --- session records in Redis (for RESUME on any instance) ------------------------------

    def _session_key(self, session_id: str) -> str:
        return f"{self.prefix}gw:session:{session_id}"

    @property
    def record_refresh_seconds(self) -> float:
        return self.resume_window / 5

    @property
    def record_ttl_ms(self) -> int:
        """A record outlives its last refresh by the resume window plus two refresh periods: a
        connected session's record never expires (the refresher renews it well before), and one
        whose connection ended (or whose instance was killed) stays resumable for the window."""
        return int((self.resume_window + 2 * self.record_refresh_seconds) * 1000)

    def _record(self, s: Session) -> bytes:
        return orjson.dumps({"user_id": s.user_id, "token_id": s.token_id, "intents": s.intents, "bot": s.bot,
                             "large_threshold": s.large_threshold, "saved": time.time()})

    async def save_session(self, s: Session) -> None:
        """Writes the session's resume record: when it starts or resumes, and when its
        connection ends (the resume window starts then)."""
        await self.redis.set(self._session_key(s.id), self._record(s), px=self.record_ttl_ms)

    async def _refresh_sessions(self) -> None:
        """Renews the records of every session connected here, every fifth of the resume window
        (one pipeline for all), so that a session connected for hours is as resumable as one
        that just started."""
        while True:
            await asyncio.sleep(self.record_refresh_seconds)
            try:
                sessions = [s for s in self.sessions.values() if not s.closed]
                for i in range(0, len(sessions), 1000):
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for s in sessions[i:i + 1000]:
                            pipe.set(self._session_key(s.id), self._record(s), px=self.record_ttl_ms)
                        await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception:  # retried at the next period, well inside the records' lifetime
                log.warning("resume record refresh failed", exc_info=True)

    async def load_session(self, session_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self._session_key(session_id))
        return orjson.loads(raw) if raw else None

    async def forget_session(self, session_id: str) -> None:
        await self.redis.delete(self._session_key(session_id))

    async def publish_ephemeral(self, env: dict[str, Any]) -> None:
        await self.redis.xadd(ephemeral_key(self.prefix), {"event": orjson.dumps(env)}, maxlen=10_000, approximate=True)


def _s(value: int | None) -> str | None:
    return str(value) if value is not None else None


def _addressed_to(message: dict[str, Any], user_id: int) -> bool:
    uid = str(user_id)
    return message.get("author", {}).get("id") == uid or any(u.get("id") == uid for u in message.get("mentions", []))


def _without_content(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "content": "", "embeds": [], "attachments": [], "components": []}
