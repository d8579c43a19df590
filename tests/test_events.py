"""The event log and its stream: published only after commit, dense positions in a
commit-safe order, nothing skipped when a transaction commits late, recovery of a stream that
missed entries."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from sqlalchemy import text

from townsquare.platform.actions.context import Platform
from townsquare.platform.events.publisher import EventPublisher, decode_entry, stream_key
from townsquare.platform.events.types import E

from .helpers import RunningServer, World, wait_for


def _leader(server: RunningServer) -> EventPublisher:
    return server.platform.publisher


async def _stream(redis: Redis, prefix: str, after: int = 0) -> list[dict]:
    entries = await redis.xrange(stream_key(prefix), min=f"({after}-1" if after else "-")
    return [decode_entry(fields) for _, fields in entries]


async def _last_position(platform: Platform) -> int:
    async with platform.read() as conn:
        return (await conn.execute(text("SELECT coalesce(max(position), 0) FROM events"))).scalar_one()


async def test_message_event_reaches_stream_after_commit(world: World) -> None:
    platform = world.platform
    start = await _last_position(platform)
    msg = await world.send(world.alice, "event please")

    async def found() -> list[dict]:
        return [e for e in await _stream(platform.redis, platform.settings.redis_prefix, start)
                if e["type"] == "MESSAGE_CREATE" and e["data"]["id"] == msg["id"]]

    [event] = await wait_for(found)
    assert event["channel_id"] == str(world.general_id)
    assert event["guild_id"] == str(world.guild_id)
    assert event["data"]["content"] == "event please"
    assert event["position"] > start


async def test_rolled_back_write_emits_nothing(platform: Platform) -> None:
    marker = "rollback-marker"

    class Boom(Exception):
        pass

    try:
        async with platform.transaction() as tx:
            await tx.emit(E.USER_UPDATE, {"marker": marker}, user_ids=[1])
            raise Boom()
    except Boom:
        pass
    async with platform.read() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM events WHERE data->>'marker' = :m"), {"m": marker})).scalar_one()
    assert count == 0


async def test_late_commit_is_not_skipped(platform: Platform, server: RunningServer) -> None:
    """T1 writes first but commits last; T2 commits in between. The publisher must not hand
    out a position to T2's event while T1 can still commit below it."""
    leader = _leader(server)
    t1 = await platform.engine.connect()
    tx1 = await t1.begin()
    await t1.execute(text("INSERT INTO events (type, data) VALUES ('TEST', '{\"late\": 1}')"))
    async with platform.transaction() as tx2:
        await tx2.emit(E.USER_UPDATE, {"late": 2}, user_ids=[1])
    cycles = leader.cycles
    await wait_for(lambda: _true(leader.cycles >= cycles + 3))  # the leader has looked, several times
    async with platform.read() as conn:
        positioned = (await conn.execute(text("SELECT count(*) FROM events WHERE data ? 'late' AND position IS NOT NULL"))).scalar_one()
    assert positioned == 0  # T2 waits behind the still-open T1
    await tx1.commit()
    await t1.close()

    async def both() -> list:
        async with platform.read() as conn:
            rows = (await conn.execute(text("SELECT position, data->>'late' AS n FROM events WHERE data ? 'late' ORDER BY position"))).all()
        return rows if all(r.position is not None for r in rows) else []

    rows = await wait_for(both)
    assert [r.n for r in rows] == ["1", "2"]
    stream = await _stream(platform.redis, platform.settings.redis_prefix, rows[0].position - 1)
    in_stream = [e["data"].get("late") for e in stream if "late" in e["data"]]
    assert in_stream == [1, 2]


async def test_concurrent_writers_get_dense_ordered_positions(platform: Platform, server: RunningServer) -> None:
    before = await _last_position(platform)

    async def writer(i: int) -> None:
        for j in range(10):
            async with platform.transaction() as tx:
                await tx.emit(E.USER_UPDATE, {"w": i, "j": j}, user_ids=[1])

    await asyncio.gather(*(writer(i) for i in range(5)))

    async def mine() -> list[dict]:
        stream = await _stream(platform.redis, platform.settings.redis_prefix, before)
        found = [e for e in stream if "w" in e["data"]]
        return stream if len(found) == 50 else []

    stream = await wait_for(mine)
    positions = [e["position"] for e in stream]
    assert positions == list(range(before + 1, before + 1 + len(positions)))  # dense: no gaps, no repeats
    ours = [e for e in stream if "w" in e["data"]]
    for i in range(5):  # each writer's own events keep their order
        assert [e["data"]["j"] for e in ours if e["data"]["w"] == i] == list(range(10))


async def test_failover_and_stream_repair(platform: Platform, server: RunningServer) -> None:
    """The leader's connection dies and Redis lost the stream's tail: a (re)elected leader
    re-adds what PostgreSQL has, and publishing goes on without gaps."""
    s = platform.settings
    standby = EventPublisher(platform.engine.url.render_as_string(hide_password=False), platform.redis, prefix=s.redis_prefix,
                             maxlen=s.event_stream_maxlen, poll_seconds=0.05, schema=s.database_schema)
    await standby.start()
    try:
        async with platform.transaction() as tx:
            await tx.emit(E.USER_UPDATE, {"before_failover": True}, user_ids=[1])
        last = await wait_for(lambda: _positioned(platform, "before_failover"))
        assert not standby.leader  # only one leader per schema
        await platform.redis.delete(stream_key(s.redis_prefix))  # Redis loses the stream
        async with platform.read() as conn:  # the leader's session dies
            await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE application_name = 'townsquare-publisher' AND pid <> pg_backend_pid() "
                                    "AND pg_has_role(usename, 'USAGE')"))
        async with platform.transaction() as tx:
            await tx.emit(E.USER_UPDATE, {"after_failover": True}, user_ids=[1])

        async def republished() -> list[dict]:
            stream = await _stream(platform.redis, s.redis_prefix, max(last - 5, 0))
            return stream if any("after_failover" in e["data"] for e in stream) else []

        stream = await wait_for(republished, timeout=20)
        positions = [e["position"] for e in stream]
        assert positions == list(range(positions[0], positions[0] + len(positions)))
        assert last in positions  # the lost tail came back from PostgreSQL
    finally:
        await standby.stop()


async def _positioned(platform: Platform, key: str) -> int | None:
    async with platform.read() as conn:
        return (await conn.execute(text("SELECT position FROM events WHERE data ? :k"), {"k": key})).scalar()


async def _true(value: bool) -> bool:
    return value
