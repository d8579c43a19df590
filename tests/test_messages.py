"""Messages through real HTTP: send (nonce), history paging, edits, deletes, replies,
mentions, pins, and the query budget of the hot paths."""

from __future__ import annotations

import asyncio

from townsquare.platform.db.engine import QueryCounter

from .helpers import RunningServer, World


def _ids(messages: list[dict]) -> list[int]:
    return [int(m["id"]) for m in messages]


async def test_nonce_makes_retries_idempotent(world: World) -> None:
    first = await world.send(world.alice, "only once", nonce="abc-123")
    again = await world.send(world.alice, "only once (retried)", nonce="abc-123")
    assert again["id"] == first["id"]
    assert again["content"] == "only once"
    # the same nonce from another author or in another channel is a different message
    other = await world.send(world.bob, "bob's", nonce="abc-123")
    assert other["id"] != first["id"]
    r = await world.client.get(f"/api/v10/channels/{world.general_id}/messages", headers=world.alice.headers)
    assert [m["content"] for m in r.json()].count("only once") == 1


async def test_concurrent_retries_with_one_nonce_create_one_message(world: World) -> None:
    results = await asyncio.gather(*(world.send(world.alice, "race", nonce="race-1") for _ in range(8)))
    assert len({m["id"] for m in results}) == 1
    r = await world.client.get(f"/api/v10/channels/{world.general_id}/messages", headers=world.alice.headers)
    assert [m["content"] for m in r.json()].count("race") == 1


async def test_history_paging(world: World) -> None:
    channel = await world.channel("paging")
    sent = [await world.send(world.alice, f"m{i}", channel) for i in range(30)]
    ids = _ids(sent)
    url = f"/api/v10/channels/{channel}/messages"
    h = world.bob.headers
    newest = (await world.client.get(url, params={"limit": 10}, headers=h)).json()
    assert _ids(newest) == list(reversed(ids[-10:]))
    before = (await world.client.get(url, params={"limit": 5, "before": ids[10]}, headers=h)).json()
    assert _ids(before) == list(reversed(ids[5:10]))
    after = (await world.client.get(url, params={"limit": 5, "after": ids[10]}, headers=h)).json()
    assert _ids(after) == list(reversed(ids[11:16]))
    around = (await world.client.get(url, params={"limit": 5, "around": ids[15]}, headers=h)).json()
    assert sorted(_ids(around)) == ids[13:18]
    bad = await world.client.get(url, params={"limit": 500}, headers=h)
    assert bad.status_code == 400 and bad.json()["code"] == 50035
    both = await world.client.get(url, params={"before": ids[3], "after": ids[1]}, headers=h)
    assert both.status_code == 400


async def test_edit_and_delete(world: World) -> None:
    msg = await world.send(world.alice, "typo")
    url = f"/api/v10/channels/{world.general_id}/messages/{msg['id']}"
    r = await world.client.patch(url, json={"content": "fixed"}, headers=world.alice.headers)
    assert r.status_code == 200 and r.json()["content"] == "fixed" and r.json()["edited_timestamp"]
    r = await world.client.patch(url, json={"content": "hijack"}, headers=world.bob.headers)
    assert r.status_code == 403 and r.json()["code"] == 50005
    r = await world.client.delete(url, headers=world.bob.headers)
    assert r.status_code == 403 and r.json()["code"] == 50013
    r = await world.client.delete(url, headers=world.alice.headers)
    assert r.status_code == 204
    r = await world.client.get(url, headers=world.alice.headers)
    assert r.status_code == 404 and r.json()["code"] == 10008
    # the owner (a moderator) may delete anyone's message
    other = await world.send(world.bob, "moderate me")
    r = await world.client.delete(f"/api/v10/channels/{world.general_id}/messages/{other['id']}", headers=world.owner.headers)
    assert r.status_code == 204


async def test_bulk_delete(world: World) -> None:
    channel = await world.channel("bulk")
    ids = _ids([await world.send(world.alice, f"b{i}", channel) for i in range(5)])
    url = f"/api/v10/channels/{channel}/messages/bulk-delete"
    r = await world.client.post(url, json={"messages": [str(i) for i in ids[:3]]}, headers=world.alice.headers)
    assert r.status_code == 403
    r = await world.client.post(url, json={"messages": [ids[0]]}, headers=world.owner.headers)
    assert r.status_code == 400 and r.json()["code"] == 50016
    r = await world.client.post(url, json={"messages": ids[:3]}, headers=world.owner.headers)
    assert r.status_code == 204
    left = (await world.client.get(f"/api/v10/channels/{channel}/messages", headers=world.owner.headers)).json()
    assert sorted(_ids(left)) == ids[3:]
    r = await world.client.get(f"/api/v10/channels/{channel}", headers=world.owner.headers)
    assert r.json()["last_message_id"] == str(ids[-1])


async def test_reply_and_mentions(world: World) -> None:
    original = await world.send(world.bob, "question?")
    reply = await world.send(world.alice, f"answer for <@{world.bob.id}> in <#{world.general_id}> @everyone",
                             message_reference={"message_id": original["id"]})
    assert reply["type"] == 19
    assert reply["message_reference"]["message_id"] == original["id"]
    assert reply["referenced_message"]["id"] == original["id"]
    assert [u["id"] for u in reply["mentions"]] == [str(world.bob.id)]
    assert reply["mention_everyone"] is False  # alice lacks MENTION_EVERYONE
    owner_ping = await world.send(world.owner, "@everyone meeting")
    assert owner_ping["mention_everyone"] is True
    # replying to a message of another channel, or an unknown one, is refused
    elsewhere = await world.channel("elsewhere")
    r = await world.client.post(f"/api/v10/channels/{elsewhere}/messages", headers=world.alice.headers,
                                json={"content": "x", "message_reference": {"message_id": original["id"]}})
    assert r.status_code == 400 and r.json()["code"] == 50035
    # unknown ids in mentions are ignored, not errors
    ghost = await world.send(world.alice, "<@123456789012345678> <@!99999999999999999999999>")
    assert ghost["mentions"] == []
    # allowed_mentions narrows who is pinged
    quiet = await world.send(world.alice, f"<@{world.bob.id}>", allowed_mentions={"parse": []})
    assert quiet["mentions"] == []
    history = (await world.client.get(f"/api/v10/channels/{world.general_id}/messages", params={"limit": 10},
                                      headers=world.bob.headers)).json()
    stored = next(m for m in history if m["id"] == reply["id"])
    assert stored["referenced_message"]["content"] == "question?"
    assert [u["id"] for u in stored["mentions"]] == [str(world.bob.id)]


async def test_pins(world: World) -> None:
    msg = await world.send(world.alice, "pin me")
    pin_url = f"/api/v10/channels/{world.general_id}/pins/{msg['id']}"
    assert (await world.client.put(pin_url, headers=world.alice.headers)).status_code == 403
    assert (await world.client.put(pin_url, headers=world.owner.headers)).status_code == 204
    pins = (await world.client.get(f"/api/v10/channels/{world.general_id}/pins", headers=world.bob.headers)).json()
    assert [p["id"] for p in pins] == [msg["id"]] and pins[0]["pinned"] is True
    same = (await world.client.get(f"/api/v10/channels/{world.general_id}/messages/pins", headers=world.bob.headers)).json()
    assert same == pins
    assert (await world.client.delete(pin_url, headers=world.owner.headers)).status_code == 204
    assert (await world.client.get(f"/api/v10/channels/{world.general_id}/pins", headers=world.bob.headers)).json() == []


async def test_reactions(world: World) -> None:
    msg = await world.send(world.alice, "react")
    base = f"/api/v10/channels/{world.general_id}/messages/{msg['id']}/reactions"
    for actor in (world.alice, world.bob):
        assert (await world.client.put(f"{base}/%F0%9F%91%8D/@me", headers=actor.headers)).status_code == 204
    assert (await world.client.put(f"{base}/%F0%9F%91%8D/@me", headers=world.bob.headers)).status_code == 204  # idempotent
    users = (await world.client.get(f"{base}/%F0%9F%91%8D", headers=world.bob.headers)).json()
    assert sorted(int(u["id"]) for u in users) == sorted([world.alice.id, world.bob.id])
    got = (await world.client.get(f"/api/v10/channels/{world.general_id}/messages/{msg['id']}", headers=world.bob.headers)).json()
    assert got["reactions"][0]["count"] == 2 and got["reactions"][0]["me"] is True and got["reactions"][0]["emoji"]["name"] == "👍"
    assert (await world.client.delete(f"{base}/%F0%9F%91%8D/@me", headers=world.bob.headers)).status_code == 204
    assert (await world.client.delete(f"{base}/%F0%9F%91%8D/{world.alice.id}", headers=world.bob.headers)).status_code == 403
    assert (await world.client.delete(f"{base}/%F0%9F%91%8D/{world.alice.id}", headers=world.owner.headers)).status_code == 204
    for bad in ("notanemoji", "custom:123", "%3Cscript%3E", "a" * 40):
        r = await world.client.put(f"{base}/{bad}/@me", headers=world.bob.headers)
        assert r.status_code == 400 and r.json()["code"] == 10014, bad
    flag = "%F0%9F%87%AB%F0%9F%87%B7"  # 🇫🇷, two regional indicators
    assert (await world.client.put(f"{base}/{flag}/@me", headers=world.bob.headers)).status_code == 204


async def test_send_query_budget(world: World, server: RunningServer) -> None:
    """Posting a message: channel access, and one statement writing message, event and channel
    (the token was looked up by the warm-up request and is remembered)."""
    counter = QueryCounter.of(server.platform.engine)
    await world.send(world.alice, "warm-up")
    before = counter.count
    await world.send(world.alice, "counted")
    assert counter.count - before == 2
    before = counter.count
    r = await world.client.get(f"/api/v10/channels/{world.general_id}/messages", params={"limit": 50}, headers=world.alice.headers)
    assert r.status_code == 200
    assert counter.count - before == 2  # channel access, one page query
