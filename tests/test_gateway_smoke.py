from __future__ import annotations

from .gwclient import GatewayClient
from .helpers import RunningServer, World


async def test_identify_and_receive(world: World, server: RunningServer) -> None:
    gw = GatewayClient(server.url)
    ready = await gw.identify(world.bot.token, intents=(1 << 0) | (1 << 9) | (1 << 15))
    assert ready["d"]["user"]["id"] == str(world.bot.id)
    guild = await gw.next(t="GUILD_CREATE")
    assert guild["d"]["id"] == str(world.guild_id)
    msg = await world.send(world.alice, "hello gateway")
    got = await gw.next(t="MESSAGE_CREATE")
    assert got["d"]["id"] == msg["id"] and got["d"]["content"] == "hello gateway"
    await gw.close()
