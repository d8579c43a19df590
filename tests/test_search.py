"""Message search through real HTTP: GET /guilds/{id}/messages/search (Discord's shape:
{"total_results", "messages": [[msg], ...]}) and the per-channel GET /channels/{id}/messages/search.
Full-text matching, every filter, paging and order, permission awareness, and hostile strings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from townsquare.platform.core.snowflake import snowflake_from_time

from .helpers import Actor, World, assert_discord_error, person

VIEW_CHANNEL = 1 << 10
READ_MESSAGE_HISTORY = 1 << 16
MAX_SNOWFLAKE = (1 << 63) - 1


# --- local helpers ---------------------------------------------------------------------------



def require(condition: bool, message: str) -> None:
    """Fails without a Python traceback. Used where the server has just answered 500: its thread
    is then formatting a traceback of its own, and on CPython 3.11.7 two threads formatting
    tracebacks at once (both call ast.parse) can crash pytest with "AST constructor recursion
    depth mismatch" (CPython gh-106905)."""
    if not condition:
        pytest.fail(message, pytrace=False)


def assert_search_shape(body: Any) -> None:
    assert isinstance(body, dict), body
    assert isinstance(body["total_results"], int) and body["total_results"] >= 0, body
    assert isinstance(body["messages"], list), body
    for group in body["messages"]:
        assert isinstance(group, list) and len(group) == 1, group
        msg = group[0]
        assert {"id", "channel_id", "content", "author", "timestamp"} <= set(msg), msg
        assert msg.get("hit") is True, msg
    assert len(body["messages"]) <= body["total_results"] or body["total_results"] == 0


async def search_raw(world: World, actor: Actor, params: Any = None, guild_id: int | None = None) -> httpx.Response:
    return await world.client.get(f"/api/v10/guilds/{guild_id or world.guild_id}/messages/search", params=params,
                                  headers=actor.headers)


async def search(world: World, actor: Actor, params: Any = None) -> dict[str, Any]:
    r = await search_raw(world, actor, params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert_search_shape(body)
    return body


async def channel_search(world: World, actor: Actor, channel_id: int, params: Any = None) -> httpx.Response:
    return await world.client.get(f"/api/v10/channels/{channel_id}/messages/search", params=params, headers=actor.headers)


def ids(body: dict[str, Any]) -> list[int]:
    return [int(group[0]["id"]) for group in body["messages"]]


async def send_with_file(world: World, actor: Actor, content: str, channel_id: int | None = None,
                         filename: str = "notes.txt", data: bytes = b"some file contents\n",
                         mime: str = "text/plain") -> dict[str, Any]:
    """Discord's multipart send: payload_json plus files[0]."""
    r = await world.client.post(
        f"/api/v10/channels/{channel_id or world.general_id}/messages",
        data={"payload_json": orjson.dumps({"content": content}).decode()},
        files={"files[0]": (filename, data, mime)},
        headers=actor.headers,
    )
    assert r.status_code == 200, r.text
    msg = r.json()
    assert len(msg["attachments"]) == 1, msg
    return msg


async def deny_member(world: World, channel_id: int, user: Actor, deny: int) -> None:
    r = await world.client.put(f"/api/v10/channels/{channel_id}/permissions/{user.id}", json={"type": 1, "deny": str(deny)},
                               headers=world.owner.headers)
    assert r.status_code == 204, r.text


# --- content matching ------------------------------------------------------------------------

async def test_content_matches_whole_words(world: World) -> None:
    fox = await world.send(world.alice, "the quick brown fox jumps")
    dog = await world.send(world.bob, "a lazy dog sleeps all day")
    quick = await world.send(world.alice, "Quick thinking saves the day")

    body = await search(world, world.owner, {"content": "quick"})
    assert body["total_results"] == 2
    assert sorted(ids(body)) == sorted([int(fox["id"]), int(quick["id"])])
    assert {g[0]["content"] for g in body["messages"]} == {"the quick brown fox jumps", "Quick thinking saves the day"}

    # case-insensitive, and every word of the query must match
    assert sorted(ids(await search(world, world.owner, {"content": "QUICK"}))) == sorted([int(fox["id"]), int(quick["id"])])
    assert ids(await search(world, world.owner, {"content": "quick fox"})) == [int(fox["id"])]
    assert ids(await search(world, world.owner, {"content": "dog"})) == [int(dog["id"])]
    assert sorted(ids(await search(world, world.owner, {"content": "day"}))) == sorted([int(dog["id"]), int(quick["id"])])

    # a word that is in no message: zero results, an empty page
    none = await search(world, world.owner, {"content": "unicorn"})
    assert none["total_results"] == 0
    assert none["messages"] == []
    # a word that only matches as a prefix is not a match
    assert (await search(world, world.owner, {"content": "qui"}))["total_results"] == 0


async def test_results_carry_the_full_message(world: World) -> None:
    sent = await world.send(world.alice, "searchable payload here")
    body = await search(world, world.bob, {"content": "payload"})
    assert body["total_results"] == 1
    msg = body["messages"][0][0]
    assert msg["id"] == sent["id"]
    assert msg["channel_id"] == str(world.general_id)
    assert msg["author"]["id"] == str(world.alice.id)
    assert msg["content"] == "searchable payload here"


async def test_unicode_words_match(world: World) -> None:
    cafe = await world.send(world.alice, "café naïve résumé")
    await world.send(world.alice, "cafe naive resume")
    jp = await world.send(world.bob, "こんにちは 世界")
    assert ids(await search(world, world.owner, {"content": "café"})) == [int(cafe["id"])]
    assert ids(await search(world, world.owner, {"content": "世界"})) == [int(jp["id"])]


async def test_no_content_lists_every_readable_message(world: World) -> None:
    sent = [await world.send(world.alice, f"message {i}") for i in range(3)]
    body = await search(world, world.owner)
    assert body["total_results"] == 3
    assert ids(body) == sorted((int(m["id"]) for m in sent), reverse=True)


# --- filters ---------------------------------------------------------------------------------

async def test_author_filter(world: World) -> None:
    a1 = await world.send(world.alice, "apple from alice")
    b1 = await world.send(world.bob, "apple from bob")
    o1 = await world.send(world.owner, "apple from owner")

    body = await search(world, world.owner, {"content": "apple", "author_id": str(world.alice.id)})
    assert ids(body) == [int(a1["id"])]
    assert body["total_results"] == 1

    both = await search(world, world.owner, [("content", "apple"), ("author_id", str(world.alice.id)), ("author_id", str(world.bob.id))])
    assert sorted(ids(both)) == sorted([int(a1["id"]), int(b1["id"])])

    assert ids(await search(world, world.owner, {"author_id": str(world.owner.id)})) == [int(o1["id"])]
    # an author who wrote nothing here
    assert (await search(world, world.owner, {"author_id": str(world.bot.id)}))["total_results"] == 0


async def test_channel_filter(world: World) -> None:
    other = await world.channel("other-room")
    in_general = await world.send(world.alice, "banana in general")
    in_other = await world.send(world.alice, "banana in other", other)

    body = await search(world, world.bob, {"content": "banana", "channel_id": str(other)})
    assert ids(body) == [int(in_other["id"])]
    assert body["messages"][0][0]["channel_id"] == str(other)

    body = await search(world, world.bob, {"content": "banana", "channel_id": str(world.general_id)})
    assert ids(body) == [int(in_general["id"])]

    both = await search(world, world.bob, [("content", "banana"), ("channel_id", str(other)), ("channel_id", str(world.general_id))])
    assert both["total_results"] == 2

    # a channel of another guild, or no channel at all, narrows to nothing
    assert (await search(world, world.bob, {"content": "banana", "channel_id": "12345"}))["total_results"] == 0


async def test_mentions_filter(world: World) -> None:
    to_bob = await world.send(world.alice, f"hey <@{world.bob.id}> look at this")
    to_alice = await world.send(world.bob, f"thanks <@{world.alice.id}>")
    await world.send(world.owner, "nobody mentioned here")

    body = await search(world, world.owner, {"mentions": str(world.bob.id)})
    assert ids(body) == [int(to_bob["id"])]
    assert ids(await search(world, world.owner, {"mentions": str(world.alice.id)})) == [int(to_alice["id"])]
    both = await search(world, world.owner, [("mentions", str(world.alice.id)), ("mentions", str(world.bob.id))])
    assert sorted(ids(both)) == sorted([int(to_bob["id"]), int(to_alice["id"])])
    assert (await search(world, world.owner, {"mentions": str(world.owner.id)}))["total_results"] == 0


async def test_has_file_filter(world: World) -> None:
    with_file = await send_with_file(world, world.alice, "report attached")
    await world.send(world.alice, "report without attachment")

    body = await search(world, world.owner, {"has": "file"})
    assert ids(body) == [int(with_file["id"])]
    assert body["messages"][0][0]["attachments"][0]["filename"] == "notes.txt"

    body = await search(world, world.owner, {"content": "report", "has": "file"})
    assert ids(body) == [int(with_file["id"])]
    assert (await search(world, world.owner, {"content": "report"}))["total_results"] == 2


async def test_has_link_and_embed_filters(world: World) -> None:
    link = await world.send(world.alice, "see https://example.com/page for details")
    embed = await world.send(world.alice, "with an embed", embeds=[{"title": "An embed", "description": "text"}])
    await world.send(world.alice, "plain words only")
    assert ids(await search(world, world.owner, {"has": "link"})) == [int(link["id"])]
    assert ids(await search(world, world.owner, {"has": "embed"})) == [int(embed["id"])]


async def test_pinned_filter(world: World) -> None:
    pinned = await world.send(world.alice, "pin me please")
    other = await world.send(world.alice, "do not pin me")
    r = await world.client.put(f"/api/v10/channels/{world.general_id}/pins/{pinned['id']}", headers=world.owner.headers)
    assert r.status_code == 204, r.text
    assert ids(await search(world, world.owner, {"pinned": "true"})) == [int(pinned["id"])]
    assert ids(await search(world, world.owner, {"pinned": "false"})) == [int(other["id"])]


async def test_min_id_and_max_id_bound_the_range(world: World) -> None:
    sent = [int((await world.send(world.alice, f"ranged message {i}"))["id"]) for i in range(5)]

    # bounds are exclusive, like Discord's
    body = await search(world, world.owner, {"content": "ranged", "min_id": str(sent[1]), "max_id": str(sent[3])})
    assert ids(body) == [sent[2]]
    assert body["total_results"] == 1

    assert sorted(ids(await search(world, world.owner, {"content": "ranged", "min_id": str(sent[2])}))) == sent[3:]
    assert sorted(ids(await search(world, world.owner, {"content": "ranged", "max_id": str(sent[2])}))) == sent[:2]

    # date ranges are snowflakes made from a time
    now = datetime.now(timezone.utc)
    yesterday = snowflake_from_time(now - timedelta(days=1))
    tomorrow = snowflake_from_time(now + timedelta(days=1))
    assert (await search(world, world.owner, {"content": "ranged", "min_id": str(yesterday)}))["total_results"] == 5
    assert (await search(world, world.owner, {"content": "ranged", "max_id": str(tomorrow)}))["total_results"] == 5
    assert (await search(world, world.owner, {"content": "ranged", "min_id": str(tomorrow)}))["total_results"] == 0
    assert (await search(world, world.owner, {"content": "ranged", "max_id": str(yesterday)}))["total_results"] == 0
    # an empty range
    assert (await search(world, world.owner, {"min_id": str(sent[3]), "max_id": str(sent[1])}))["total_results"] == 0


async def test_offset_limit_paging_and_sort_order(world: World) -> None:
    sent = [int((await world.send(world.alice, f"paged item {i}"))["id"]) for i in range(7)]
    newest_first = sorted(sent, reverse=True)

    pages = []
    for offset in (0, 3, 6):
        body = await search(world, world.owner, {"content": "paged", "limit": "3", "offset": str(offset)})
        assert body["total_results"] == 7  # the total is of the whole query, not of the page
        pages.append(ids(body))
    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:7]]

    # the default order is newest first; asc is oldest first
    assert ids(await search(world, world.owner, {"content": "paged"})) == newest_first
    assert ids(await search(world, world.owner, {"content": "paged", "sort_order": "desc"})) == newest_first
    assert ids(await search(world, world.owner, {"content": "paged", "sort_order": "asc"})) == sorted(sent)
    asc_page = await search(world, world.owner, {"content": "paged", "sort_order": "asc", "limit": "2", "offset": "2"})
    assert ids(asc_page) == sorted(sent)[2:4]

    beyond = await search(world, world.owner, {"content": "paged", "offset": "100"})
    assert beyond["messages"] == []
    assert beyond["total_results"] == 7


async def test_limit_is_capped_at_25(world: World) -> None:
    for i in range(27):
        await world.send(world.alice, f"bulk entry {i}")
    body = await search(world, world.owner, {"content": "bulk"})
    assert body["total_results"] == 27
    assert len(body["messages"]) == 25
    rest = await search(world, world.owner, {"content": "bulk", "offset": "25"})
    assert len(rest["messages"]) == 2
    assert set(ids(body)).isdisjoint(ids(rest))


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "26"}, {"limit": "x"}, {"offset": "-1"}, {"offset": "99999999999999999999"},
    {"sort_order": "sideways"}, {"has": "bogus"}, {"min_id": "abc"}, {"max_id": "-5"}, {"max_id": "1e999"},
    {"min_id": str(MAX_SNOWFLAKE + 1)}, {"author_id": "abc"}, {"author_id": str(1 << 70)}, {"channel_id": "-1"},
    {"mentions": "1.5"}, {"mentions": str(1 << 64)}, {"pinned": "maybe"}, {"content": "a" * 1025},
])
async def test_invalid_parameters_are_400_in_discord_shape(world: World, params: dict[str, str]) -> None:
    r = await search_raw(world, world.owner, params)
    assert_discord_error(r, 400, 50035)


# --- permissions -----------------------------------------------------------------------------

async def test_denied_channel_never_appears(world: World) -> None:
    secret = await world.channel("secret")
    hidden = await world.send(world.owner, "classified pineapple plans", secret)
    visible = await world.send(world.owner, "public pineapple recipe")
    await deny_member(world, secret, world.bob, VIEW_CHANNEL)

    # bob cannot see the secret channel any more
    r = await world.client.get(f"/api/v10/channels/{secret}/messages", headers=world.bob.headers)
    assert r.status_code == 403, r.text

    body = await search(world, world.bob, {"content": "pineapple"})
    assert ids(body) == [int(visible["id"])]
    assert body["total_results"] == 1  # the count does not leak hidden messages either
    assert (await search(world, world.bob, {"content": "classified"}))["total_results"] == 0
    assert (await search(world, world.bob, {"content": "pineapple", "channel_id": str(secret)}))["total_results"] == 0
    assert (await search(world, world.bob, {"author_id": str(world.owner.id)}))["total_results"] == 1
    everything = await search(world, world.bob)
    assert int(hidden["id"]) not in ids(everything)

    # others still see both
    for actor in (world.alice, world.owner):
        assert sorted(ids(await search(world, actor, {"content": "pineapple"}))) == sorted([int(hidden["id"]), int(visible["id"])])

    # the per-channel route refuses the hidden channel outright
    r = await channel_search(world, world.bob, secret, {"content": "pineapple"})
    assert_discord_error(r, 403, 50001)


async def test_denied_history_hides_messages(world: World) -> None:
    archive = await world.channel("archive")
    await world.send(world.owner, "mango history", archive)
    await deny_member(world, archive, world.alice, READ_MESSAGE_HISTORY)
    assert (await search(world, world.alice, {"content": "mango"}))["total_results"] == 0
    assert (await search(world, world.bob, {"content": "mango"}))["total_results"] == 1
    r = await channel_search(world, world.alice, archive, {"content": "mango"})
    assert_discord_error(r, 403, 50013)


async def test_denied_role_overwrite_hides_messages(world: World) -> None:
    """Denying VIEW_CHANNEL to @everyone (a role overwrite, type 0) hides the channel from members."""
    staff = await world.channel("staff-only")
    await world.send(world.owner, "kiwi staff note", staff)
    r = await world.client.put(f"/api/v10/channels/{staff}/permissions/{world.guild_id}",
                               json={"type": 0, "deny": str(VIEW_CHANNEL)}, headers=world.owner.headers)
    assert r.status_code == 204, r.text
    assert (await search(world, world.alice, {"content": "kiwi"}))["total_results"] == 0
    assert (await search(world, world.owner, {"content": "kiwi"}))["total_results"] == 1


async def test_private_thread_messages_hidden_from_non_members(world: World) -> None:
    r = await world.client.post(f"/api/v10/channels/{world.general_id}/threads", json={"name": "whispers", "type": 12},
                                headers=world.alice.headers)
    assert r.status_code == 201, r.text
    thread_id = int(r.json()["id"])
    secret = await world.send(world.alice, "papaya secret", thread_id)

    assert ids(await search(world, world.alice, {"content": "papaya"})) == [int(secret["id"])]
    assert (await search(world, world.bob, {"content": "papaya"}))["total_results"] == 0
    assert (await search(world, world.owner, {"content": "papaya"}))["total_results"] == 1  # MANAGE_THREADS sees it


async def test_threads_of_a_denied_channel_are_hidden(world: World) -> None:
    secret = await world.channel("secret-with-threads")
    r = await world.client.post(f"/api/v10/channels/{secret}/threads", json={"name": "side talk", "type": 11},
                                headers=world.owner.headers)
    assert r.status_code == 201, r.text
    thread_id = int(r.json()["id"])
    in_thread = await world.send(world.owner, "lychee in a thread", thread_id)
    await deny_member(world, secret, world.bob, VIEW_CHANNEL)  # threads follow their parent's overwrites
    assert (await search(world, world.bob, {"content": "lychee"}))["total_results"] == 0
    assert (await search(world, world.bob, {"content": "lychee", "channel_id": str(thread_id)}))["total_results"] == 0
    assert ids(await search(world, world.alice, {"content": "lychee"})) == [int(in_thread["id"])]
    assert_discord_error(await channel_search(world, world.bob, thread_id, {"content": "lychee"}), 403, 50001)


async def test_non_member_gets_unknown_guild(world: World) -> None:
    await world.send(world.alice, "members only mango")
    stranger = await person(world.platform)
    r = await search_raw(world, stranger, {"content": "mango"})
    assert_discord_error(r, 404, 10004)
    # an unknown guild looks exactly the same
    r = await search_raw(world, world.alice, {"content": "mango"}, guild_id=MAX_SNOWFLAKE)
    assert_discord_error(r, 404, 10004)
    # and the per-channel route gives a stranger no access either
    r = await channel_search(world, stranger, world.general_id, {"content": "mango"})
    assert_discord_error(r, 403, 50001)


async def test_kicked_member_loses_search(world: World) -> None:
    await world.send(world.alice, "farewell message")
    r = await world.client.delete(f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}", headers=world.owner.headers)
    assert r.status_code == 204, r.text
    assert_discord_error(await search_raw(world, world.bob, {"content": "farewell"}), 404, 10004)


async def test_search_requires_authorization(world: World) -> None:
    r = await world.client.get(f"/api/v10/guilds/{world.guild_id}/messages/search", params={"content": "x"})
    assert r.status_code == 401
    assert r.json() == {"message": "401: Unauthorized", "code": 0}


async def test_deleted_messages_disappear_from_search(world: World) -> None:
    gone = await world.send(world.alice, "ephemeral walnut")
    kept = await world.send(world.alice, "permanent walnut")
    r = await world.client.delete(f"/api/v10/channels/{world.general_id}/messages/{gone['id']}", headers=world.alice.headers)
    assert r.status_code == 204, r.text
    assert ids(await search(world, world.owner, {"content": "walnut"})) == [int(kept["id"])]


async def test_edited_content_is_searchable(world: World) -> None:
    msg = await world.send(world.alice, "original wording")
    r = await world.client.patch(f"/api/v10/channels/{world.general_id}/messages/{msg['id']}", json={"content": "revised wording"},
                                 headers=world.alice.headers)
    assert r.status_code == 200, r.text
    assert (await search(world, world.owner, {"content": "original"}))["total_results"] == 0
    assert ids(await search(world, world.owner, {"content": "revised"})) == [int(msg["id"])]


# --- hostile search strings ------------------------------------------------------------------

HOSTILE = [
    "'; DROP TABLE messages; --",
    "\" OR 1=1 --",
    "1'); DELETE FROM messages WHERE ('1'='1",
    "&|!:*()",
    "!!!",
    "(((",
    ")",
    "a & | b",
    "foo:*",
    "<->",
    "a <2> b",
    "\\",
    "\"",
    "'",
    "-",
    "-foo",
    "or",
    "\"unterminated phrase",
    "%_%",
    "$1",
    ":content",
    "a" * 1024,
    "word " * 204,  # 1020 characters of repeated words
    "é" * 1024,
    "\U0001F600" * 1024,
    "\U0001d518" * 512,
    "日本語のテキスト",
    "\u202e\u200b\u200d\ufeff",
    "e\u0301\u0301\u0301",
    "\ufffd",
    " ",
    "",
    "\t\n\r",
]


@pytest.mark.parametrize("query", HOSTILE, ids=[f"q{i}" for i in range(len(HOSTILE))])
async def test_hostile_search_strings_are_harmless(world: World, query: str) -> None:
    await world.send(world.alice, "innocent bystander")
    r = await search_raw(world, world.bob, {"content": query})
    assert r.status_code == 200, r.text
    assert_search_shape(r.json())
    r = await channel_search(world, world.bob, world.general_id, {"content": query})
    assert r.status_code == 200, r.text
    assert_search_shape(r.json())
    # nothing was dropped or deleted
    history = await world.client.get(f"/api/v10/channels/{world.general_id}/messages", headers=world.bob.headers)
    assert history.status_code == 200
    assert [m["content"] for m in history.json()] == ["innocent bystander"]


async def test_sql_looking_content_is_stored_and_found_literally(world: World) -> None:
    evil = await world.send(world.alice, "'; DROP TABLE messages; --")
    body = await search(world, world.owner, {"content": "DROP TABLE"})
    assert ids(body) == [int(evil["id"])]
    assert body["messages"][0][0]["content"] == "'; DROP TABLE messages; --"
    assert (await search(world, world.owner, {"content": "'; DROP TABLE messages; --"}))["total_results"] == 1
    # the table is still there
    later = await world.send(world.bob, "still here")
    assert int(later["id"]) in ids(await search(world, world.owner, {"content": "still"}))


@pytest.mark.parametrize("route", ["guild", "channel"])
async def test_nul_in_search_string_is_not_a_500(world: World, route: str) -> None:
    params = {"content": "abc\x00def"}
    if route == "guild":
        r = await search_raw(world, world.owner, params)
    else:
        r = await channel_search(world, world.owner, world.general_id, params)
    require(r.status_code < 500, f"{r.status_code} {r.text}")
    if r.status_code >= 400:
        assert_discord_error(r)


# --- the per-channel route -------------------------------------------------------------------

async def test_channel_search_route(world: World) -> None:
    other = await world.channel("elsewhere")
    here_a = await world.send(world.alice, "cherry here from alice")
    here_b = await world.send(world.bob, f"cherry here from bob to <@{world.alice.id}>")
    await world.send(world.alice, "cherry elsewhere", other)
    with_file = await send_with_file(world, world.bob, "cherry with file")

    r = await channel_search(world, world.owner, world.general_id, {"content": "cherry"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert_search_shape(body)
    assert body["total_results"] == 3
    assert ids(body) == sorted([int(here_a["id"]), int(here_b["id"]), int(with_file["id"])], reverse=True)
    assert all(g[0]["channel_id"] == str(world.general_id) for g in body["messages"])

    r = await channel_search(world, world.owner, world.general_id, {"content": "cherry", "author_id": str(world.alice.id)})
    assert ids(r.json()) == [int(here_a["id"])]
    r = await channel_search(world, world.owner, world.general_id, {"mentions": str(world.alice.id)})
    assert ids(r.json()) == [int(here_b["id"])]
    r = await channel_search(world, world.owner, world.general_id, {"has": "file"})
    assert ids(r.json()) == [int(with_file["id"])]
    r = await channel_search(world, world.owner, world.general_id, {"content": "cherry", "sort_order": "asc", "limit": "1", "offset": "1"})
    assert ids(r.json()) == [int(here_b["id"])]
    assert r.json()["total_results"] == 3
    r = await channel_search(world, world.owner, world.general_id, {"content": "cherry", "min_id": here_a["id"], "max_id": with_file["id"]})
    assert ids(r.json()) == [int(here_b["id"])]
    r = await channel_search(world, world.owner, other, {"content": "cherry"})
    assert r.json()["total_results"] == 1
    r = await channel_search(world, world.owner, world.general_id, {"content": "durian"})
    assert r.json() == {**r.json(), "total_results": 0, "messages": []}


async def test_channel_search_unknown_channel(world: World) -> None:
    r = await channel_search(world, world.owner, MAX_SNOWFLAKE, {"content": "x"})
    assert_discord_error(r, 404, 10003)
    r = await channel_search(world, world.owner, world.general_id, {"limit": "26"})
    assert_discord_error(r, 400, 50035)


async def test_channel_search_in_a_dm(world: World) -> None:
    r = await world.client.post("/api/v10/users/@me/channels", json={"recipient_id": str(world.bob.id)}, headers=world.alice.headers)
    assert r.status_code == 200, r.text
    dm = int(r.json()["id"])
    sent = await world.send(world.alice, "private grapefruit", dm)
    r = await channel_search(world, world.bob, dm, {"content": "grapefruit"})
    assert r.status_code == 200, r.text
    assert ids(r.json()) == [int(sent["id"])]
    # a third party can't search the DM, and guild search never includes DMs
    assert_discord_error(await channel_search(world, world.owner, dm, {"content": "grapefruit"}), 403, 50001)
    assert (await search(world, world.bob, {"content": "grapefruit"}))["total_results"] == 0


@pytest.mark.parametrize("param", ["author_id", "mentions"])
async def test_channel_search_rejects_out_of_range_ids(world: World, param: str) -> None:
    r = await channel_search(world, world.owner, world.general_id, {param: str(1 << 70)})
    require(r.status_code == 400, f"{r.status_code} {r.text}")
    assert_discord_error(r, 400, 50035)
