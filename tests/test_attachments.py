"""Attachments through real HTTP: Discord's multipart upload (`payload_json` + `files[n]`),
type sniffing, safe file names, limits, permissions, deletion, and the S3 object store
(against moto's S3 server on loopback)."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from townsquare.platform.core.config import Settings
from townsquare.platform.core.secretbox import MAGIC, sealed_size

from .helpers import Actor, RunningServer, World, free_port, name, person, start_server

API = "/api/v10"
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")
VIEW_CHANNEL, ATTACH_FILES = 1 << 10, 1 << 15


# --- helpers --------------------------------------------------------------------------------

def make_png(width: int, height: int) -> bytes:
    """A valid RGB PNG, built by hand (no image library)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 40 % 256, y * 60 % 256, 128)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def make_gif(width: int, height: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HH", width, height) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
            + b"\x2c\x00\x00\x00\x00" + struct.pack("<HH", width, height) + b"\x00\x02\x02\x44\x01\x00\x3b")


JUNK = bytes(range(256)) * 4  # invalid UTF-8 and no known magic number


async def upload(client: httpx.AsyncClient, actor: Actor | None, channel_id: int, files: list[tuple[str, bytes, str]],
                 content: str = "", part_names: list[str] | None = None, **payload: Any) -> httpx.Response:
    """Discord's shape: `payload_json` names each file in `attachments` (id = the n of
    `files[n]`); `part_names` (if given) are the file names in the multipart headers."""
    body = {"content": content, "attachments": [{"id": i, "filename": fname} for i, (fname, _, _) in enumerate(files)], **payload}
    parts = [(f"files[{i}]", (part_names[i] if part_names else fname, data, declared)) for i, (fname, data, declared) in enumerate(files)]
    return await client.post(f"{API}/channels/{channel_id}/messages", data={"payload_json": orjson.dumps(body).decode()},
                             files=parts, headers=actor.headers if actor else {})


async def history_ids(world: World, channel_id: int) -> list[str]:
    r = await world.client.get(f"{API}/channels/{channel_id}/messages", params={"limit": 100}, headers=world.owner.headers)
    assert r.status_code == 200, r.text
    return [m["id"] for m in r.json()]


def path_of(url: str) -> str:
    return httpx.URL(url).raw_path.decode()


def store_root(server: RunningServer) -> Path:
    return server.platform.store.root  # type: ignore[attr-defined, no-any-return]


def stored_files(server: RunningServer, channel_id: int) -> list[Path]:
    folder = store_root(server) / "attachments" / str(channel_id)
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def all_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


async def deny_everyone(world: World, channel_id: int, deny: int) -> None:
    """An overwrite on @everyone (whose role id is the guild id), set by the owner."""
    r = await world.client.put(f"{API}/channels/{channel_id}/permissions/{world.guild_id}",
                               json={"type": 0, "allow": "0", "deny": str(deny)}, headers=world.owner.headers)
    assert r.status_code == 204, r.text


def extra_server(settings: Settings, services: Any, **overrides: Any) -> RunningServer:
    """A second server on the session's database, Redis and data folder (so the world's users
    and channels work on it too)."""
    return start_server(settings, services.database_url, services.redis_url, **overrides)


def assert_discord_error(r: httpx.Response, status: int, code: int | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body.get("code"), int) and isinstance(body.get("message"), str), body
    if code is not None:
        assert body["code"] == code, body


# --- 1. upload and download -----------------------------------------------------------------

async def test_upload_png_and_download_same_bytes(world: World, server: RunningServer) -> None:
    data = make_png(7, 5)
    r = await upload(world.client, world.alice, world.general_id, [("my picture.png", data, "image/png")], content="look")
    assert r.status_code == 200, r.text
    msg = r.json()
    assert msg["content"] == "look"
    [att] = msg["attachments"]
    assert att["filename"] == "my_picture.png"
    assert att["content_type"] == "image/png"
    assert att["size"] == len(data)
    assert (att["width"], att["height"]) == (7, 5)
    assert att["url"] == f"{server.url}{API}/attachments/{world.general_id}/{att['id']}/my_picture.png"

    d = await world.client.get(path_of(att["url"]), headers=world.bob.headers)
    assert d.status_code == 200, d.text
    assert d.content == data
    assert d.headers["content-type"] == "image/png"
    assert d.headers["x-content-type-options"] == "nosniff"
    assert d.headers["content-disposition"].startswith("inline")

    # the message as read back carries the same attachment, and the store holds the bytes (encrypted)
    got = await world.client.get(f"{API}/channels/{world.general_id}/messages/{msg['id']}", headers=world.bob.headers)
    assert got.status_code == 200, got.text
    assert got.json()["attachments"] == [att]
    [stored] = stored_files(server, world.general_id)
    assert stored.read_bytes().startswith(MAGIC) and len(stored.read_bytes()) == sealed_size(len(data))


async def test_several_files_keep_their_slots_and_gif_size(world: World) -> None:
    png, gif = make_png(3, 2), make_gif(9, 4)
    r = await upload(world.client, world.alice, world.general_id,
                     [("a.png", png, "image/png"), ("b.gif", gif, "image/gif"), ("c.txt", b"hello", "text/plain")])
    assert r.status_code == 200, r.text
    atts = r.json()["attachments"]
    assert [(a["filename"], a["content_type"], a["size"]) for a in atts] == [
        ("a.png", "image/png", len(png)), ("b.gif", "image/gif", len(gif)), ("c.txt", "text/plain; charset=utf-8", 5)]
    assert (atts[1]["width"], atts[1]["height"]) == (9, 4)
    assert atts[2]["width"] is None and atts[2]["height"] is None
    for att, data in zip(atts, (png, gif, b"hello"), strict=True):
        d = await world.client.get(path_of(att["url"]), headers=world.alice.headers)
        assert d.status_code == 200 and d.content == data


async def test_payload_names_follow_the_files_slot(world: World) -> None:
    """`attachments[].id` is the n of `files[n]`, whatever the order of either list."""
    body = {"content": "slots", "attachments": [{"id": 1, "filename": "second.txt"}, {"id": 0, "filename": "first.txt"}]}
    r = await world.client.post(f"{API}/channels/{world.general_id}/messages", data={"payload_json": orjson.dumps(body).decode()},
                                files=[("files[0]", ("x.bin", b"one", "text/plain")), ("files[1]", ("y.bin", b"two", "text/plain"))],
                                headers=world.alice.headers)
    assert r.status_code == 200, r.text
    atts = r.json()["attachments"]
    assert sorted((a["filename"], a["size"]) for a in atts) == [("first.txt", 3), ("second.txt", 3)]
    for att in atts:
        d = await world.client.get(path_of(att["url"]), headers=world.alice.headers)
        assert d.content == {"first.txt": b"one", "second.txt": b"two"}[att["filename"]]


async def test_attachment_only_message_and_description(world: World) -> None:
    body = {"content": "", "attachments": [{"id": 0, "filename": "notes.txt", "description": "my notes"}]}
    r = await world.client.post(f"{API}/channels/{world.general_id}/messages", data={"payload_json": orjson.dumps(body).decode()},
                                files=[("files[0]", ("notes.txt", b"some notes", "text/plain"))], headers=world.alice.headers)
    assert r.status_code == 200, r.text
    [att] = r.json()["attachments"]
    assert att["description"] == "my notes"
    assert r.json()["content"] == ""


async def test_download_needs_matching_filename_and_channel(world: World) -> None:
    r = await upload(world.client, world.alice, world.general_id, [("a.txt", b"abc", "text/plain")])
    att = r.json()["attachments"][0]
    other = await world.channel("other")
    base = f"{API}/attachments"
    for path in (f"{base}/{world.general_id}/{att['id']}/b.txt",   # wrong name
                 f"{base}/{other}/{att['id']}/a.txt",               # a channel the attachment is not in
                 f"{base}/{world.general_id}/{int(att['id']) + 1}/a.txt"):
        d = await world.client.get(path, headers=world.alice.headers)
        assert_discord_error(d, 404, 10000)


# --- 2. content type sniffing ---------------------------------------------------------------

async def test_declared_type_is_ignored(world: World) -> None:
    html = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'
    r = await upload(world.client, world.alice, world.general_id, [
        ("evil.png", html, "image/png"),              # HTML pretending to be an image
        ("page.html", html, "text/html"),             # HTML declared honestly
        ("pic.svg", svg, "image/svg+xml"),
        ("junk.png", JUNK, "image/png"),              # binary, declared as an image
        ("real.bin", make_png(2, 2), "application/octet-stream"),  # an image declared as binary
    ])
    assert r.status_code == 200, r.text
    atts = r.json()["attachments"]
    assert [a["content_type"] for a in atts] == ["text/plain; charset=utf-8"] * 3 + ["application/octet-stream", "image/png"]
    assert atts[3]["width"] is None
    for att in atts[:3]:
        d = await world.client.get(path_of(att["url"]), headers=world.alice.headers)
        assert d.status_code == 200
        assert d.headers["content-type"].startswith("text/plain"), d.headers
        assert "html" not in d.headers["content-type"] and "svg" not in d.headers["content-type"]
        assert d.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in d.headers["content-security-policy"]
    junk = await world.client.get(path_of(atts[3]["url"]), headers=world.alice.headers)
    assert junk.status_code == 200 and junk.content == JUNK
    assert junk.headers["content-type"] == "application/octet-stream"
    assert junk.headers["content-disposition"] == 'attachment; filename="junk.png"'
    assert junk.headers["x-content-type-options"] == "nosniff"


async def test_long_multibyte_text_is_text(world: World) -> None:
    """Text longer than the sniffed sample, cut inside a multi-byte character (here a 3-byte
    '€' at byte 65535 right after another one), is still text."""
    data = ("€" * 30_000).encode()
    r = await upload(world.client, world.alice, world.general_id, [("prices.txt", data, "text/plain")])
    assert r.status_code == 200, r.text
    assert r.json()["attachments"][0]["content_type"] == "text/plain; charset=utf-8"


async def test_png_with_absurd_header_size_is_accepted(world: World) -> None:
    """A PNG signature followed by a header claiming 4294967295 x 4294967295 pixels: the
    size must not break the upload (the columns are 32-bit signed)."""
    crafted = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + b"\xff" * 8 + b"\x08\x02\x00\x00\x00" + b"\x00" * 4
    before = await history_ids(world, world.general_id)
    r = await upload(world.client, world.alice, world.general_id, [("big.png", crafted, "image/png")])
    assert r.status_code == 200, r.text
    att = r.json()["attachments"][0]
    assert att["content_type"] == "image/png"
    assert att["width"] is None and att["height"] is None
    assert len(await history_ids(world, world.general_id)) == len(before) + 1


# --- 3. safe file names ---------------------------------------------------------------------

HOSTILE_NAMES = [
    "../../etc/passwd",
    "..\\..\\win.ini",
    "/absolute/path/evil.sh",
    "..",
    ".htaccess",
    'quo"te\'s <b>.txt',
    "ctrl\x01\r\nSet-Cookie: x=1.txt",
    "résumé naïve.pdf",
    "日本語.png",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "a" * 300 + ".txt",
    "b" * 300,
    "   ",
    "",
]


async def test_nul_in_a_file_name_is_refused(world: World) -> None:
    r = await upload(world.client, world.alice, world.general_id, [("nul\x00.txt", b"x", "text/plain")], part_names=["p.txt"])
    assert r.status_code == 400 and r.json()["code"] == 50035


async def test_hostile_names_are_made_safe(world: World, server: RunningServer, data_dir: Path) -> None:
    before = all_files(data_dir)
    files = [(hostile, f"file {i}".encode(), "text/plain") for i, hostile in enumerate(HOSTILE_NAMES)]
    # the names travel in payload_json (exactly as given); the multipart headers carry plain names
    r = await upload(world.client, world.alice, world.general_id, files[:10], part_names=[f"p{i}.txt" for i in range(10)])
    r2 = await upload(world.client, world.alice, world.general_id, files[10:], part_names=[f"p{i}.txt" for i in range(10, len(files))])
    assert r.status_code == 200, r.text
    assert r2.status_code == 200, r2.text
    atts = r.json()["attachments"] + r2.json()["attachments"]
    names = [a["filename"] for a in atts]
    for safe in names:
        assert SAFE_NAME.fullmatch(safe), safe
        assert safe != ".." and not safe.startswith(".")
    assert names[:10] == ["passwd", "win.ini", "evil.sh", "unknown", "htaccess", "quo_te_s_b_.txt", "ctrl_Set-Cookie_x_1.txt",
                          "resume_naive.pdf", "unknown.png", "2e_2e_2f_2e_2e_2fetc_2fpasswd"]
    assert names[10] == "a" * 96 + ".txt" and names[11] == "b" * 100
    assert names[12] == "unknown"
    assert names[13] == "p13.txt"  # no name in payload_json: the part's own name
    for att, (_, data, _) in zip(atts, files, strict=True):
        d = await world.client.get(path_of(att["url"]), headers=world.alice.headers)
        assert d.status_code == 200, (att, d.text)
        assert d.content == data
        assert "\r" not in d.headers["content-disposition"] and "\n" not in d.headers["content-disposition"]
        assert "set-cookie" not in d.headers
    # every new file is inside the object store folder, none is named after the upload
    root = store_root(server)
    new = {p for p in all_files(data_dir) - before if data_dir / "services" not in p.parents}  # embedded databases write there
    assert len(new) == len(files)
    for p in new:
        assert root in p.parents, p
        assert p.parent == root / "attachments" / str(world.general_id)
        assert p.name.isdigit()
    assert not (data_dir / "etc").exists() and not (root.parent / "etc").exists()


async def test_hostile_name_in_multipart_header(world: World, server: RunningServer, data_dir: Path) -> None:
    """Without `payload_json` names, the multipart part's own file name is used and cleaned."""
    before = all_files(data_dir)
    owned = name("owned")
    traversal = "../" * 12 + f"tmp/{owned}.sh"
    r = await world.client.post(f"{API}/channels/{world.general_id}/messages", data={"payload_json": '{"content": "x"}'},
                                files=[("files[0]", (traversal, b"#!/bin/sh\n", "text/x-sh"))], headers=world.alice.headers)
    assert r.status_code == 200, r.text
    [att] = r.json()["attachments"]
    assert att["filename"] == f"{owned}.sh"
    new = {p for p in all_files(data_dir) - before if data_dir / "services" not in p.parents}
    assert len(new) == 1 and store_root(server) in next(iter(new)).parents
    assert not Path(f"/tmp/{owned}.sh").exists()
    assert not (store_root(server) / "attachments" / str(world.general_id) / traversal).resolve().exists()


# --- 4. and 5. limits -----------------------------------------------------------------------

@pytest.fixture
def small_server(settings: Settings, services: Any) -> Iterator[RunningServer]:
    running = extra_server(settings, services, max_upload_bytes=1024)
    yield running
    running.stop()


async def test_file_over_limit_is_413_and_nothing_is_written(world: World, small_server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=small_server.url, timeout=30) as c:
        exact = await upload(c, world.alice, world.general_id, [("exact.bin", JUNK[:1024], "application/octet-stream")])
        assert exact.status_code == 200, exact.text
        assert exact.json()["attachments"][0]["size"] == 1024
        before = await history_ids(world, world.general_id)
        files_before = stored_files(small_server, world.general_id)

        over = await upload(c, world.alice, world.general_id, [("over.bin", (JUNK * 2)[:1025], "application/octet-stream")], content="x")
        assert_discord_error(over, 413, 40005)
        # a small first file must not be left behind when a later one is too large
        mixed = await upload(c, world.alice, world.general_id,
                             [("ok.txt", b"small", "text/plain"), ("big.bin", JUNK * 2, "application/octet-stream")], content="x")
        assert_discord_error(mixed, 413, 40005)
        # far over every limit: refused by the body cap before the route runs
        huge = await upload(c, world.alice, world.general_id, [("huge.bin", b"\xff" * (2 * 1024 * 1024), "application/octet-stream")])
        assert_discord_error(huge, 413, 40005)
    assert await history_ids(world, world.general_id) == before
    assert stored_files(small_server, world.general_id) == files_before


async def test_too_many_files_is_rejected(world: World, server: RunningServer, settings: Settings) -> None:
    before = await history_ids(world, world.general_id)
    n = settings.max_attachments_per_message + 1
    files = [(f"f{i}.txt", f"file {i}".encode(), "text/plain") for i in range(n)]
    r = await upload(world.client, world.alice, world.general_id, files, content="too many")
    assert 400 <= r.status_code < 500, r.text
    assert isinstance(r.json().get("code"), int)
    assert await history_ids(world, world.general_id) == before
    assert stored_files(server, world.general_id) == []
    # exactly the limit is fine
    ok = await upload(world.client, world.alice, world.general_id, files[:-1], content="just enough")
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["attachments"]) == settings.max_attachments_per_message


# --- 6. permissions -------------------------------------------------------------------------

async def test_no_authorization_is_401(world: World) -> None:
    before = await history_ids(world, world.general_id)
    r = await upload(world.client, None, world.general_id, [("a.txt", b"abc", "text/plain")])
    assert_discord_error(r, 401)
    bad = await world.client.post(f"{API}/channels/{world.general_id}/messages", data={"payload_json": '{"content": "x"}'},
                                  files=[("files[0]", ("a.txt", b"abc", "text/plain"))], headers={"Authorization": "Bearer nope"})
    assert_discord_error(bad, 401)
    assert await history_ids(world, world.general_id) == before

    ok = await upload(world.client, world.alice, world.general_id, [("a.txt", b"abc", "text/plain")])
    url = path_of(ok.json()["attachments"][0]["url"])
    assert_discord_error(await world.client.get(url), 401)
    assert_discord_error(await world.client.get(url, headers={"Authorization": "Bot nope"}), 401)


async def test_download_needs_view_channel(world: World) -> None:
    room = await world.channel("secret")
    r = await upload(world.client, world.owner, room, [("plan.txt", b"the plan", "text/plain")])
    assert r.status_code == 200, r.text
    url = path_of(r.json()["attachments"][0]["url"])
    assert (await world.client.get(url, headers=world.alice.headers)).status_code == 200

    await deny_everyone(world, room, VIEW_CHANNEL)
    for actor in (world.alice, world.bob, world.bot):
        d = await world.client.get(url, headers=actor.headers)
        assert d.status_code in (403, 404), d.text
        assert b"the plan" not in d.content
    assert (await world.client.get(url, headers=world.owner.headers)).content == b"the plan"


async def test_download_by_non_member_is_refused(world: World) -> None:
    r = await upload(world.client, world.alice, world.general_id, [("a.txt", b"members only", "text/plain")])
    url = path_of(r.json()["attachments"][0]["url"])
    stranger = await person(world.platform)
    d = await world.client.get(url, headers=stranger.headers)
    assert d.status_code in (403, 404), d.text
    assert b"members only" not in d.content


async def test_upload_needs_attach_files(world: World, server: RunningServer) -> None:
    room = await world.channel("no-files")
    await deny_everyone(world, room, ATTACH_FILES)
    before = await history_ids(world, room)
    r = await upload(world.client, world.alice, room, [("a.png", make_png(2, 2), "image/png")], content="with a file")
    assert_discord_error(r, 403, 50013)
    assert await history_ids(world, room) == before
    # text is still fine, and the owner (all permissions) may attach
    await world.send(world.alice, "just text", room)
    ok = await upload(world.client, world.owner, room, [("a.png", make_png(2, 2), "image/png")])
    assert ok.status_code == 200, ok.text


async def test_upload_to_channel_that_cannot_be_seen(world: World) -> None:
    room = await world.channel("hidden")
    await deny_everyone(world, room, VIEW_CHANNEL)
    before = await history_ids(world, room)
    r = await upload(world.client, world.alice, room, [("a.txt", b"abc", "text/plain")], content="hi")
    assert r.status_code in (403, 404), r.text
    stranger = await person(world.platform)
    r2 = await upload(world.client, stranger, world.general_id, [("a.txt", b"abc", "text/plain")], content="hi")
    assert r2.status_code in (403, 404), r2.text
    assert await history_ids(world, room) == before


async def test_refused_upload_writes_nothing(world: World, server: RunningServer) -> None:
    room = await world.channel("no-files")
    await deny_everyone(world, room, ATTACH_FILES)
    r = await upload(world.client, world.alice, room, [("a.txt", b"abc", "text/plain")], content="x")
    assert r.status_code == 403, r.text
    stranger = await person(world.platform)
    r2 = await upload(world.client, stranger, world.general_id, [("b.txt", b"abc", "text/plain")], content="x")
    assert r2.status_code in (403, 404), r2.text
    assert stored_files(server, room) == []
    assert stored_files(server, world.general_id) == []


async def test_retried_send_with_nonce_stores_once(world: World, server: RunningServer) -> None:
    first = await upload(world.client, world.alice, world.general_id, [("a.txt", b"abc", "text/plain")], content="x", nonce="retry-1")
    again = await upload(world.client, world.alice, world.general_id, [("a.txt", b"abc", "text/plain")], content="x", nonce="retry-1")
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert len(stored_files(server, world.general_id)) == 1


# --- 7. deletion ----------------------------------------------------------------------------

async def test_deleting_the_message_deletes_the_object(world: World, server: RunningServer) -> None:
    r = await upload(world.client, world.alice, world.general_id, [("a.png", make_png(4, 4), "image/png"), ("b.txt", b"b", "text/plain")])
    assert r.status_code == 200, r.text
    msg = r.json()
    files = stored_files(server, world.general_id)
    assert sorted(p.name for p in files) == sorted(a["id"] for a in msg["attachments"])
    keep = await upload(world.client, world.bob, world.general_id, [("keep.txt", b"keep", "text/plain")])
    kept_file = store_root(server) / "attachments" / str(world.general_id) / keep.json()["attachments"][0]["id"]

    d = await world.client.delete(f"{API}/channels/{world.general_id}/messages/{msg['id']}", headers=world.alice.headers)
    assert d.status_code == 204, d.text
    for att in msg["attachments"]:
        assert_discord_error(await world.client.get(path_of(att["url"]), headers=world.alice.headers), 404, 10000)
    assert not any(p.exists() for p in files)
    assert kept_file.exists()  # other messages' files are untouched


async def test_bulk_delete_deletes_the_objects(world: World, server: RunningServer) -> None:
    ids, urls = [], []
    for i in range(2):
        r = await upload(world.client, world.alice, world.general_id, [(f"{i}.txt", b"x", "text/plain")])
        ids.append(r.json()["id"])
        urls.append(path_of(r.json()["attachments"][0]["url"]))
    assert len(stored_files(server, world.general_id)) == 2
    d = await world.client.post(f"{API}/channels/{world.general_id}/messages/bulk-delete", json={"messages": ids},
                                headers=world.owner.headers)
    assert d.status_code == 204, d.text
    assert stored_files(server, world.general_id) == []
    for url in urls:
        assert (await world.client.get(url, headers=world.alice.headers)).status_code == 404


async def test_lost_object_is_404_not_500(world: World, server: RunningServer) -> None:
    """A message read while its object disappears (deleted concurrently, or lost) answers
    404, not a server error."""
    r = await upload(world.client, world.alice, world.general_id, [("a.txt", b"abc", "text/plain")])
    att = r.json()["attachments"][0]
    [path] = stored_files(server, world.general_id)
    path.unlink()
    d = await world.client.get(path_of(att["url"]), headers=world.alice.headers)
    assert_discord_error(d, 404, 10000)


# --- 8. the S3 object store -----------------------------------------------------------------

@pytest.fixture
def moto_s3() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    yield f"http://127.0.0.1:{port}"
    moto.stop()


@pytest.fixture
def s3_server(settings: Settings, services: Any, moto_s3: str) -> Iterator[RunningServer]:
    running = extra_server(settings, services, s3_endpoint=moto_s3, s3_access_key="testing", s3_secret_key="testing",
                           s3_bucket="ts-test", s3_region="us-east-1")
    yield running
    running.stop()


def minio_client(endpoint: str) -> Any:
    from minio import Minio

    return Minio(endpoint.removeprefix("http://"), access_key="testing", secret_key="testing", secure=False, region="us-east-1")


async def test_s3_upload_download_delete(world: World, s3_server: RunningServer, moto_s3: str) -> None:
    from minio.error import S3Error

    s3 = minio_client(moto_s3)
    png, text = make_png(6, 3), "Grüße €".encode()
    async with httpx.AsyncClient(base_url=s3_server.url, timeout=30) as c:
        r = await upload(c, world.alice, world.general_id, [("pic.png", png, "text/html"), ("hi.txt", text, "image/png")], content="s3")
        assert r.status_code == 200, r.text
        msg = r.json()
        atts = msg["attachments"]
        assert [(a["content_type"], a["size"]) for a in atts] == [("image/png", len(png)), ("text/plain; charset=utf-8", len(text))]
        assert (atts[0]["width"], atts[0]["height"]) == (6, 3)
        assert atts[0]["url"].startswith(s3_server.url)

        # the bytes really are in the bucket, encrypted (tests/test_security.py checks the encryption)
        keys = [f"attachments/{world.general_id}/{a['id']}" for a in atts]
        for key, data in zip(keys, (png, text), strict=True):
            stat = s3.stat_object("ts-test", key)
            assert stat.size == sealed_size(len(data)) and stat.content_type == "application/octet-stream"
            obj = s3.get_object("ts-test", key)
            try:
                stored = obj.read()
                assert stored.startswith(MAGIC) and data not in stored
            finally:
                obj.close()
                obj.release_conn()
        # and nothing went to the local folder
        assert type(s3_server.platform.store).__name__ == "S3ObjectStore"
        local = s3_server.platform.settings.resolved_data_dir() / "objects" / "attachments" / str(world.general_id)
        assert not local.exists()

        for att, data in zip(atts, (png, text), strict=True):
            d = await c.get(path_of(att["url"]), headers=world.bob.headers)
            assert d.status_code == 200, d.text
            assert d.content == data
            assert d.headers["x-content-type-options"] == "nosniff"
        assert (await c.get(path_of(atts[0]["url"]))).status_code == 401

        d = await c.delete(f"{API}/channels/{world.general_id}/messages/{msg['id']}", headers=world.alice.headers)
        assert d.status_code == 204, d.text
        for key in keys:
            with pytest.raises(S3Error) as err:
                s3.stat_object("ts-test", key)
            assert err.value.code == "NoSuchKey"
        for att in atts:
            assert_discord_error(await c.get(path_of(att["url"]), headers=world.bob.headers), 404, 10000)


async def test_s3_lost_object_is_404(world: World, s3_server: RunningServer, moto_s3: str) -> None:
    s3 = minio_client(moto_s3)
    async with httpx.AsyncClient(base_url=s3_server.url, timeout=30) as c:
        r = await upload(c, world.alice, world.general_id, [("a.txt", b"abc", "text/plain")])
        assert r.status_code == 200, r.text
        att = r.json()["attachments"][0]
        s3.remove_object("ts-test", f"attachments/{world.general_id}/{att['id']}")
        assert_discord_error(await c.get(path_of(att["url"]), headers=world.alice.headers), 404, 10000)

