"""The audit log through real HTTP: GET /guilds/{id}/audit-logs after moderation actions, with
Discord's action_type numbers, the actor, the target, the X-Audit-Log-Reason header, the
user_id / action_type / before / after / limit filters, and the VIEW_AUDIT_LOG permission."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .helpers import Actor, World, assert_discord_error, person

CHANNEL_CREATE, CHANNEL_UPDATE, CHANNEL_DELETE = 10, 11, 12
MEMBER_KICK, MEMBER_ROLE_UPDATE = 20, 25
ROLE_CREATE, ROLE_UPDATE, ROLE_DELETE = 30, 31, 32
MESSAGE_DELETE, MESSAGE_BULK_DELETE, MESSAGE_PIN, MESSAGE_UNPIN = 72, 73, 74, 75

MANAGE_CHANNELS = 1 << 4
VIEW_AUDIT_LOG = 1 << 7
MAX_SNOWFLAKE = (1 << 63) - 1


# --- local helpers ---------------------------------------------------------------------------



def reason_header(text: str) -> dict[str, str]:
    """Discord's X-Audit-Log-Reason is URL-encoded (headers are latin-1 on the wire)."""
    from urllib.parse import quote

    return {"X-Audit-Log-Reason": quote(text)}


async def audit_raw(world: World, actor: Actor | None = None, params: Any = None) -> httpx.Response:
    return await world.client.get(f"/api/v10/guilds/{world.guild_id}/audit-logs", params=params, headers=(actor or world.owner).headers)


async def audit(world: World, actor: Actor | None = None, **params: Any) -> dict[str, Any]:
    r = await audit_raw(world, actor, {k: str(v) for k, v in params.items()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["audit_log_entries"], list)
    for key in ("users", "threads", "integrations", "webhooks"):
        assert isinstance(body[key], list), body
    for e in body["audit_log_entries"]:
        assert {"id", "user_id", "action_type", "target_id", "changes", "reason"} <= set(e), e
        assert isinstance(e["action_type"], int)
        assert e.get("guild_id", str(world.guild_id)) == str(world.guild_id)
    ids = [int(e["id"]) for e in body["audit_log_entries"]]
    if "after" not in params:
        assert ids == sorted(ids, reverse=True), "entries are newest first"
    return body


def of_type(body: dict[str, Any], action_type: int) -> list[dict[str, Any]]:
    return [e for e in body["audit_log_entries"] if e["action_type"] == action_type]


def only(body: dict[str, Any], action_type: int) -> dict[str, Any]:
    entries = of_type(body, action_type)
    assert len(entries) == 1, (action_type, body["audit_log_entries"])
    return entries[0]


def change(entry: dict[str, Any], key: str) -> dict[str, Any]:
    found = [c for c in entry["changes"] or [] if c["key"] == key]
    assert len(found) == 1, (key, entry)
    return found[0]


async def make_role(world: World, permissions: int = 0, name: str = "helpers", **headers: str) -> int:
    r = await world.client.post(f"/api/v10/guilds/{world.guild_id}/roles", json={"name": name, "permissions": str(permissions)},
                                headers={**world.owner.headers, **headers})
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


async def give_role(world: World, user: Actor, role_id: int) -> None:
    r = await world.client.put(f"/api/v10/guilds/{world.guild_id}/members/{user.id}/roles/{role_id}", headers=world.owner.headers)
    assert r.status_code == 204, r.text


# --- channels --------------------------------------------------------------------------------

async def test_channel_create_update_delete(world: World) -> None:
    c = world.client
    r = await c.post(f"/api/v10/guilds/{world.guild_id}/channels", json={"name": "logged"},
                     headers={**world.owner.headers, **reason_header("opening a room")})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = await c.patch(f"/api/v10/channels/{cid}", json={"name": "renamed", "topic": "new topic"},
                      headers={**world.owner.headers, **reason_header("better name")})
    assert r.status_code == 200, r.text
    r = await c.delete(f"/api/v10/channels/{cid}", headers={**world.owner.headers, **reason_header("not needed")})
    assert r.status_code == 200, r.text

    body = await audit(world)
    created, updated, deleted = only(body, CHANNEL_CREATE), only(body, CHANNEL_UPDATE), only(body, CHANNEL_DELETE)
    for entry in (created, updated, deleted):
        assert entry["user_id"] == str(world.owner.id)
        assert entry["target_id"] == cid
    assert created["reason"] == "opening a room"
    assert updated["reason"] == "better name"
    assert deleted["reason"] == "not needed"
    assert change(created, "name")["new_value"] == "logged"
    assert change(updated, "name") == {"key": "name", "old_value": "logged", "new_value": "renamed"}
    assert change(updated, "topic")["new_value"] == "new topic"
    # newest first: delete, update, create
    order = [e["action_type"] for e in body["audit_log_entries"] if e["target_id"] == cid]
    assert order == [CHANNEL_DELETE, CHANNEL_UPDATE, CHANNEL_CREATE]
    # the actor is in `users`
    assert str(world.owner.id) in {u["id"] for u in body["users"]}


async def test_entry_without_reason_has_null_reason(world: World) -> None:
    cid = await world.channel("plain")
    entry = only(await audit(world), CHANNEL_CREATE)
    assert entry["target_id"] == str(cid)
    assert entry["reason"] is None


async def test_reason_is_url_decoded_and_unicode(world: World) -> None:
    text = "Spam & abuse — été 🚫 100%"
    await make_role(world, name="decoded", **reason_header(text))
    assert only(await audit(world), ROLE_CREATE)["reason"] == text


async def test_long_reason_is_truncated_not_rejected(world: World) -> None:
    await make_role(world, name="long-reason", **reason_header("r" * 2000))
    reason = only(await audit(world), ROLE_CREATE)["reason"]
    assert reason == "r" * len(reason)
    assert 0 < len(reason) <= 512


# --- roles and members -----------------------------------------------------------------------

async def test_role_create_update_delete(world: World) -> None:
    c = world.client
    role_id = await make_role(world, permissions=0, name="mods", **reason_header("new team"))
    r = await c.patch(f"/api/v10/guilds/{world.guild_id}/roles/{role_id}", json={"name": "moderators", "color": 0xFF0000},
                      headers={**world.owner.headers, **reason_header("rename")})
    assert r.status_code == 200, r.text
    r = await c.delete(f"/api/v10/guilds/{world.guild_id}/roles/{role_id}", headers={**world.owner.headers, **reason_header("disband")})
    assert r.status_code == 204, r.text

    body = await audit(world)
    created, updated, deleted = only(body, ROLE_CREATE), only(body, ROLE_UPDATE), only(body, ROLE_DELETE)
    for entry in (created, updated, deleted):
        assert entry["user_id"] == str(world.owner.id)
        assert entry["target_id"] == str(role_id)
    assert (created["reason"], updated["reason"], deleted["reason"]) == ("new team", "rename", "disband")
    assert change(created, "name")["new_value"] == "mods"
    assert change(updated, "name") == {"key": "name", "old_value": "mods", "new_value": "moderators"}
    assert change(updated, "color")["new_value"] == 0xFF0000


async def test_member_kick(world: World) -> None:
    r = await world.client.delete(f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}",
                                  headers={**world.owner.headers, **reason_header("rule 3")})
    assert r.status_code == 204, r.text
    r = await world.client.get(f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}", headers=world.owner.headers)
    assert_discord_error(r, 404, 10007)

    entry = only(await audit(world), MEMBER_KICK)
    assert entry["user_id"] == str(world.owner.id)
    assert entry["target_id"] == str(world.bob.id)
    assert entry["reason"] == "rule 3"


async def test_leaving_is_not_a_kick(world: World) -> None:
    r = await world.client.delete(f"/api/v10/users/@me/guilds/{world.guild_id}", headers=world.bob.headers)
    assert r.status_code == 204, r.text
    assert of_type(await audit(world), MEMBER_KICK) == []


async def test_failed_kick_writes_nothing(world: World) -> None:
    r = await world.client.delete(f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}", headers=world.alice.headers)
    assert_discord_error(r, 403, 50013)
    assert of_type(await audit(world), MEMBER_KICK) == []


async def test_member_role_update(world: World) -> None:
    role_id = await make_role(world, name="colour")
    r = await world.client.put(f"/api/v10/guilds/{world.guild_id}/members/{world.alice.id}/roles/{role_id}",
                               headers={**world.owner.headers, **reason_header("earned it")})
    assert r.status_code == 204, r.text
    r = await world.client.patch(f"/api/v10/guilds/{world.guild_id}/members/{world.alice.id}", json={"roles": []},
                                 headers={**world.owner.headers, **reason_header("lost it")})
    assert r.status_code == 200, r.text

    entries = of_type(await audit(world), MEMBER_ROLE_UPDATE)
    assert len(entries) == 2
    removed, added = entries  # newest first
    for entry in entries:
        assert entry["user_id"] == str(world.owner.id)
        assert entry["target_id"] == str(world.alice.id)
    assert added["reason"] == "earned it"
    assert removed["reason"] == "lost it"
    assert [r["id"] for r in change(added, "$add")["new_value"]] == [str(role_id)]
    assert [r["id"] for r in change(removed, "$remove")["new_value"]] == [str(role_id)]


async def test_member_role_update_uses_discords_add_and_remove_keys(world: World) -> None:
    role_id = await make_role(world, name="shiny")
    await give_role(world, world.alice, role_id)
    entry = only(await audit(world), MEMBER_ROLE_UPDATE)
    added = change(entry, "$add")
    assert added["new_value"] == [{"id": str(role_id), "name": "shiny"}]


# --- messages --------------------------------------------------------------------------------

async def test_message_delete_by_a_moderator(world: World) -> None:
    msg = await world.send(world.alice, "delete me")
    r = await world.client.delete(f"/api/v10/channels/{world.general_id}/messages/{msg['id']}",
                                  headers={**world.owner.headers, **reason_header("off topic")})
    assert r.status_code == 204, r.text

    entry = only(await audit(world), MESSAGE_DELETE)
    assert entry["user_id"] == str(world.owner.id)
    assert entry["target_id"] == str(world.alice.id)  # Discord: the target is the message's author
    assert entry["reason"] == "off topic"
    assert entry["options"]["channel_id"] == str(world.general_id)
    assert entry["options"]["count"] == "1"


async def test_deleting_ones_own_message_is_not_logged(world: World) -> None:
    msg = await world.send(world.alice, "my own")
    r = await world.client.delete(f"/api/v10/channels/{world.general_id}/messages/{msg['id']}", headers=world.alice.headers)
    assert r.status_code == 204, r.text
    assert of_type(await audit(world), MESSAGE_DELETE) == []


async def test_bulk_delete(world: World) -> None:
    sent = [await world.send(actor, f"bulk {i}") for i, actor in enumerate((world.alice, world.bob, world.alice))]
    keep = await world.send(world.bob, "survivor")
    r = await world.client.post(f"/api/v10/channels/{world.general_id}/messages/bulk-delete",
                                json={"messages": [m["id"] for m in sent]},
                                headers={**world.owner.headers, **reason_header("raid cleanup")})
    assert r.status_code == 204, r.text
    history = await world.client.get(f"/api/v10/channels/{world.general_id}/messages", headers=world.owner.headers)
    assert [m["id"] for m in history.json()] == [keep["id"]]

    entry = only(await audit(world), MESSAGE_BULK_DELETE)
    assert entry["user_id"] == str(world.owner.id)
    assert entry["target_id"] == str(world.general_id)  # Discord: the target is the channel
    assert entry["reason"] == "raid cleanup"
    assert entry["options"]["count"] == "3"


async def test_pin_and_unpin(world: World) -> None:
    msg = await world.send(world.alice, "important announcement")
    url = f"/api/v10/channels/{world.general_id}/pins/{msg['id']}"
    r = await world.client.put(url, headers={**world.owner.headers, **reason_header("keep visible")})
    assert r.status_code == 204, r.text
    r = await world.client.delete(url, headers={**world.owner.headers, **reason_header("outdated")})
    assert r.status_code == 204, r.text

    body = await audit(world)
    pinned, unpinned = only(body, MESSAGE_PIN), only(body, MESSAGE_UNPIN)
    for entry in (pinned, unpinned):
        assert entry["user_id"] == str(world.owner.id)
        assert entry["target_id"] == str(world.alice.id)
        assert entry["options"]["channel_id"] == str(world.general_id)
        assert entry["options"]["message_id"] == msg["id"]
    assert pinned["reason"] == "keep visible"
    assert unpinned["reason"] == "outdated"
    assert int(unpinned["id"]) > int(pinned["id"])


async def test_repeated_pin_is_logged_once(world: World) -> None:
    msg = await world.send(world.alice, "pin twice")
    url = f"/api/v10/channels/{world.general_id}/pins/{msg['id']}"
    for _ in range(2):
        r = await world.client.put(url, headers=world.owner.headers)
        assert r.status_code == 204, r.text
    assert len(of_type(await audit(world), MESSAGE_PIN)) == 1


# --- filters and paging ----------------------------------------------------------------------

async def _mixed_log(world: World) -> None:
    """Entries by two actors: alice gets a role with MANAGE_CHANNELS and creates channels."""
    role_id = await make_role(world, permissions=MANAGE_CHANNELS, name="builders")
    await give_role(world, world.alice, role_id)
    for name in ("a-one", "a-two"):
        r = await world.client.post(f"/api/v10/guilds/{world.guild_id}/channels", json={"name": name}, headers=world.alice.headers)
        assert r.status_code == 201, r.text
    await world.channel("o-one")


async def test_filter_by_user_id(world: World) -> None:
    await _mixed_log(world)
    alice = await audit(world, user_id=world.alice.id)
    assert len(alice["audit_log_entries"]) == 2
    assert {e["user_id"] for e in alice["audit_log_entries"]} == {str(world.alice.id)}
    assert {e["action_type"] for e in alice["audit_log_entries"]} == {CHANNEL_CREATE}
    assert str(world.alice.id) in {u["id"] for u in alice["users"]}

    owner = await audit(world, user_id=world.owner.id)
    assert owner["audit_log_entries"]
    assert {e["user_id"] for e in owner["audit_log_entries"]} == {str(world.owner.id)}
    assert (await audit(world, user_id=world.bob.id))["audit_log_entries"] == []


async def test_filter_by_action_type(world: World) -> None:
    await _mixed_log(world)
    creates = await audit(world, action_type=CHANNEL_CREATE)
    assert len(creates["audit_log_entries"]) == 3
    assert {e["action_type"] for e in creates["audit_log_entries"]} == {CHANNEL_CREATE}
    roles = await audit(world, action_type=ROLE_CREATE)
    assert len(roles["audit_log_entries"]) == 1
    both = await audit(world, action_type=CHANNEL_CREATE, user_id=world.alice.id)
    assert len(both["audit_log_entries"]) == 2
    assert (await audit(world, action_type=MEMBER_KICK))["audit_log_entries"] == []


async def test_limit_and_before_page_backwards(world: World) -> None:
    for i in range(5):
        await world.channel(f"page-{i}")
    everything = [e["id"] for e in (await audit(world))["audit_log_entries"]]
    assert len(everything) >= 5

    first = await audit(world, limit=2)
    assert [e["id"] for e in first["audit_log_entries"]] == everything[:2]
    second = await audit(world, limit=2, before=first["audit_log_entries"][-1]["id"])
    assert [e["id"] for e in second["audit_log_entries"]] == everything[2:4]

    # paging all the way back visits every entry once
    seen: list[str] = []
    before: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if before:
            params["before"] = before
        page = [e["id"] for e in (await audit(world, **params))["audit_log_entries"]]
        if not page:
            break
        assert len(page) <= 2
        seen += page
        before = page[-1]
    assert seen == everything

    assert (await audit(world, before=everything[-1]))["audit_log_entries"] == []
    assert len((await audit(world, limit=1))["audit_log_entries"]) == 1


async def test_after_returns_newer_entries(world: World) -> None:
    for i in range(3):
        await world.channel(f"after-{i}")
    everything = [e["id"] for e in (await audit(world))["audit_log_entries"]]
    newer = await audit(world, after=everything[-1])
    assert sorted(e["id"] for e in newer["audit_log_entries"]) == sorted(everything[:-1])
    assert (await audit(world, after=everything[0]))["audit_log_entries"] == []


async def test_default_limit_is_50_and_max_is_100(world: World) -> None:
    for i in range(55):
        await world.channel(f"many-{i}")
    assert len((await audit(world))["audit_log_entries"]) == 50
    assert len((await audit(world, limit=100))["audit_log_entries"]) >= 55
    assert_discord_error(await audit_raw(world, params={"limit": "101"}), 400, 50035)


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "abc"}, {"before": "-1"}, {"before": "1e999"}, {"after": str(MAX_SNOWFLAKE + 1)},
    {"user_id": "alice"}, {"user_id": "99999999999999999999999"}, {"action_type": "-1"}, {"action_type": "x"},
])
async def test_bad_filters_are_400(world: World, params: dict[str, str]) -> None:
    assert_discord_error(await audit_raw(world, params=params), 400, 50035)


async def test_entries_do_not_leak_between_guilds(world: World) -> None:
    await world.channel("mine")
    r = await world.client.post("/api/v10/guilds", json={"name": "Elsewhere"}, headers=world.alice.headers)
    assert r.status_code == 201, r.text
    other = r.json()["id"]
    r = await world.client.post(f"/api/v10/guilds/{other}/channels", json={"name": "theirs"}, headers=world.alice.headers)
    assert r.status_code == 201, r.text
    theirs = r.json()["id"]
    mine = await audit(world)
    assert theirs not in {e["target_id"] for e in mine["audit_log_entries"]}
    r = await world.client.get(f"/api/v10/guilds/{other}/audit-logs", headers=world.alice.headers)
    assert r.status_code == 200
    assert {e["target_id"] for e in r.json()["audit_log_entries"] if e["action_type"] == CHANNEL_CREATE} == {theirs}


# --- permission ------------------------------------------------------------------------------

async def test_view_audit_log_is_required(world: World) -> None:
    await world.channel("secretive")
    r = await audit_raw(world, world.bob)
    assert_discord_error(r, 403, 50013)
    # MANAGE_CHANNELS is not enough
    role_id = await make_role(world, permissions=MANAGE_CHANNELS, name="builders")
    await give_role(world, world.bob, role_id)
    assert_discord_error(await audit_raw(world, world.bob), 403, 50013)
    # VIEW_AUDIT_LOG is
    auditor = await make_role(world, permissions=VIEW_AUDIT_LOG, name="auditors")
    await give_role(world, world.bob, auditor)
    r = await audit_raw(world, world.bob)
    assert r.status_code == 200, r.text
    assert of_type(r.json(), CHANNEL_CREATE)


async def test_bot_member_without_permission_is_refused(world: World) -> None:
    assert_discord_error(await audit_raw(world, world.bot), 403, 50013)


async def test_non_member_gets_unknown_guild(world: World) -> None:
    stranger = await person(world.platform)
    assert_discord_error(await audit_raw(world, stranger), 404, 10004)
    r = await world.client.get(f"/api/v10/guilds/{MAX_SNOWFLAKE}/audit-logs", headers=world.owner.headers)
    assert_discord_error(r, 404, 10004)


async def test_audit_log_requires_authorization(world: World) -> None:
    r = await world.client.get(f"/api/v10/guilds/{world.guild_id}/audit-logs")
    assert r.status_code == 401
    assert r.json() == {"message": "401: Unauthorized", "code": 0}
