"""The two hot routes served outside FastAPI answer exactly as the FastAPI routes do: same
bodies, same errors in Discord's shape, same rate-limit and request-id headers; whatever the
hot layer does not recognise reaches FastAPI. Also the raw-driver reads and the frozen heap."""

from __future__ import annotations

import gc

from townsquare.platform.actions import messages
from townsquare.platform.api.hotroutes import _history_query
from townsquare.platform.core.config import Settings
from townsquare.platform.core.heap import YOUNG_THRESHOLD
from townsquare.platform.db.raw import _numbered

from .helpers import RunningServer, World, assert_discord_error, start_server, wait_for


async def test_a_page_is_the_same_whichever_layer_serves_it(world: World) -> None:
    channel = await world.channel("hot-pages")
    sent = [await world.send(world.alice, f"line {i} <@{world.bob.id}>" if i % 3 == 0 else f"line {i}", channel) for i in range(12)]
    await world.client.put(f"/api/v10/channels/{channel}/messages/{sent[4]['id']}/reactions/%F0%9F%91%8D/@me", headers=world.bob.headers)
    await world.send(world.bob, "a reply", channel, message_reference={"message_id": sent[2]["id"]})
    url = f"/api/v10/channels/{channel}/messages"
    hot = await world.client.get(url, params={"limit": 20}, headers=world.bob.headers)
    # an extra parameter the hot layer does not know: FastAPI serves it (and ignores the parameter)
    framework = await world.client.get(url, params={"limit": 20, "x": "1"}, headers=world.bob.headers)
    assert hot.status_code == framework.status_code == 200
    assert hot.json() == framework.json()
    assert len(hot.json()) == 13 and hot.json()[0]["referenced_message"]["id"] == sent[2]["id"]
    for response in (hot, framework):
        assert response.headers["x-ratelimit-bucket"] and response.headers["x-request-id"]
    # the message a POST returned is the message a page shows
    assert next(m for m in hot.json() if m["id"] == sent[0]["id"]) | {"reactions": None} == sent[0] | {"reactions": None}


async def test_hot_routes_answer_errors_in_discord_shape(world: World) -> None:
    url = f"/api/v10/channels/{world.general_id}/messages"
    assert_discord_error(await world.client.post(url, json={"content": "x"}), 401, 0)
    assert_discord_error(await world.client.post(url, content=b"{not json", headers={**world.alice.headers,
                                                                                   "content-type": "application/json"}), 400, 50109)
    assert_discord_error(await world.client.post(url, json={"content": "   "}, headers=world.alice.headers), 400, 50006)
    assert_discord_error(await world.client.post(url, json={"content": "x" * 5000}, headers=world.alice.headers), 400, 50035)
    unknown = "/api/v10/channels/1234567890123/messages"
    assert_discord_error(await world.client.post(unknown, json={"content": "x"}, headers=world.alice.headers), 404, 10003)
    assert_discord_error(await world.client.get(unknown, headers=world.alice.headers), 404, 10003)
    # malformed values are FastAPI's to refuse, with the same error shape as before
    for params in ({"limit": "0"}, {"before": "abc"}, {"before": "1", "after": "2"}, {"limit": "101"}):
        assert_discord_error(await world.client.get(url, params=params, headers=world.alice.headers), 400, 50035)
    too_big = f"/api/v10/channels/{2 ** 64}/messages"
    assert (await world.client.get(too_big, headers=world.alice.headers)).status_code == 400


def test_history_query_recognises_only_the_plain_case() -> None:
    assert _history_query(b"") == {}
    assert _history_query(b"limit=5&before=123") == {"limit": 5, "before": 123}
    for refused in (b"limit=0", b"limit=101", b"before=-1", b"before=1&before=2", b"before=1&after=2", b"limit=", b"around=1e3",
                    b"other=1", b"before=%s" % str(2 ** 63).encode()):
        assert _history_query(refused) is None, refused


def test_named_parameters_become_numbered_ones() -> None:
    sql, names = _numbered("SELECT :a::jsonb, x::text, :b FROM t WHERE c = :a AND d = CAST(:b AS int)")
    assert sql == "SELECT $1::jsonb, x::text, $2 FROM t WHERE c = $1 AND d = CAST($2 AS int)"
    assert names == ("a", "b")


async def test_raw_reads_inside_a_transaction_see_its_own_writes(world: World) -> None:
    """Inside a transaction the page goes through SQLAlchemy, which sends BEGIN first: a row
    written earlier in the same transaction is visible, and rolled back with it."""
    channel = await world.channel("raw-tx")
    await world.send(world.alice, "committed", channel)
    platform = world.platform

    class Rollback(Exception):
        pass

    try:
        async with platform.transaction() as tx:
            await tx.conn.exec_driver_sql(
                "INSERT INTO messages (id, channel_id, guild_id, author_id, type, content) "
                f"SELECT id + 1, channel_id, guild_id, author_id, 0, 'uncommitted' FROM messages WHERE channel_id = {channel}")
            seen = await messages.load_messages(tx.conn, "m.channel_id = :cid", {"cid": channel}, me=world.alice.id, base_url="")
            assert [m["content"] for m in seen] == ["uncommitted", "committed"]
            raise Rollback()
    except Rollback:
        pass
    async with platform.read() as conn:
        seen = await messages.load_messages(conn, "m.channel_id = :cid", {"cid": channel}, me=world.alice.id, base_url="")
    assert [m["content"] for m in seen] == ["committed"]


def test_a_server_freezes_its_startup_heap_and_thaws_it_at_shutdown(settings: Settings, services) -> None:  # type: ignore[no-untyped-def]
    running: RunningServer = start_server(settings, services.database_url, services.redis_url)
    try:
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    finally:
        running.stop()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[0] != YOUNG_THRESHOLD  # CPython's again


async def test_a_client_gone_mid_body_is_no_server_error(world: World, server: RunningServer) -> None:
    """A client that closes its connection in the middle of a body (JSON or multipart, on the hot
    message route and on a FastAPI one) is counted as a 4xx (499, client closed request), never
    logged as an unhandled error nor counted among the 5xx."""
    import asyncio
    import logging
    from urllib.parse import urlsplit

    from townsquare.platform.api import errors

    registry = server.app.state.http_metrics.registry
    send_route = "/api/v10/channels/{channel_id}/messages"
    edit_route = "/api/v10/channels/{channel_id}/messages/{message_id}"

    def count(method: str, route: str, status: str) -> float:
        return registry.get_sample_value("townsquare_http_request_duration_seconds_count",
                                         {"method": method, "route": route, "status": status}) or 0.0

    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.ERROR)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    edited = await world.send(world.alice, "to be edited")
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    token = world.alice.headers["Authorization"]
    cases = [
        ("POST", f"/api/v10/channels/{world.general_id}/messages", send_route, "application/json", b'{"content": "half a mess'),
        ("POST", f"/api/v10/channels/{world.general_id}/messages", send_route, "multipart/form-data; boundary=XyZ",
         b'--XyZ\r\nContent-Disposition: form-data; name="files[0]"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nhalf a fi'),
        ("PATCH", f"/api/v10/channels/{world.general_id}/messages/{edited['id']}", edit_route, "application/json", b'{"content": "ha'),
    ]
    handler = Collect()
    loggers = [logging.getLogger(n) for n in ("", errors.__name__, "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        for method, path, route, content_type, partial in cases:
            before = {s: count(method, route, s) for s in ("4xx", "5xx")}
            reader, writer = await asyncio.open_connection(host, port)
            head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(partial) + 500}\r\n\r\n").encode()
            writer.write(head + partial)
            await writer.drain()
            await asyncio.sleep(0)
            writer.close()  # gone, 500 bytes short
            await writer.wait_closed()

            async def counted(method: str = method, route: str = route, before: dict[str, float] = before) -> bool:
                return count(method, route, "4xx") + count(method, route, "5xx") > before["4xx"] + before["5xx"]

            await wait_for(counted)
            assert count(method, route, "5xx") == before["5xx"], (method, content_type)
            assert count(method, route, "4xx") == before["4xx"] + 1, (method, content_type)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    assert [r.getMessage() for r in handler.records] == []
    # and the server is fine: the same routes answer the next request
    assert (await world.client.post(f"/api/v10/channels/{world.general_id}/messages", json={"content": "still here"},
                                    headers=world.alice.headers)).status_code == 200
