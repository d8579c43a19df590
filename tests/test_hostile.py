"""Malformed, oversized and hostile input through real HTTP: never a 500, always Discord's JSON
error shape ({"message": str, "code": int, optional "errors"}), and never a change of state.
Ends with hypothesis property tests that post random JSON bodies and random path segments."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from townsquare.platform.core.config import Settings

from .helpers import Actor, RunningServer, World, assert_discord_error

MAX_SNOWFLAKE = (1 << 63) - 1
JSON = {"content-type": "application/json"}


# --- local helpers ---------------------------------------------------------------------------



def require(condition: bool, message: str) -> None:
    """Fails without a Python traceback. Used where the server may just have answered 500: its
    thread is then formatting a traceback of its own, and on CPython 3.11.7 two threads
    formatting tracebacks at once (both call ast.parse) can crash pytest with "AST constructor
    recursion depth mismatch" (CPython gh-106905)."""
    if not condition:
        pytest.fail(message, pytrace=False)


def require_not_500(r: httpx.Response) -> None:
    require(r.status_code < 500, f"{r.request.method} {r.request.url.path} -> {r.status_code} {r.text[:300]}")


async def history(world: World, channel_id: int | None = None) -> list[dict[str, Any]]:
    r = await world.client.get(f"/api/v10/channels/{channel_id or world.general_id}/messages", params={"limit": 100},
                               headers=world.owner.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def post_raw(world: World, body: bytes, actor: Actor | None = None, channel_id: int | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
    return await world.client.post(f"/api/v10/channels/{channel_id or world.general_id}/messages", content=body,
                                   headers={**(actor or world.owner).headers, **JSON, **(headers or {})})


def invalid_json_targets(world: World, message_id: str) -> list[tuple[str, str]]:
    """Routes that read a JSON body: the hand-parsed message routes and pydantic-bodied ones."""
    return [
        ("POST", f"/api/v10/channels/{world.general_id}/messages"),
        ("PATCH", f"/api/v10/channels/{world.general_id}/messages/{message_id}"),
        ("PATCH", f"/api/v10/channels/{world.general_id}"),
        ("POST", f"/api/v10/guilds/{world.guild_id}/roles"),
        ("POST", f"/api/v10/guilds/{world.guild_id}/channels"),
        ("PATCH", "/api/v10/users/@me"),
    ]


# --- malformed bodies ------------------------------------------------------------------------

INVALID_JSON = [
    b'{"content": ',
    b"{content: 'x'}",
    b"{'content': 'x'}",
    b'{"content": "x",}',
    b'{"content": "x"} trailing',
    b"[1, 2",
    b'{"content": "\\x41"}',
    b"\"unterminated",
    b"{" * 2000,
]
# Not JSON either (RFC 8259), but Python's json module accepts the first three and fails
# differently on the last one; see test_nonstandard_json_on_model_routes.
NONSTANDARD_JSON = [
    b"NaN",
    b'{"content": "x", "nonce": Infinity}',
    b'{"content": "x", "name": "\\ud800"}',
    b"[" * 5000 + b"]" * 5000,  # deeper than any parser's limit
    b'{"content": "\xed\xa0\x80"}',  # a UTF-8-encoded surrogate: invalid UTF-8
]
NONSTANDARD_IDS = ["nan", "infinity", "lone-surrogate", "too-deep", "encoded-surrogate"]


@pytest.mark.parametrize("raw", INVALID_JSON, ids=[f"json{i}" for i in range(len(INVALID_JSON))])
async def test_invalid_json_is_50109(world: World, raw: bytes) -> None:
    msg = await world.send(world.owner, "to edit")
    before = await history(world)
    for method, url in invalid_json_targets(world, msg["id"]):
        r = await world.client.request(method, url, content=raw, headers={**world.owner.headers, **JSON})
        assert_discord_error(r, 400, 50109)
    assert await history(world) == before


@pytest.mark.parametrize("raw", NONSTANDARD_JSON, ids=NONSTANDARD_IDS)
async def test_nonstandard_json_on_message_routes_is_50109(world: World, raw: bytes) -> None:
    msg = await world.send(world.owner, "to edit")
    for method, url in invalid_json_targets(world, msg["id"])[:2]:
        r = await world.client.request(method, url, content=raw, headers={**world.owner.headers, **JSON})
        assert_discord_error(r, 400, 50109)
    assert [m["content"] for m in await history(world)] == ["to edit"]


@pytest.mark.parametrize("raw", NONSTANDARD_JSON, ids=NONSTANDARD_IDS)
async def test_nonstandard_json_on_model_routes(world: World, raw: bytes) -> None:
    msg = await world.send(world.owner, "to edit")
    for method, url in invalid_json_targets(world, msg["id"])[2:]:
        r = await world.client.request(method, url, content=raw, headers={**world.owner.headers, **JSON})
        require_not_500(r)
        assert_discord_error(r, 400, 50109)


INVALID_UTF8 = [b"\xff\xfe\xfd", b'{"content": "\xff"}', b'{"content": "\xc3\x28"}', b"\x80", b'{"\xfe": 1}']


@pytest.mark.parametrize("raw", INVALID_UTF8, ids=[f"utf8_{i}" for i in range(len(INVALID_UTF8))])
async def test_invalid_utf8_body_is_a_4xx(world: World, raw: bytes) -> None:
    msg = await world.send(world.owner, "to edit")
    before = await history(world)
    for method, url in invalid_json_targets(world, msg["id"]):
        r = await world.client.request(method, url, content=raw, headers={**world.owner.headers, **JSON})
        assert_discord_error(r, 400)
    assert await history(world) == before


async def test_body_over_the_limit_is_413(world: World, settings: Settings) -> None:
    limit = settings.max_body_bytes
    assert limit == 1 << 20
    before = await history(world)
    big = b'{"content": "' + b"a" * limit + b'"}'
    assert len(big) > limit

    # with a Content-Length
    r = await post_raw(world, big)
    assert_discord_error(r, 413, 40005)

    # chunked: no Content-Length, the limit is counted as the body arrives
    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    r = await world.client.post(f"/api/v10/channels/{world.general_id}/messages", content=chunks(),
                                headers={**world.owner.headers, **JSON})
    assert "content-length" not in r.request.headers
    assert_discord_error(r, 413, 40005)

    # the same on a pydantic-bodied route
    r = await world.client.patch(f"/api/v10/channels/{world.general_id}", content=b'{"topic": "' + b"t" * limit + b'"}',
                                 headers={**world.owner.headers, **JSON})
    assert_discord_error(r, 413, 40005)
    r = await world.client.patch(f"/api/v10/channels/{world.general_id}", content=chunks(), headers={**world.owner.headers, **JSON})
    assert_discord_error(r, 413, 40005)

    # nothing was written, and the server still works
    assert await history(world) == before
    r = await world.client.get(f"/api/v10/channels/{world.general_id}", headers=world.owner.headers)
    assert r.json()["topic"] is None
    assert (await world.send(world.owner, "after the flood"))["content"] == "after the flood"


async def test_body_just_under_the_limit_is_read(world: World, settings: Settings) -> None:
    # a body near the limit is parsed normally (and rejected for its content length, not its size)
    body = b'{"content": "' + b"a" * (settings.max_body_bytes - 100) + b'"}'
    assert len(body) <= settings.max_body_bytes
    r = await post_raw(world, body)
    err = assert_discord_error(r, 400, 50035)
    assert "content" in err["errors"]


async def test_file_over_the_upload_limit_is_413(world: World, settings: Settings) -> None:
    before = await history(world)
    r = await world.client.post(f"/api/v10/channels/{world.general_id}/messages", data={"payload_json": '{"content": "big"}'},
                                files={"files[0]": ("big.bin", b"\0" * (settings.max_upload_bytes + 1), "application/octet-stream")},
                                headers=world.owner.headers)
    assert_discord_error(r, 413, 40005)
    assert await history(world) == before


async def test_multipart_payload_over_the_limit_is_413(world: World, settings: Settings) -> None:
    payload = json.dumps({"content": "a" * (settings.max_body_bytes + 10)})
    r = await world.client.post(f"/api/v10/channels/{world.general_id}/messages", data={"payload_json": payload},
                                files={"files[0]": ("a.txt", b"x", "text/plain")}, headers=world.owner.headers)
    assert_discord_error(r, 413, 40005)


@pytest.mark.parametrize("raw", [
    b"not a multipart body", b"--b\r\nContent-Disposition: form-data\r\n\r\n", b"--b--", b"\xff\xfe" * 10,
], ids=["garbage", "nameless", "empty", "binary"])
async def test_malformed_multipart_is_a_4xx(world: World, raw: bytes) -> None:
    before = await history(world)
    for ctype in ("multipart/form-data; boundary=b", "multipart/form-data", "multipart/form-data; boundary="):
        r = await world.client.post(f"/api/v10/channels/{world.general_id}/messages", content=raw,
                                    headers={**world.owner.headers, "content-type": ctype})
        assert_discord_error(r)
    assert await history(world) == before


async def test_multipart_with_invalid_payload_json(world: World) -> None:
    r = await world.client.post(f"/api/v10/channels/{world.general_id}/messages", data={"payload_json": "{bad"},
                                files={"files[0]": ("a.txt", b"x", "text/plain")}, headers=world.owner.headers)
    assert_discord_error(r, 400, 50109)
    r = await world.client.post(f"/api/v10/channels/{world.general_id}/messages", data={"payload_json": "[1, 2]"},
                                files={"files[0]": ("a.txt", b"x", "text/plain")}, headers=world.owner.headers)
    assert_discord_error(r, 400, 50035)


async def test_hostile_file_names_are_neutralised(world: World) -> None:
    for name in ("../../etc/passwd", "..\\..\\boot.ini", "a/b/c.txt", "<script>.html", "con", " .txt"):
        r = await world.client.post(f"/api/v10/channels/{world.general_id}/messages", data={"payload_json": '{"content": "f"}'},
                                    files={"files[0]": (name, b"data", "text/plain")}, headers=world.owner.headers)
        assert r.status_code in (200, 400), r.text
        if r.status_code == 200:
            stored = r.json()["attachments"][0]["filename"]
            assert "/" not in stored and "\\" not in stored and ".." not in stored, stored
        else:
            assert_discord_error(r, 400)


# --- content rules ---------------------------------------------------------------------------

async def test_content_over_4000_chars_is_50035(world: World, settings: Settings) -> None:
    assert settings.max_message_length == 4000
    for content in ("a" * 4001, "é" * 4001, "\U0001F600" * 4001, "a" * 100_001):
        r = await post_raw(world, json.dumps({"content": content}).encode())
        err = assert_discord_error(r, 400, 50035)
        assert "content" in err["errors"], err
        assert err["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    ok = await world.send(world.owner, "b" * 4000)
    assert len(ok["content"]) == 4000
    # and on edit
    r = await world.client.patch(f"/api/v10/channels/{world.general_id}/messages/{ok['id']}", json={"content": "c" * 4001},
                                 headers=world.owner.headers)
    err = assert_discord_error(r, 400, 50035)
    assert "content" in err["errors"]
    assert [m["content"] for m in await history(world)] == ["b" * 4000]


@pytest.mark.parametrize("body", [
    b'{"content": ""}', b"{}", b'{"content": "   \\n\\t  "}', b"", b'{"content": "", "embeds": []}', b'{"tts": true}',
    b'{"content": "", "attachments": []}', b'{"nonce": "abc"}',
], ids=["empty-string", "empty-object", "whitespace", "no-body", "no-embeds", "tts-only", "no-attachments", "nonce-only"])
async def test_empty_message_is_50006(world: World, body: bytes) -> None:
    r = await post_raw(world, body)
    assert_discord_error(r, 400, 50006)
    assert await history(world) == []


async def test_edit_to_empty_is_50006(world: World) -> None:
    msg = await world.send(world.owner, "will not become empty")
    r = await world.client.patch(f"/api/v10/channels/{world.general_id}/messages/{msg['id']}", json={"content": "  "},
                                 headers=world.owner.headers)
    assert_discord_error(r, 400, 50006)
    assert [m["content"] for m in await history(world)] == ["will not become empty"]


WRONG_TYPES: list[tuple[dict[str, Any], str]] = [
    ({"content": 123}, "content"),
    ({"content": ["x"]}, "content"),
    ({"content": {"x": 1}}, "content"),
    ({"content": None}, "content"),
    ({"content": True}, "content"),
    ({"content": "x", "nonce": {}}, "nonce"),
    ({"content": "x", "nonce": []}, "nonce"),
    ({"content": "x", "nonce": 1.5}, "nonce"),
    ({"content": "x", "nonce": "n" * 26}, "nonce"),
    ({"content": "x", "nonce": 1 << 64}, "nonce"),
    ({"content": "x", "message_reference": "x"}, "message_reference"),
    ({"content": "x", "message_reference": 5}, "message_reference"),
    ({"content": "x", "message_reference": []}, "message_reference"),
    ({"content": "x", "message_reference": {}}, "message_reference"),
    ({"content": "x", "message_reference": {"message_id": "abc"}}, "message_reference"),
    ({"content": "x", "message_reference": {"message_id": -1}}, "message_reference"),
    ({"content": "x", "message_reference": {"message_id": 1 << 70}}, "message_reference"),
    ({"content": "x", "embeds": "x"}, "embeds"),
    ({"content": "x", "embeds": [1, 2]}, "embeds"),
    ({"content": "x", "embeds": [{}] * 11}, "embeds"),
    ({"content": "x", "embeds": [{"description": "d" * 13000}]}, "embeds"),
    ({"content": "x", "embed": "x"}, "embed"),
    ({"content": "x", "allowed_mentions": "all"}, "allowed_mentions"),
    ({"content": "x", "allowed_mentions": {"parse": ["bogus"]}}, "allowed_mentions"),
    ({"content": "x", "allowed_mentions": {"users": ["abc"]}}, "allowed_mentions"),
    ({"content": "x", "flags": -1}, "flags"),
    ({"content": "x", "flags": "x"}, "flags"),
    ({"content": "x", "flags": 1 << 40}, "flags"),
    ({"content": "x", "tts": {}}, "tts"),
    ({"content": "x", "attachments": "x"}, "attachments"),
    ({"content": "x", "attachments": [{"id": {}}]}, "attachments"),
]


@pytest.mark.parametrize("body,field", WRONG_TYPES, ids=[f"{f}-{i}" for i, (_, f) in enumerate(WRONG_TYPES)])
async def test_wrong_field_types_are_50035(world: World, body: dict[str, Any], field: str) -> None:
    r = await post_raw(world, json.dumps(body).encode())
    err = assert_discord_error(r, 400, 50035)
    assert field in err["errors"], err
    assert await history(world) == []


@pytest.mark.parametrize("body", [[1, 2], "a string", 42, 1.5, True, None, [{"content": "x"}]],
                         ids=["list", "string", "int", "float", "bool", "null", "list-of-object"])
async def test_non_object_bodies_are_400(world: World, body: Any) -> None:
    r = await post_raw(world, json.dumps(body).encode())
    assert_discord_error(r, 400)
    r = await world.client.patch(f"/api/v10/channels/{world.general_id}", content=json.dumps(body).encode(),
                                 headers={**world.owner.headers, **JSON})
    assert_discord_error(r, 400)
    assert await history(world) == []


async def test_unknown_fields_are_ignored(world: World) -> None:
    msg = await world.send(world.owner, "with extras", sticker_ids=[1 << 80], components="x", poll={}, __proto__={"admin": True})
    assert msg["content"] == "with extras"


async def test_wrong_types_elsewhere_are_400(world: World) -> None:
    c, h = world.client, world.owner.headers
    before = (await c.get(f"/api/v10/channels/{world.general_id}", headers=h)).json()
    checks = [
        ("PATCH", f"/api/v10/channels/{world.general_id}", {"name": 5}),
        ("PATCH", f"/api/v10/channels/{world.general_id}", {"position": -1}),
        ("PATCH", f"/api/v10/channels/{world.general_id}", {"rate_limit_per_user": 1 << 40}),
        ("PATCH", f"/api/v10/channels/{world.general_id}", {"permission_overwrites": "x"}),
        ("PUT", f"/api/v10/channels/{world.general_id}/permissions/{world.bob.id}", {"type": 2}),
        ("PUT", f"/api/v10/channels/{world.general_id}/permissions/{world.bob.id}", {"type": 1, "deny": str(1 << 80)}),
        ("PUT", f"/api/v10/channels/{world.general_id}/permissions/{world.bob.id}", {"type": 1, "allow": -1}),
        ("POST", f"/api/v10/guilds/{world.guild_id}/roles", {"permissions": "lots"}),
        ("POST", f"/api/v10/guilds/{world.guild_id}/roles", {"color": 1 << 30}),
        ("POST", f"/api/v10/guilds/{world.guild_id}/channels", {"name": ""}),
        ("POST", f"/api/v10/guilds/{world.guild_id}/channels", {"name": "x", "type": 2}),
        ("POST", f"/api/v10/channels/{world.general_id}/messages/bulk-delete", {"messages": "x"}),
        ("POST", f"/api/v10/channels/{world.general_id}/messages/bulk-delete", {"messages": [1 << 70, 1]}),
        ("POST", f"/api/v10/channels/{world.general_id}/messages/bulk-delete", {"messages": ["a", "b"]}),
        ("PATCH", f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}", {"roles": "x"}),
        ("PATCH", f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}", {"nick": "n" * 33}),
    ]
    for method, url, body in checks:
        r = await c.request(method, url, json=body, headers=h)
        assert_discord_error(r, 400)
    after = (await c.get(f"/api/v10/channels/{world.general_id}", headers=h)).json()
    assert after == before
    r = await c.get(f"/api/v10/guilds/{world.guild_id}/roles", headers=h)
    assert len(r.json()) == 1  # only @everyone: no role was created


# --- hostile ids in paths and queries --------------------------------------------------------

BAD_IDS = ["99999999999999999999999", "-1", "abc", "1e999", "1e3", str(MAX_SNOWFLAKE + 1), str(1 << 64), "1.5", "0x1F",
           "NaN", "Infinity", "%20", "١٢٣", "1_000", "+1", " 1", "", "null", "[]", "@me%00"]


@pytest.mark.parametrize("bad", BAD_IDS, ids=[f"id{i}" for i in range(len(BAD_IDS))])
async def test_hostile_ids_in_paths_are_4xx_json(world: World, bad: str) -> None:
    msg = await world.send(world.owner, "target")
    g, m = world.general_id, msg["id"]
    seg = quote(bad, safe="%@")
    routes = [
        ("GET", f"/api/v10/channels/{seg}/messages"),
        ("POST", f"/api/v10/channels/{seg}/messages"),
        ("GET", f"/api/v10/channels/{g}/messages/{seg}"),
        ("PATCH", f"/api/v10/channels/{g}/messages/{seg}"),
        ("DELETE", f"/api/v10/channels/{g}/messages/{seg}"),
        ("PUT", f"/api/v10/channels/{g}/pins/{seg}"),
        ("PUT", f"/api/v10/channels/{g}/messages/{m}/reactions/{seg}/@me"),
        ("GET", f"/api/v10/guilds/{seg}"),
        ("GET", f"/api/v10/guilds/{seg}/audit-logs"),
        ("GET", f"/api/v10/guilds/{seg}/messages/search"),
        ("DELETE", f"/api/v10/guilds/{world.guild_id}/members/{seg}"),
        ("GET", f"/api/v10/users/{seg}"),
    ]
    for method, url in routes:
        kwargs: dict[str, Any] = {"json": {"content": "x"}} if method in ("POST", "PATCH") else {}
        r = await world.client.request(method, url, headers=world.owner.headers, **kwargs)
        assert r.status_code != 500, (method, url, r.text)
        if r.status_code == 204:
            continue  # e.g. an emoji that happens to be valid
        if r.status_code in (307, 308):
            assert r.headers["location"], (method, url)  # "" leaves a trailing slash: FastAPI redirects
            continue
        if r.status_code < 400:
            assert r.headers["content-type"].startswith("application/json"), (method, url)
            continue
        assert_discord_error(r)
    # the target message and its channel are untouched
    assert [x["id"] for x in await history(world)] == [m]


@pytest.mark.parametrize("bad", ["99999999999999999999999", "-1", "abc", "1e999", str(MAX_SNOWFLAKE + 1)])
async def test_out_of_range_snowflakes_are_50035(world: World, bad: str) -> None:
    r = await world.client.get(f"/api/v10/channels/{bad}/messages", headers=world.owner.headers)
    err = assert_discord_error(r, 400, 50035)
    assert "channel_id" in err["errors"]
    r = await world.client.get(f"/api/v10/channels/{world.general_id}/messages", params={"before": bad}, headers=world.owner.headers)
    err = assert_discord_error(r, 400, 50035)
    assert "before" in err["errors"]


async def test_largest_snowflake_is_just_unknown(world: World) -> None:
    r = await world.client.get(f"/api/v10/channels/{MAX_SNOWFLAKE}/messages", headers=world.owner.headers)
    assert_discord_error(r, 404, 10003)
    r = await world.client.get(f"/api/v10/channels/{world.general_id}/messages/{MAX_SNOWFLAKE}", headers=world.owner.headers)
    assert_discord_error(r, 404, 10008)
    r = await world.client.get("/api/v10/channels/0/messages", headers=world.owner.headers)
    assert_discord_error(r, 404, 10003)


# --- routing and auth ------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v10/nope"), ("GET", "/api/v9/users/@me"), ("GET", "/api/v10/channels"), ("POST", "/api/v10/channels/1/nothing"),
    ("GET", "/nothing-here"), ("GET", "/api"), ("GET", "/api/v10/channels/1/messages/1/extra/deep/path"), ("DELETE", "/api/v10/"),
    ("GET", "/api/v10/%00"), ("GET", "/api/v10/../../etc/passwd"), ("GET", "/api/v10/channels/1/messages/1/reactions/x/y/z/w"),
])
async def test_unknown_routes_are_404_json(world: World, method: str, path: str) -> None:
    for headers in (world.owner.headers, {}):
        r = await world.client.request(method, path, headers=headers)
        body = assert_discord_error(r, 404)
        assert body == {"message": "404: Not Found", "code": 0}


async def test_wrong_method_is_405_json(world: World) -> None:
    r = await world.client.put(f"/api/v10/channels/{world.general_id}/messages", headers=world.owner.headers)
    assert_discord_error(r, 405, 0)
    r = await world.client.post(f"/api/v10/guilds/{world.guild_id}/audit-logs", headers=world.owner.headers)
    assert_discord_error(r, 405, 0)


UNAUTHORIZED = {"message": "401: Unauthorized", "code": 0}


async def test_missing_or_invalid_authorization_is_401(world: World) -> None:
    url = f"/api/v10/channels/{world.general_id}/messages"
    user_token, bot_token = world.owner.token, world.bot.token
    bad_headers: list[dict[str, Any]] = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer x"},
        {"Authorization": "Bearer " + "a" * 300},
        {"Authorization": "Basic " + user_token},
        {"Authorization": "Token " + user_token},
        {"Authorization": "bearer " + user_token},
        {"Authorization": "BEARER " + user_token},
        {"Authorization": user_token},
        {"Authorization": f"Bearer {user_token}x"},
        {"Authorization": f"Bearer {user_token[:-1]}"},
        {"Authorization": "Bearer \xe9\xff".encode("latin-1")},
        {"Authorization": f"Bot {user_token}"},  # a person's token sent as a bot's
        {"Authorization": f"Bearer {bot_token}"},  # a bot token sent as Bearer
        {"Authorization": f"bot {bot_token}"},
    ]
    for headers in bad_headers:
        for method in ("GET", "POST"):
            r = await world.client.request(method, url, headers=headers, json={"content": "sneaky"})
            assert r.status_code == 401, (headers, r.text)
            assert r.json() == UNAUTHORIZED, (headers, r.text)
    # the right schemes work
    r = await world.client.get(url, headers={"Authorization": f"Bot {bot_token}"})
    assert r.status_code == 200, r.text
    r = await world.client.get(url, headers={"Authorization": f"Bearer {user_token}"})
    assert r.status_code == 200, r.text
    # and nothing was posted by the refused requests
    assert await history(world) == []


async def test_auth_is_checked_before_anything_else(world: World) -> None:
    # unauthenticated requests learn nothing about ids, bodies or limits
    for method, url, kwargs in [
        ("GET", "/api/v10/channels/abc/messages", {}),
        ("POST", f"/api/v10/channels/{world.general_id}/messages", {"content": b"{bad json", "headers": JSON}),
        ("GET", f"/api/v10/guilds/{world.guild_id}/audit-logs", {"params": {"limit": "0"}}),
        ("GET", "/api/v10/users/@me", {}),
    ]:
        r = await world.client.request(method, url, **kwargs)
        assert r.status_code == 401, (url, r.text)
        assert r.json() == UNAUTHORIZED


async def test_revoked_token_is_401(world: World) -> None:
    r = await world.client.post("/api/v10/auth/logout", headers=world.bob.headers)
    assert r.status_code == 204, r.text
    r = await world.client.get(f"/api/v10/channels/{world.general_id}/messages", headers=world.bob.headers)
    assert r.status_code == 401
    assert r.json() == UNAUTHORIZED


async def test_hostile_audit_reasons_are_stored_safely(world: World) -> None:
    reasons: list[str | bytes] = ["%FF%FE", "%", "%%%", "%E9t%E9", "a" * 8000, "\xe9\xff".encode("latin-1"), "<script>alert(1)</script>",
                                  "'; DROP TABLE audit_log; --"]
    for reason in reasons:
        r = await world.client.post(f"/api/v10/guilds/{world.guild_id}/roles", json={"name": "r"},
                                    headers={**world.owner.headers, "X-Audit-Log-Reason": reason})
        assert r.status_code == 200, (reason, r.text)
    r = await world.client.get(f"/api/v10/guilds/{world.guild_id}/audit-logs", headers=world.owner.headers)
    assert r.status_code == 200
    stored = [e["reason"] for e in r.json()["audit_log_entries"] if e["action_type"] == 30]
    assert len(stored) == len(reasons)
    assert all(isinstance(s, str) and len(s) <= 512 for s in stored)
    assert "'; DROP TABLE audit_log; --" in stored


# --- known 500s (server bugs) ----------------------------------------------------------------

NUL_BUG = ("BUG: text containing U+0000 is sent to PostgreSQL, which rejects it ('invalid byte sequence for encoding UTF8: 0x00' / "
           "'unsupported Unicode escape sequence' for jsonb) -> unhandled DBAPIError -> 500. Nothing rejects NUL at the edge.")


@pytest.mark.parametrize("case", ["content", "embed", "embed-key", "nonce", "edit", "reason", "role-name", "channel-name", "bio",
                                  "search"])
async def test_nul_characters_are_not_a_500(world: World, case: str) -> None:
    c, h, g = world.client, world.owner.headers, world.general_id
    msg = await world.send(world.owner, "before")
    if case == "content":
        r = await post_raw(world, json.dumps({"content": "a\u0000b"}).encode())
    elif case == "embed":
        r = await post_raw(world, json.dumps({"content": "x", "embeds": [{"title": "a\u0000"}]}).encode())
    elif case == "embed-key":
        r = await post_raw(world, json.dumps({"content": "x", "embeds": [{"\u0000": 1}]}).encode())
    elif case == "nonce":
        r = await post_raw(world, json.dumps({"content": "x", "nonce": "n\u0000"}).encode())
    elif case == "edit":
        r = await c.patch(f"/api/v10/channels/{g}/messages/{msg['id']}", json={"content": "a\u0000b"}, headers=h)
    elif case == "reason":
        r = await c.post(f"/api/v10/guilds/{world.guild_id}/roles", json={"name": "r"}, headers={**h, "X-Audit-Log-Reason": "%00"})
    elif case == "role-name":
        r = await c.post(f"/api/v10/guilds/{world.guild_id}/roles", json={"name": "r\u0000"}, headers=h)
    elif case == "channel-name":
        r = await c.post(f"/api/v10/guilds/{world.guild_id}/channels", json={"name": "c\u0000"}, headers=h)
    elif case == "bio":
        r = await c.patch("/api/v10/users/@me", json={"bio": "b\u0000"}, headers=h)
    else:
        r = await c.get(f"/api/v10/guilds/{world.guild_id}/messages/search", params={"content": "\u0000"}, headers=h)
    require_not_500(r)
    if r.status_code >= 400:
        assert_discord_error(r, 400)


async def test_deeply_nested_embed_is_not_a_500(world: World) -> None:
    deep = "[" * 300 + "]" * 300
    r = await post_raw(world, ('{"content": "x", "embeds": [{"title": "t", "fields": ' + deep + "}]}").encode())
    require_not_500(r)
    assert_discord_error(r, 400, 50035)


@pytest.mark.parametrize("case", ["member-roles", "dm-recipients"])
async def test_out_of_range_ids_in_bodies_are_400(world: World, case: str) -> None:
    if case == "member-roles":
        r = await world.client.patch(f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}", json={"roles": [1 << 70]},
                                     headers=world.owner.headers)
    else:
        r = await world.client.post("/api/v10/users/@me/channels", json={"recipients": [1 << 70]}, headers=world.owner.headers)
    require_not_500(r)
    assert_discord_error(r, 400, 50035)


# --- state survives a barrage ----------------------------------------------------------------

async def test_barrage_of_bad_requests_changes_nothing(world: World) -> None:
    good = [await world.send(world.alice, f"good {i}") for i in range(3)]
    c, h, g = world.client, world.owner.headers, world.general_id
    for raw in INVALID_JSON + NONSTANDARD_JSON + INVALID_UTF8:
        await post_raw(world, raw)
    for body, _ in WRONG_TYPES:
        await post_raw(world, json.dumps(body).encode())
        await c.patch(f"/api/v10/channels/{g}/messages/{good[0]['id']}", json=body, headers=h)
    for bad in BAD_IDS:
        await c.delete(f"/api/v10/channels/{g}/messages/{quote(bad, safe='')}", headers=h)
    await c.post(f"/api/v10/channels/{g}/messages/bulk-delete", json={"messages": [m["id"] for m in good] + ["x"]}, headers=h)
    await c.post(f"/api/v10/channels/{g}/messages/bulk-delete", json={"messages": [good[0]["id"]]}, headers=h)

    assert [m["id"] for m in await history(world)] == [m["id"] for m in reversed(good)]
    assert [m["content"] for m in await history(world)] == ["good 2", "good 1", "good 0"]
    r = await c.get(f"/api/v10/channels/{g}", headers=h)
    assert r.status_code == 200 and r.json()["last_message_id"] == good[-1]["id"]
    after = await world.send(world.bob, "still alive")
    assert after["content"] == "still alive"


# --- property tests --------------------------------------------------------------------------
# Synchronous on purpose: hypothesis drives a blocking httpx.Client against the server's own
# thread. Known server bugs are kept out of the generated data (each has an xfail test above):
# no U+0000 in strings, and nesting stays far below orjson's serialisation limit.

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
FIELDS = ["content", "nonce", "tts", "embeds", "embed", "message_reference", "allowed_mentions", "flags", "attachments",
          "message_id", "channel_id", "guild_id", "fail_if_not_exists", "parse", "users", "roles", "replied_user", "id",
          "filename", "description", "title", "fields", "name", "value", "url"]
KEYS = st.one_of(st.sampled_from(FIELDS), TEXT.map(lambda s: s[:12]))
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(1 << 64), max_value=1 << 64),
    st.floats(allow_nan=False, allow_infinity=False), TEXT, st.sampled_from(["", " ", "<@1>", "@everyone", "https://x.y", "0", "-1"]),
)
JSON_VALUES = st.recursive(LEAVES, lambda children: st.one_of(st.lists(children, max_size=4),
                                                             st.dictionaries(KEYS, children, max_size=4)), max_leaves=12)
TOKENS = st.sampled_from(["<@1>", f"<@{MAX_SNOWFLAKE}>", "<@99999999999999999999>", "<@&1>", "<#1>", "<@!0>", "@everyone", "@here",
                          "https://example.com/x", "`code`", "**bold**", "||spoiler||", "\u202e", "\ufeff", "\n"])
CONTENT = st.one_of(TEXT, st.lists(st.one_of(TEXT, TOKENS), min_size=1, max_size=6).map(" ".join))
OBJECTS = st.dictionaries(KEYS, JSON_VALUES, max_size=4)
# message-shaped bodies get past the first checks; arbitrary JSON values test the parser and the model
MESSAGE_LIKE = st.fixed_dictionaries({"content": CONTENT.filter(str.strip)}, optional={
    "nonce": st.one_of(TEXT.map(lambda s: s[:25]), st.integers(min_value=-MAX_SNOWFLAKE, max_value=MAX_SNOWFLAKE), JSON_VALUES),
    "tts": st.one_of(st.booleans(), JSON_VALUES),
    "embeds": st.one_of(st.lists(OBJECTS, max_size=3), JSON_VALUES),
    "embed": st.one_of(OBJECTS, JSON_VALUES),
    "flags": st.one_of(st.integers(min_value=-1, max_value=1 << 17), JSON_VALUES),
    "allowed_mentions": st.one_of(st.fixed_dictionaries({}, optional={
        "parse": st.lists(st.sampled_from(["users", "roles", "everyone", "nobody"]), max_size=4),
        "users": st.lists(st.one_of(st.integers(), TEXT), max_size=3),
        "roles": st.lists(st.one_of(st.integers(), TEXT), max_size=3),
        "replied_user": JSON_VALUES}), JSON_VALUES),
    "message_reference": st.one_of(st.fixed_dictionaries({"message_id": st.one_of(st.integers(), TEXT)}, optional={
        "channel_id": JSON_VALUES, "guild_id": JSON_VALUES, "fail_if_not_exists": st.booleans()}), JSON_VALUES),
    "attachments": JSON_VALUES,
})
BODIES = st.one_of(MESSAGE_LIKE, MESSAGE_LIKE, OBJECTS, JSON_VALUES)
SEGMENTS = st.one_of(
    TEXT, st.integers().map(str),
    st.sampled_from(["-1", "0", "1e999", "99999999999999999999999", str(MAX_SNOWFLAKE), str(MAX_SNOWFLAKE + 1), "0x10", "NaN",
                     "@me", ".", "..", "%", "%00", "?", "#", "/", "\\", "👍", "%F0%9F%91%8D", " "]),
)
FUZZ = hsettings(max_examples=60, deadline=None, derandomize=True, database=None, print_blob=False,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


def check_response(r: httpx.Response) -> None:
    require_not_500(r)
    if r.status_code == 204 or (r.status_code in (307, 308) and r.headers.get("location")):
        return
    require(r.headers.get("content-type", "").startswith("application/json"), f"not JSON: {r.status_code} {r.text[:200]}")
    body = r.json()
    if r.status_code >= 400:
        require(isinstance(body, dict) and isinstance(body.get("message"), str) and isinstance(body.get("code"), int),
                f"not Discord's error shape: {r.status_code} {r.text[:300]}")
        require(set(body) <= {"message", "code", "errors", "retry_after", "global"}, f"unexpected keys: {body}")


def sync_client(server: RunningServer) -> httpx.Client:
    # one connection per request: a 500 (if the property fails) closes the server's side
    return httpx.Client(base_url=server.url, timeout=30, headers={"Connection": "close"})


def test_random_json_bodies_never_500(world: World, server: RunningServer) -> None:
    h = {**world.owner.headers, **JSON}
    g = world.general_id
    with sync_client(server) as c:
        r = c.post(f"/api/v10/channels/{g}/messages", json={"content": "fuzz target"}, headers=h)
        assert r.status_code == 200, r.text
        target = r.json()["id"]
        r = c.post(f"/api/v10/guilds/{world.guild_id}/channels", json={"name": "fuzz-room"}, headers=h)
        assert r.status_code == 201, r.text
        room = r.json()["id"]

        @FUZZ
        @given(body=BODIES)
        def post_random(body: Any) -> None:
            raw = json.dumps(body).encode()
            r = c.post(f"/api/v10/channels/{g}/messages", content=raw, headers=h)
            check_response(r)
            if r.status_code == 200:
                require(r.json()["channel_id"] == str(g), r.text)
            check_response(c.patch(f"/api/v10/channels/{g}/messages/{target}", content=raw, headers=h))
            check_response(c.patch(f"/api/v10/channels/{room}", content=raw, headers=h))
            check_response(c.post(f"/api/v10/guilds/{world.guild_id}/roles", content=raw, headers=h))

        post_random()

        # the server still answers a normal send, and what it stored reads back
        r = c.post(f"/api/v10/channels/{g}/messages", json={"content": "after the fuzz"}, headers=h)
        assert r.status_code == 200, r.text
        sent = r.json()
        r = c.get(f"/api/v10/channels/{g}/messages", params={"limit": 100}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()[0]["id"] == sent["id"]
        assert all(m["channel_id"] == str(g) for m in r.json())
        r = c.get(f"/api/v10/guilds/{world.guild_id}/messages/search", params={"content": "fuzz"}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["total_results"] >= 1


def test_random_path_segments_and_queries_never_500(world: World, server: RunningServer) -> None:
    h = world.owner.headers
    g, gid = world.general_id, world.guild_id
    with sync_client(server) as c:
        r = c.post(f"/api/v10/channels/{g}/messages", json={"content": "segment target"}, headers=h)
        assert r.status_code == 200, r.text
        m = r.json()["id"]

        @FUZZ
        @given(segment=SEGMENTS, text=TEXT)
        def request_random(segment: str, text: str) -> None:
            seg = quote(segment, safe="")
            for method, url, kwargs in [
                ("GET", f"/api/v10/channels/{seg}/messages", {}),
                ("GET", f"/api/v10/channels/{g}/messages/{seg}", {}),
                ("GET", f"/api/v10/guilds/{seg}", {}),
                ("GET", f"/api/v10/users/{seg}", {}),
                ("PUT", f"/api/v10/channels/{g}/messages/{m}/reactions/{seg}/@me", {}),
                ("GET", f"/api/v10/channels/{g}/messages/{m}/reactions/{seg}", {}),
                ("GET", f"/api/v10/invites/{seg}", {}),
                ("GET", f"/api/v10/guilds/{gid}/messages/search", {"params": {"content": text, "author_id": segment}}),
                ("GET", f"/api/v10/guilds/{gid}/messages/search", {"params": {"content": text}}),
                ("GET", f"/api/v10/channels/{g}/messages/search", {"params": {"content": text}}),
                ("GET", f"/api/v10/guilds/{gid}/audit-logs", {"params": {"before": segment, "limit": segment}}),
                ("GET", f"/api/v10/channels/{g}/messages", {"params": {"before": segment}}),
            ]:
                check_response(c.request(method, url, headers=h, **kwargs))

        request_random()

        r = c.post(f"/api/v10/channels/{g}/messages", json={"content": "after the path fuzz"}, headers=h)
        assert r.status_code == 200, r.text
        r = c.get(f"/api/v10/channels/{g}/messages/{m}", headers=h)
        assert r.status_code == 200 and r.json()["content"] == "segment target"
