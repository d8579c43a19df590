"""Accounts and tokens: register, login, Bot/Bearer schemes, revocation, bot tokens."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from .helpers import World, name


async def test_register_login_logout(client: httpx.AsyncClient, world: World) -> None:
    username = name("h")
    r = await client.post("/api/v10/auth/register", json={"username": username, "password": "long enough pw"})
    assert r.status_code == 201
    token = r.json()["token"]
    me = await client.get("/api/v10/users/@me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == username and me.json()["bot"] is False
    dup = await client.post("/api/v10/auth/register", json={"username": username.upper(), "password": "long enough pw"})
    assert dup.status_code == 400 and "username" in dup.json()["errors"]
    short = await client.post("/api/v10/auth/register", json={"username": name("h"), "password": "short"})
    assert short.status_code == 400 and "password" in short.json()["errors"]
    weird = await client.post("/api/v10/auth/register", json={"username": "../../etc", "password": "long enough pw"})
    assert weird.status_code == 400
    wrong = await client.post("/api/v10/auth/login", json={"login": username, "password": "not it at all"})
    assert wrong.status_code == 401
    nobody = await client.post("/api/v10/auth/login", json={"login": name("nobody"), "password": "not it at all"})
    assert nobody.status_code == 401
    second = (await client.post("/api/v10/auth/login", json={"login": username, "password": "long enough pw"})).json()["token"]
    assert (await client.post("/api/v10/auth/logout", headers={"Authorization": f"Bearer {token}"})).status_code == 204
    assert (await client.get("/api/v10/users/@me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert (await client.get("/api/v10/users/@me", headers={"Authorization": f"Bearer {second}"})).status_code == 200


async def test_passwords_and_tokens_are_not_stored_in_clear(world: World) -> None:
    async with world.platform.read() as conn:
        row = (await conn.execute(text("SELECT password_hash FROM users WHERE id = :id"), {"id": world.alice.id})).one()
        hashes = (await conn.execute(text("SELECT token_hash FROM tokens WHERE user_id = :id"), {"id": world.alice.id})).scalars().all()
    assert row.password_hash.startswith("$argon2")
    assert all(world.alice.token.encode() != h for h in hashes)


async def test_bot_tokens(world: World) -> None:
    c = world.client
    r = await c.post("/api/v10/townsquare/bots", json={"username": name("mybot")}, headers=world.alice.headers)
    assert r.status_code == 201
    bot_id, token = r.json()["user"]["id"], r.json()["token"]
    assert (await c.get("/api/v10/users/@me", headers={"Authorization": f"Bot {token}"})).json()["bot"] is True
    assert (await c.get("/api/v10/users/@me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert (await c.get("/api/v10/users/@me", headers={"Authorization": token})).status_code == 401
    assert (await c.post("/api/v10/townsquare/bots", json={"username": name("b")}, headers={"Authorization": f"Bot {token}"})).status_code == 403
    assert bot_id in [b["id"] for b in (await c.get("/api/v10/townsquare/bots", headers=world.alice.headers)).json()]
    assert (await c.post(f"/api/v10/townsquare/bots/{bot_id}/reset-token", headers=world.bob.headers)).status_code == 403
    new = (await c.post(f"/api/v10/townsquare/bots/{bot_id}/reset-token", headers=world.alice.headers)).json()["token"]
    assert (await c.get("/api/v10/users/@me", headers={"Authorization": f"Bot {token}"})).status_code == 401
    assert (await c.get("/api/v10/users/@me", headers={"Authorization": f"Bot {new}"})).status_code == 200


async def test_profile_update(world: World) -> None:
    r = await world.client.patch("/api/v10/users/@me", json={"global_name": "Alice A.", "bio": "hi"}, headers=world.alice.headers)
    assert r.status_code == 200 and r.json()["global_name"] == "Alice A."
    r = await world.client.get(f"/api/v10/users/{world.alice.id}", headers=world.bob.headers)
    assert r.json()["global_name"] == "Alice A."
    taken = (await world.client.get(f"/api/v10/users/{world.bob.id}", headers=world.bob.headers)).json()["username"]
    r = await world.client.patch("/api/v10/users/@me", json={"username": taken}, headers=world.alice.headers)
    assert r.status_code == 400
