from __future__ import annotations

from .helpers import World


async def test_send_and_read(world: World) -> None:
    msg = await world.send(world.alice, "hello townsquare")
    r = await world.client.get(f"/api/v10/channels/{world.general_id}/messages", headers=world.bob.headers)
    assert r.status_code == 200, r.text
    assert r.json()[0]["id"] == msg["id"]
    assert r.json()[0]["content"] == "hello townsquare"
