import orjson, httpx
from .helpers import World, person

async def test_probe(world: World, platform) -> None:
    c = world.client
    h = world.owner.headers
    g = world.general_id
    M = f"/api/v10/channels/{g}/messages"
    r = await c.post(M, data={"payload_json": '{"content":"x"}'}, files={"files[0]": ("../../etc/passwd", b"hello", "text/plain")}, headers=h)
    print("ATT", r.json()["attachments"])
    r = await c.post(M, data={"payload_json": '{"content":"x"}'}, files={"files[0]": ("a\x00b.txt", b"hello", "text/plain")}, headers=h)
    print("ATT", r.json()["attachments"])
    for depth in (250, 260):
        deep = "[" * depth + "]" * depth
        r = await c.post(M, content=('{"content":"x","embeds":[{"a":' + deep + '}]}').encode(), headers={**h, "content-type": "application/json"})
        print("DEPTH", depth, r.status_code)
