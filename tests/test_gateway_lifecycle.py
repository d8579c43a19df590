"""A gateway session's life around its connection: the resume record outlives the connection
while it lasts, RESUMED continues the sequence, a client's close leaves no task behind, and a
stopping server tells every session to RECONNECT before it closes the socket."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from townsquare.platform.core.config import Settings

from .gwclient import GatewayClient
from .helpers import RunningServer, World, free_port, start_server, wait_for, wait_healthy
from .instances import Instance

GUILDS_AND_MESSAGES = (1 << 0) | (1 << 9) | (1 << 15)


async def on_server_loop(server: RunningServer, fn: Callable[[Any], Any]) -> Any:
    """Runs `fn(hub)` (a coroutine function) on the server's own event loop and returns its result."""
    hub = server.app.state.hub
    loop = hub._task.get_loop()

    async def call() -> Any:
        return await fn(hub)

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), loop))


# --- item 2: the resume record does not expire while the session is connected -------------------

@pytest.fixture
def short_window_server(settings: Settings, services) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    running = start_server(settings, services.database_url, services.redis_url)
    yield running
    running.stop()


async def test_resume_record_outlives_a_long_connection(world: World, short_window_server: RunningServer) -> None:
    server = short_window_server

    async def shorten(hub: Any) -> tuple[float, int]:
        # a 4 s resume window: records live 5.6 s past their last renewal, renewed every 0.8 s
        hub._refresher.cancel()
        hub.resume_window = 4.0
        hub._refresher = asyncio.get_running_loop().create_task(hub._refresh_sessions())
        return hub.record_refresh_seconds, hub.record_ttl_ms

    refresh, ttl_ms = await on_server_loop(server, shorten)
    redis, prefix = world.platform.redis, world.platform.settings.redis_prefix
    gw = GatewayClient(server.url)
    await gw.identify(world.bot.token, intents=GUILDS_AND_MESSAGES)
    key = f"{prefix}gw:session:{gw.session_id}"
    first = orjson.loads(await redis.get(key))["saved"]

    # connected for two record lifetimes: the record is renewed, never gone
    renewals: set[float] = {first}
    loop = asyncio.get_running_loop()
    until = loop.time() + 2 * ttl_ms / 1000
    while loop.time() < until:
        raw = await redis.get(key)
        assert raw is not None, "the resume record expired while its session was connected"
        renewals.add(orjson.loads(raw)["saved"])
        await asyncio.sleep(refresh / 2)
    assert len(renewals) >= 3

    # the connection ends: the record stays for the window, and the session resumes
    seq = gw.seq
    await gw.drop()
    await wait_for(lambda: _gone(server, gw.session_id), timeout=15)
    assert await redis.pttl(key) > 0
    again = GatewayClient(server.url)
    await again.resume(world.bot.token, session_id=gw.session_id, seq=seq)
    await again.next(t="RESUMED")
    await again.close()


async def _received(gw: GatewayClient, message_id: str) -> bool:
    return message_id in [m["id"] for m in gw.events("MESSAGE_CREATE")]


async def _gone(server: RunningServer, session_id: str | None) -> bool:
    return session_id not in server.app.state.hub.sessions


# --- item 7: RESUMED does not reuse a sequence number -------------------------------------------

async def test_sequence_numbers_never_repeat_across_a_resume(world: World, server: RunningServer) -> None:
    gw = GatewayClient(server.url)
    await gw.identify(world.bot.token, intents=GUILDS_AND_MESSAGES)
    await gw.next(t="GUILD_CREATE")
    seen = [f["s"] for f in gw.dispatches]
    session, seq = gw.session_id, gw.seq
    await gw.close()
    # nothing happened meanwhile: RESUMED comes right after the last frame seen
    quiet = GatewayClient(server.url)
    await quiet.resume(world.bot.token, session_id=session, seq=seq)
    resumed = await quiet.next(t="RESUMED")
    assert resumed["s"] > seq
    seen.append(resumed["s"])
    seq = quiet.seq
    await quiet.drop()
    # a message while away: replayed, then RESUMED, each with a sequence number of its own
    missed = await world.send(world.alice, "while the bot was away")
    busy = GatewayClient(server.url)
    await busy.resume(world.bot.token, session_id=session, seq=seq)
    await busy.next(t="RESUMED")
    after = await world.send(world.alice, "after the resume")
    while (await busy.next(t="MESSAGE_CREATE"))["d"]["id"] != after["id"]:
        pass
    assert missed["id"] in [m["id"] for m in busy.events("MESSAGE_CREATE")]
    seen += [f["s"] for f in busy.dispatches]
    assert seen == sorted(seen) and len(seen) == len(set(seen)), seen
    await busy.close()


# --- item 11: a client's close leaves no pending writer task ------------------------------------

class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_client_close_ends_the_session_writer(world: World, server: RunningServer) -> None:
    records = _Records()
    logging.getLogger("asyncio").addHandler(records)
    try:
        gw = GatewayClient(server.url)
        await gw.identify(world.bot.token, intents=GUILDS_AND_MESSAGES)
        await gw.next(t="GUILD_CREATE")
        writer = f"gw-writer-{gw.session_id}"

        async def pending(hub: Any) -> list[str]:
            return [t.get_name() for t in asyncio.all_tasks() if not t.done()]

        assert writer in await on_server_loop(server, pending)
        await gw.close()  # a clean close handshake, initiated by the client
        await wait_for(lambda: _gone(server, gw.session_id), timeout=15)
        await wait_for(lambda: _no_task(server, writer), timeout=15)
        await on_server_loop(server, _collect)
        assert not [m for m in records.messages if "destroyed but it is pending" in m], records.messages
    finally:
        logging.getLogger("asyncio").removeHandler(records)


async def _no_task(server: RunningServer, name: str) -> bool:
    async def names(hub: Any) -> set[str]:
        return {t.get_name() for t in asyncio.all_tasks() if not t.done()}

    return name not in await on_server_loop(server, names)


async def _collect(hub: Any) -> None:
    gc.collect()  # a pending task left on a dropped session would be destroyed (and logged) now
    await asyncio.sleep(0)


# --- item 6: a stopping server sends RECONNECT before it closes ---------------------------------

class WorkersInstance(Instance):
    """`townsquare serve --workers 2`: plain uvicorn worker processes under its supervisor."""

    def start(self, timeout: float = 90) -> WorkersInstance:
        self.proc = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "serve", "--no-migrate", "--workers", "2"],
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_healthy(self.url, self.proc, timeout)
        return self


@pytest.mark.parametrize("kind", [Instance, WorkersInstance], ids=["serve", "serve-workers-2"])
async def test_sigterm_sends_reconnect_then_sessions_resume(world: World, server: RunningServer, settings: Settings, services,  # type: ignore[no-untyped-def]
                                                            tmp_path: Any, kind: type[Instance]) -> None:
    instance = kind(settings, services.database_url, services.redis_url, free_port(), tmp_path / "instance").start()
    try:
        identified = GatewayClient(instance.url)
        await identified.identify(world.bot.token, intents=GUILDS_AND_MESSAGES)
        await identified.next(t="GUILD_CREATE")
        waiting = GatewayClient(instance.url)  # connected, not yet identified
        await waiting.open()
        assert instance.proc is not None
        instance.proc.send_signal(signal.SIGTERM)
        for gw in (identified, waiting):
            frame = await gw.next(timeout=30)
            assert frame["op"] == 7 and frame["d"] is None, frame  # RECONNECT, before the socket closes
            assert await gw.closed(timeout=30) in (4000, 1012)
        await asyncio.to_thread(instance.proc.wait, 30)
        # the told session resumes on another server, with what was posted meanwhile
        missed = await world.send(world.alice, "posted while the bot moved")
        moved = GatewayClient(server.url)
        await moved.resume(world.bot.token, session_id=identified.session_id, seq=identified.seq)
        await moved.next(t="RESUMED")  # the replay comes before it
        await wait_for(lambda: _received(moved, missed["id"]), timeout=15)
        await moved.close()
    finally:
        instance.stop()


# --- replays from the hub's memory of recent events, and beyond it ---------------------------------

async def test_replay_beyond_the_recent_events_in_memory(world: World, short_window_server: RunningServer) -> None:
    server = short_window_server

    async def remember_three(hub: Any) -> None:
        from collections import deque

        hub.recent = deque(hub.recent, maxlen=3)

    await on_server_loop(server, remember_three)
    gw = GatewayClient(server.url)
    await gw.identify(world.bot.token, intents=GUILDS_AND_MESSAGES)
    await gw.next(t="GUILD_CREATE")
    session, seq = gw.session_id, gw.seq
    await gw.drop()
    missed = [(await world.send(world.alice, f"missed {i}"))["id"] for i in range(6)]

    await wait_for(lambda: on_server_loop(server, _has_read(missed[-1])), timeout=15)
    # 6 missed, 3 in memory: the replay comes from the stream, each message once, in order
    far = GatewayClient(server.url)
    await far.resume(world.bot.token, session_id=session, seq=seq)
    await far.next(t="RESUMED")
    assert [m["id"] for m in far.events("MESSAGE_CREATE")] == missed
    seq = far.seq
    # the last 2 only: from memory
    await far.drop()
    late = [(await world.send(world.alice, f"late {i}"))["id"] for i in range(2)]
    await wait_for(lambda: on_server_loop(server, _has_read(late[-1])), timeout=15)
    near = GatewayClient(server.url)
    await near.resume(world.bot.token, session_id=session, seq=seq)
    await near.next(t="RESUMED")
    assert [m["id"] for m in near.events("MESSAGE_CREATE")] == late
    await near.close()


def _has_read(message_id: str) -> Callable[[Any], Any]:
    """Whether the hub has dispatched the message (it is its last event)."""
    async def check(hub: Any) -> bool:
        return bool(hub.recent) and hub.recent[-1]["data"].get("id") == message_id

    return check
