"""The event log and its stream: published only after commit, dense positions in a
commit-safe order, nothing skipped when a transaction commits late, recovery of a stream that
missed entries."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from sqlalchemy import text

from townsquare.platform.actions.context import Platform
from townsquare.platform.events.publisher import EventPublisher, lock_key, decode_entry, stream_key
from townsquare.platform.events.types import E

from .helpers import World, wait_for


def _publisher(platform: Platform) -> EventPublisher:
    from townsquare.platform.db.engine import make_engine

    s = platform.settings
    url = platform.engine.url.render_as_string(hide_password=False)
    return EventPublisher(make_engine(url, schema=s.database_schema, pool_size=1), platform.redis, prefix=s.redis_prefix,
                          maxlen=s.event_stream_maxlen, poll_seconds=3600, schema=s.database_schema)


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


async def test_late_commit_is_not_skipped(platform: Platform) -> None:
    """T1 writes first but commits last; T2 commits in between. The publisher must not hand
    out a position to T2's event while T1 can still commit below it."""
    publisher = _publisher(platform)
    await publisher.publish_pending()  # drain whatever earlier tests left
    before = await _last_position(platform)
    engine = platform.engine
    t1 = await engine.connect()
    tx1 = await t1.begin()
    await t1.execute(text("INSERT INTO events (type, data) VALUES ('TEST', '{\"n\": 1}')"))
    async with platform.transaction() as tx2:
        await tx2.emit(E.USER_UPDATE, {"n": 2}, user_ids=[1])
    # T2 is committed but T1 is open: nothing at or after T1 may be positioned yet
    await publisher.publish_pending()
    async with platform.read() as conn:
        positioned = (await conn.execute(text(
            "SELECT data->>'n' FROM events WHERE position > :p AND data ? 'n' ORDER BY position"), {"p": before})).scalars().all()
    assert positioned == []
    await tx1.commit()
    await t1.close()
    await publisher.publish_pending()
    async with platform.read() as conn:
        rows = (await conn.execute(text(
            "SELECT position, data->>'n' AS n FROM events WHERE position > :p ORDER BY position"), {"p": before})).all()
    assert [r.n for r in rows if r.n] == ["1", "2"]
    positions = [r.position for r in rows]
    assert positions == list(range(before + 1, before + 1 + len(positions)))  # dense: no gaps
    stream = await _stream(platform.redis, platform.settings.redis_prefix, before)
    assert [e["position"] for e in stream][: len(positions)] == positions
    await publisher.stop()


async def test_concurrent_writers_get_dense_ordered_positions(platform: Platform) -> None:
    publisher = _publisher(platform)
    await publisher.publish_pending()
    before = await _last_position(platform)

    async def writer(i: int) -> None:
        for j in range(10):
            async with platform.transaction() as tx:
                await tx.emit(E.USER_UPDATE, {"w": i, "j": j}, user_ids=[1])

    async def publish_loop(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await publisher.publish_pending()
            await asyncio.sleep(0)

    stop = asyncio.Event()
    loop_task = asyncio.create_task(publish_loop(stop))
    await asyncio.gather(*(writer(i) for i in range(5)))
    stop.set()
    await loop_task
    await publisher.publish_pending()
    stream = await _stream(platform.redis, platform.settings.redis_prefix, before)
    mine = [e for e in stream if "w" in e["data"]]
    assert len(mine) == 50
    positions = [e["position"] for e in stream]
    assert positions == list(range(before + 1, before + 1 + len(positions)))
    for i in range(5):  # each writer's own events keep their order
        assert [e["data"]["j"] for e in mine if e["data"]["w"] == i] == list(range(10))
    await publisher.stop()


async def test_stream_missing_entries_is_repaired(platform: Platform) -> None:
    """A publisher that died between its commit and its XADD leaves positions that only
    PostgreSQL has; the next publish re-adds them first, in order."""
    publisher = _publisher(platform)
    await publisher.publish_pending()
    async with platform.transaction() as tx:
        # hold the publishers' lock so that no running publisher XADDs these (the "crash")
        await tx.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(platform.settings.database_schema)})
        for n in range(3):
            await tx.emit(E.USER_UPDATE, {"repair": n}, user_ids=[1])
        last = (await tx.conn.execute(text("SELECT coalesce(max(position), 0) FROM events"))).scalar_one()
        ids = (await tx.conn.execute(text(
            "SELECT id FROM events WHERE position IS NULL AND data ? 'repair' ORDER BY id"))).scalars().all()
        assert len(ids) == 3
        for offset, event_id in enumerate(ids, start=1):
            await tx.conn.execute(text("UPDATE events SET position = :p WHERE id = :id"), {"p": last + offset, "id": event_id})
    await publisher.publish_pending()
    stream = await _stream(platform.redis, platform.settings.redis_prefix, last)
    assert [e["data"].get("repair") for e in stream[:3]] == [0, 1, 2]
    assert [e["position"] for e in stream[:3]] == [last + 1, last + 2, last + 3]
    await publisher.stop()
