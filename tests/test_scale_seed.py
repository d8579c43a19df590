"""Large societies through the database (issue 18): a generated society of 1,200 agents seeds in
a bounded number of statements (batches, not a dozen round trips per agent) with every row and
event the one-by-one path made; a name clash is refused before anything is created; the
dashboard's agent list pages Discord style (limit / after) and refuses bad pages with a 400."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from townsquare.agents.society.generate import generate
from townsquare.platform.actions import agents
from townsquare.platform.actions.context import Platform
from townsquare.platform.actions.users import authenticate
from townsquare.platform.core.errors import InvalidFormBody

from .helpers import assert_discord_error, name, person


@contextmanager
def statements(platform: Platform) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(platform.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(platform.engine.sync_engine, "before_cursor_execute", count)


def tag() -> str:
    return name("")[:6].replace("_", "")


async def test_a_large_society_seeds_in_batches_with_every_row_and_event(platform: Platform) -> None:
    admin = await person(platform, is_admin=True)
    small, big = generate(300, seed=11, tag=tag()), generate(1200, seed=12, tag=tag())
    with statements(platform) as few:
        small_id = await agents.do_found_society(platform, admin.id, small, name("society"))
    with statements(platform) as many:
        guild_id = await agents.do_found_society(platform, admin.id, big, name("society"))
    # four times the agents, a few more batches: the count follows batches, not agents
    assert len(many) <= len(few) + 20 and len(many) < 150, (len(few), len(many))
    async with platform.read() as conn:
        q = lambda sql: conn.execute(text(sql), {"g": guild_id})  # noqa: E731
        assert (await q("SELECT count(*) FROM agents WHERE guild_id = :g")).scalar() == 1200
        assert (await q("SELECT count(*) FROM members m JOIN agents a ON a.id = m.user_id WHERE m.guild_id = :g "
                        "AND cardinality(m.roles) = 1")).scalar() == 1200  # each with the agents' role
        events = dict((await q("SELECT type, count(*) FROM events WHERE guild_id = :g GROUP BY type")).all())
        assert events["AGENT_CREATE"] == 1200 and events["GUILD_MEMBER_ADD"] == 1200
        assert (await q("SELECT count(*) FROM audit_log WHERE guild_id = :g AND action_type = 200")).scalar() == 1200
        names = set((await q("SELECT persona->>'name' FROM agents WHERE guild_id = :g")).scalars())
    assert names == {a.name for a in big.agents}
    records, _ = await agents.load_registry(platform)
    mine = [r for r in records if r.guild_id == guild_id]
    assert len(mine) == 1200
    me = await authenticate(platform, "Bot", mine[-1].token)  # the sealed token works
    assert me.id == mine[-1].id and small_id != guild_id

    # a cast whose names clash with existing users is refused before anything is made
    clash = big.model_copy(update={"guild": "Clash", "agents": [*generate(5, seed=13, tag=tag()).agents, big.agents[7]]})
    society_name = name("society")
    with pytest.raises(InvalidFormBody) as refused:
        await agents.do_found_society(platform, admin.id, clash, society_name)
    assert "USERNAME_ALREADY_TAKEN" in str(refused.value.errors)
    async with platform.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM guilds WHERE name = 'Clash'"))).scalar() == 0


async def test_the_dashboards_agent_list_pages(platform: Platform, client: httpx.AsyncClient) -> None:
    admin = await person(platform, is_admin=True)
    guild_id = await agents.do_found_society(platform, admin.id, generate(250, seed=21, tag=tag()), name("society"))
    url = "/api/v10/townsquare/dashboard/agents"
    pages: list[list[dict[str, Any]]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"guild_id": guild_id, "limit": 100, **({"after": after} if after else {})}
        r = await client.get(url, params=params, headers=admin.headers)
        assert r.status_code == 200, r.text
        pages.append(r.json())
        if len(pages[-1]) < 100:
            break
        after = pages[-1][-1]["id"]
    assert [len(p) for p in pages] == [100, 100, 50]
    ids = [int(a["id"]) for p in pages for a in p]
    assert ids == sorted(ids) and len(set(ids)) == 250
    assert all({"live_status", "last_turn", "last_failure", "memory_count"} <= set(a) for a in pages[0])
    default = (await client.get(url, params={"guild_id": guild_id}, headers=admin.headers)).json()
    assert [a["id"] for a in default] == [a["id"] for a in pages[0]]  # 100 by default
    one = (await client.get(url, params={"guild_id": guild_id, "after": ids[41] - 1, "limit": 1}, headers=admin.headers)).json()
    assert [int(a["id"]) for a in one] == [ids[41]]  # how an agent's page reads its own line
    for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"after": -1}, {"after": "abc"}):
        assert_discord_error(await client.get(url, params={"guild_id": guild_id, **bad}, headers=admin.headers), 400, 50035)
    human = await person(platform)
    assert_discord_error(await client.get(url, params={"guild_id": guild_id}, headers=human.headers), 403)


async def test_moods_of_many_agents_are_saved_in_one_statement(platform: Platform) -> None:
    admin = await person(platform, is_admin=True)
    guild_id = await agents.do_found_society(platform, admin.id, generate(300, seed=41, tag=tag()), name("society"))
    records, _ = await agents.load_registry(platform)
    ids = [r.id for r in records if r.guild_id == guild_id]
    moods = {i: {"valence": round(-0.5 + n / 600, 4), "arousal": 0.5, "energy": 0.9, "label": "calm"} for n, i in enumerate(ids)}
    with statements(platform) as seen:
        await agents.save_moods(platform, moods)
    assert len([s for s in seen if "UPDATE agents" in s]) == 1
    records, _ = await agents.load_registry(platform)
    assert {r.id: r.mood for r in records if r.guild_id == guild_id} == moods
