"""The browser chat client at /app, driven in a real Chromium: a person registers through an
invite, talks, sees a bot's and a real agent worker's replies arrive live, reacts, replies in a
thread, uploads an image, searches; the gateway connection is cut and restored (both RESUME and
a refused resume) without a message missing or doubled; a phone screen in French."""

from __future__ import annotations

import asyncio
import struct
import zlib
from typing import Any

import httpx
import pytest

from townsquare.agents.mind.mood import MOOD_EMOJI
from townsquare.platform.actions.context import Platform
from townsquare.platform.core.config import Settings
from townsquare.worker.runtime.worker import AgentWorker

from .browser import Web, close_web, open_web
from .fakellm import FakeLLM, distinct_reply
from .gwclient import GatewayClient
from .helpers import Actor, RunningServer, World, name, person, wait_for
from .test_worker import found, worker_settings


def png(width: int = 24, height: int = 16) -> bytes:
    """A small valid PNG (a red-to-blue gradient) built by hand: no image library needed."""
    rows = b"".join(b"\x00" + b"".join(bytes((255 * x // width, 80, 255 - 255 * x // width)) for x in range(width))
                    for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def cmp_ids(a: str, b: str) -> int:
    return (int(a) > int(b)) - (int(a) < int(b))


async def sign_in(web: Web, actor: Actor, path: str) -> None:
    """Open `path` already signed in as `actor` (the token where the login page would put it)."""
    page: Any = web.page
    await page.goto("/login?lang=en")
    await page.evaluate("token => localStorage.setItem('ts_token', token)", actor.token)
    await page.goto(path)
    await connected(web)


async def connected(web: Web) -> None:
    await web.page.locator(".connection[data-state=connected]").wait_for(state="attached")  # type: ignore[attr-defined]


def message(web: Web, text: str) -> Any:
    """The main list's message whose body contains `text`."""
    return web.page.locator(".centre .msg", has=web.page.locator(".msg-body", has_text=text))  # type: ignore[attr-defined]


async def post(world: World, actor: Actor, content: str, channel_id: int | None = None, **extra: Any) -> dict[str, Any]:
    return await world.send(actor, content, channel_id, **extra)


async def test_a_person_joins_talks_reacts_threads_uploads_and_searches(web: Web, world: World, client: httpx.AsyncClient) -> None:
    page: Any = web.page
    invite = (await client.post(f"/api/v10/channels/{world.general_id}/invites", json={}, headers=world.owner.headers)).json()

    # A newcomer follows the invite link, registers, and lands in the society's #general.
    await page.goto(f"/app/invite/{invite['code']}?lang=en")
    await page.wait_for_url("**/login?next=*")
    await page.get_by_role("tab", name="Register").click()
    form = page.locator("#form-register")
    username = name("ana")
    await form.get_by_label("Username").fill(username)
    await form.get_by_label("Password").fill("correct horse battery")
    await form.get_by_role("button", name="Register").click()
    await page.wait_for_url(f"**/app/{world.guild_id}/{world.general_id}")
    await connected(web)
    me = await page.evaluate("window.townsquare.state.me.id")

    composer = page.get_by_role("combobox", name="Message #general")
    await composer.fill("Hello everyone, **first** day here!")
    await composer.press("Enter")
    mine = message(web, "Hello everyone")
    await mine.wait_for()
    assert await mine.locator("strong").text_content() == "first"

    # A bot answers through the REST API: the reply arrives live, quoting the message, with a BOT tag.
    sent = (await client.get(f"/api/v10/channels/{world.general_id}/messages?limit=1", headers=world.bot.headers)).json()[0]
    await post(world, world.bot, f"Welcome <@{me}>!", message_reference={"message_id": sent["id"]})
    reply = message(web, "Welcome")
    await reply.wait_for()
    assert await reply.locator(".tag-bot").text_content() == "BOT"
    assert "Hello everyone" in await reply.locator(".reply-line").text_content()
    assert await reply.locator(".mention-me").text_content() == f"@{username}"
    await web.shot("chat-channel")

    # Reactions: pick one from the picker, then click the chip to take it back.
    await reply.hover()
    await reply.get_by_role("button", name="Add reaction").click()
    await page.get_by_role("dialog", name="Emoji").get_by_role("button", name="thumbs up").click()
    chip = reply.locator(".reaction", has_text="👍")
    await chip.filter(has_text="1").wait_for()
    assert await chip.get_attribute("aria-pressed") == "true"
    await chip.click()
    await chip.wait_for(state="detached")

    # A thread from the bot's message: named in a dialog, opened beside the channel, posted in.
    await reply.hover()
    await reply.get_by_role("button", name="Open a thread").click()
    dialog = page.get_by_role("dialog", name="Thread name")
    await dialog.get_by_label("Thread name").fill("Welcome thread")
    await dialog.get_by_role("button", name="Create thread").click()
    panel = page.locator("#chat-side")
    await panel.get_by_role("heading", name="Welcome thread").wait_for()
    thread_box = panel.get_by_role("combobox")
    await thread_box.fill("Thanks, glad to be here")
    await thread_box.press("Enter")
    await panel.locator(".msg-body", has_text="glad to be here").wait_for()
    sent_thread = (await client.get(f"/api/v10/guilds/{world.guild_id}/threads/active", headers=world.bot.headers)).json()
    thread_id = next(t["id"] for t in sent_thread["threads"] if t["name"] == "Welcome thread")
    await post(world, world.bot, "Happy to help in here", int(thread_id))
    await panel.locator(".msg-body", has_text="Happy to help").wait_for()
    await reply.locator(".thread-link", has_text="Welcome thread").wait_for()
    await web.shot("chat-thread")
    await panel.get_by_role("button", name="Close").click()

    # An image: previewed before sending, shown (fetched with the token) once sent.
    await page.locator(".centre input[type=file]").set_input_files(files=[{"name": "sky.png", "mimeType": "image/png", "buffer": png()}])
    await page.locator(".upload-preview img").wait_for()
    await composer.fill("look at this sky")
    await composer.press("Enter")
    picture = message(web, "look at this sky").locator("img.attachment-image")
    await picture.wait_for()
    await page.wait_for_function("el => el.complete && el.naturalWidth === 24 && el.src.startsWith('blob:')",
                                 arg=await picture.element_handle())
    await web.shot("chat-upload")

    # Search the society and jump to a hit.
    for i in range(60):  # push the searched message out of the loaded page
        await post(world, world.alice, f"filler line {i}")
    await message(web, "filler line 59").wait_for()
    search = page.get_by_role("searchbox", name="Search messages")
    await search.fill("everyone")
    await search.press("Enter")
    hit = page.locator(".search-hit", has_text="Hello everyone")
    await hit.wait_for()
    await web.shot("chat-search")
    await hit.click()
    await page.locator(".msg.flash", has_text="Hello everyone").wait_for()


async def shown_texts(web: Web, prefix: str) -> list[str]:
    """The bodies of the main list's messages that start with `prefix`, in page order."""
    return await web.page.evaluate(  # type: ignore[attr-defined]
        "prefix => [...document.querySelectorAll('.centre .msg-body')].map(e => e.textContent).filter(t => t.startsWith(prefix))",
        prefix)


async def test_a_cut_connection_resumes_and_a_refused_resume_refetches_without_loss_or_doubles(
        web: Web, world: World) -> None:
    page: Any = web.page
    await sign_in(web, world.bob, f"/app/{world.guild_id}/{world.general_id}")
    await post(world, world.alice, "before the cut")
    await message(web, "before the cut").wait_for()

    # 1. The network goes away; the socket is cut; messages are posted meanwhile; the network comes back.
    await web.context.set_offline(True)  # type: ignore[attr-defined]
    await page.evaluate("window.townsquare.gateway.drop()")
    status = page.get_by_role("status").filter(has_text="Reconnecting")
    await status.wait_for()
    await web.shot("chat-reconnecting")
    for i in range(5):
        await post(world, world.alice, f"missed-a {i}")
    await web.context.set_offline(False)  # type: ignore[attr-defined]
    await connected(web)
    await message(web, "missed-a 4").wait_for()
    assert await shown_texts(web, "missed-a") == [f"missed-a {i}" for i in range(5)]

    # 2. The server refuses to resume (an unknown session): the client identifies anew and
    #    refetches the channel, so the messages sent while it was away still show, once each.
    await web.context.set_offline(True)  # type: ignore[attr-defined]
    await page.evaluate("window.townsquare.gateway.drop()")
    await status.wait_for()
    await page.evaluate("window.townsquare.gateway.sessionId = 'not-a-session'")
    for i in range(4):
        await post(world, world.alice, f"missed-b {i}")
    await web.context.set_offline(False)  # type: ignore[attr-defined]
    await connected(web)
    await message(web, "missed-b 3").wait_for()
    # live messages after the refetch still arrive, once
    await post(world, world.alice, "missed-b 4")
    await message(web, "missed-b 4").wait_for()
    assert await shown_texts(web, "missed-b") == [f"missed-b {i}" for i in range(5)]
    assert await shown_texts(web, "missed-a") == [f"missed-a {i}" for i in range(5)]
    assert len(await shown_texts(web, "before the cut")) == 1
    new_session = await page.evaluate("window.townsquare.gateway.sessionId")
    assert new_session and new_session != "not-a-session"


async def test_history_paging_markdown_code_mentions_edits_and_deletes(web: Web, world: World) -> None:
    page: Any = web.page
    await post(world, world.alice, "the very first line")
    await post(world, world.alice, "```python\ndef greet(name):  # say hi\n    return f\"hi {name}\" * 2\n```")
    await post(world, world.alice, "<script>alert(1)</script> [click](javascript:alert(1)) see https://example.org/x and _soft_ `x<y`")
    for i in range(110):
        await post(world, world.alice, f"history {i:03d}")
    await sign_in(web, world.bob, f"/app/{world.guild_id}/{world.general_id}")
    await message(web, "history 109").wait_for()
    assert await page.locator(".centre .msg").count() <= 60  # one page, not the whole channel

    # Scrolling up loads older pages until the beginning of the channel.
    beginning = page.locator(".history-start:not([hidden])")
    for _ in range(5):
        if await beginning.count():
            break
        await page.locator(".centre .messages").evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
        await page.wait_for_function("() => !document.querySelector('.history-loading:not([hidden])')")
    await beginning.wait_for()
    await message(web, "the very first line").wait_for()
    assert len(await shown_texts(web, "history")) == 110
    # grouped authors: one header for alice's consecutive lines
    assert await page.locator(".centre .msg:not(.grouped)").count() == 1

    # Code blocks are highlighted; markup in messages stays text; only http(s) links are links.
    code = page.locator(".centre pre code.hl[data-lang=python]")
    assert await code.locator(".hl-kw", has_text="def").count() == 1
    assert await code.locator(".hl-com").text_content() == "# say hi"
    assert await code.locator(".hl-str").count() == 1 and await code.locator(".hl-num").text_content() == "2"
    risky = message(web, "alert(1)")
    assert await page.locator(".centre script").count() == 0
    assert "<script>alert(1)</script>" in await risky.locator(".msg-body").text_content()
    links = risky.locator("a")
    assert await links.count() == 1
    assert await links.get_attribute("href") == "https://example.org/x" and "noopener" in await links.get_attribute("rel")
    assert await risky.locator("em").text_content() == "soft" and await risky.locator("code").text_content() == "x<y"

    # Mention autocomplete inserts <@id>, shown as a chip.
    alice_name = (await world.client.get("/api/v10/users/@me", headers=world.alice.headers)).json()["username"]
    composer = page.get_by_role("combobox", name="Message #general")
    await composer.type(f"thanks @{alice_name[:4]}")
    option = page.get_by_role("option", name=alice_name)
    await option.wait_for()
    await composer.press("Enter")
    assert await composer.input_value() == f"thanks <@{world.alice.id}> "
    await composer.type("for the history")
    await composer.press("Enter")
    mine = message(web, "for the history")
    await mine.locator(".mention-user", has_text=f"@{alice_name}").wait_for()

    # Edit (the up arrow edits one's last message) and delete one's own message.
    await composer.press("ArrowUp")
    edit_box = page.get_by_role("textbox", name="Edit message")
    await edit_box.fill("edited: for the whole history")
    await edit_box.press("Enter")
    await message(web, "edited: for the whole history").locator(".edited").wait_for()
    edited = message(web, "edited: for the whole history")
    await edited.hover()
    await edited.get_by_role("button", name="Delete").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    await edited.wait_for(state="detached")
    # others' messages offer no edit or delete
    other = message(web, "history 109")
    await other.hover()
    assert await other.get_by_role("button", name="Delete").count() == 0
    await web.shot("chat-history")


async def test_unread_and_mention_badges_typing_presence_and_direct_messages(web: Web, world: World) -> None:
    page: Any = web.page
    random = await world.channel("random")
    await sign_in(web, world.bob, f"/app/{world.guild_id}/{world.general_id}")
    nav = page.get_by_role("navigation", name="Societies and channels")
    random_link = nav.locator(f"a[data-channel='{random}']")
    await random_link.wait_for()
    assert "unread" not in (await random_link.get_attribute("class") or "")

    # Elsewhere: a plain message makes #random unread; a mention adds a badge; opening it clears both.
    await post(world, world.alice, "anyone here?", random)
    await page.locator(f"a.unread[data-channel='{random}']").wait_for()
    await post(world, world.alice, f"<@{world.bob.id}> you around?", random)
    await random_link.locator(".badge.mention", has_text="1").wait_for()
    await page.locator(f"a.guild[data-guild='{world.guild_id}'] .badge.mention", has_text="1").wait_for()
    await web.shot("chat-badges")
    await random_link.click()
    await message(web, "you around?").wait_for()
    await page.locator(f"a.unread[data-channel='{random}']").wait_for(state="detached")
    await random_link.locator(".badge").wait_for(state="detached")

    async def acked() -> bool:
        states = (await world.client.get("/api/v10/users/@me/read-states", headers=world.bob.headers)).json()["entries"]
        return any(e["id"] == str(random) and e["unread_count"] == 0 and e["mention_count"] == 0 for e in states)

    await wait_for(acked)

    # Typing, both ways.
    r = await world.client.post(f"/api/v10/channels/{random}/typing", headers=world.alice.headers)
    assert r.status_code == 204
    alice_name = (await world.client.get("/api/v10/users/@me", headers=world.alice.headers)).json()["username"]
    await page.locator(".typing", has_text=f"{alice_name} is typing").wait_for()
    gw = GatewayClient(web.base_url)
    try:
        await gw.identify(world.alice.token)
        await page.get_by_role("combobox", name="Message #random").type("hel")
        typing = await gw.next(t="TYPING_START")
        assert typing["d"]["user_id"] == str(world.bob.id) and typing["d"]["channel_id"] == str(random)
        # Alice's open gateway session shows her online in the member list.
        members = page.get_by_role("complementary", name="Members")
        await members.locator(f".member.online[data-user='{world.alice.id}']").wait_for()
        await members.locator(f".member[data-user='{world.bot.id}'] .tag-bot").wait_for()
    finally:
        await gw.close()

    # A direct message opened from the member list.
    await members.locator(f".member[data-user='{world.alice.id}']").hover()
    await members.get_by_role("button", name=f"Send a direct message to {alice_name}").click()
    await page.wait_for_url("**/app/@me/*")
    dm = page.get_by_role("combobox", name=f"Message @{alice_name}")
    await dm.fill("just between us")
    await dm.press("Enter")
    await message(web, "just between us").wait_for()
    dm_id = page.url.rsplit("/", 1)[1]
    await nav.locator(f"a.current[data-channel='{dm_id}']").wait_for()
    # Her answer arrives live; a DM elsewhere counts as a mention on the home button.
    await post(world, world.alice, "sure thing", int(dm_id))
    await message(web, "sure thing").wait_for()
    await web.shot("chat-dm")
    assert await nav.locator(f"a[data-channel='{random}']").count() == 0  # the DM view lists conversations, not channels

    async def dm_read() -> bool:
        states = (await world.client.get("/api/v10/users/@me/read-states", headers=world.bob.headers)).json()["entries"]
        return any(e["id"] == dm_id and e["unread_count"] == 0 for e in states)

    await wait_for(dm_read)  # seen while open: acknowledged
    # A DM that arrives while the page is still loading: the read states it fetched were counted
    # before the message (their answer is held back here until the message has arrived live) and
    # must not erase its badge when they land.
    fetched, arrived = asyncio.Event(), asyncio.Event()

    async def hold_read_states(route: Any) -> None:
        response = await route.fetch()
        fetched.set()
        await arrived.wait()
        await route.fulfill(response=response)

    await page.route("**/api/v10/users/@me/read-states", hold_read_states)
    await page.goto(f"/app/{world.guild_id}/{world.general_id}")
    await asyncio.wait_for(fetched.wait(), 30)
    await connected(web)
    await post(world, world.alice, "one more thing", int(dm_id))
    home_badge = page.locator("a.guild[data-guild='@me'] .badge.mention", has_text="1")
    await home_badge.wait_for()
    arrived.set()
    await page.get_by_role("combobox", name="Message #general").wait_for()  # the page finished loading, the read states are in
    await home_badge.wait_for()
    await page.unroute("**/api/v10/users/@me/read-states")


async def test_a_phone_in_french(browser: object, server: RunningServer, world: World) -> None:
    web = await open_web(browser, server.url, locale="fr-FR", mobile=True)
    try:
        page: Any = web.page
        await sign_in(web, world.bob, f"/app/{world.guild_id}/{world.general_id}?lang=fr")
        assert await page.evaluate("document.documentElement.lang") == "fr"
        nav = page.get_by_role("navigation", name="Sociétés et salons")
        toggle_nav = page.get_by_role("button", name="Afficher ou masquer les salons")
        toggle_members = page.get_by_role("button", name="Afficher ou masquer les membres")
        # on a phone both side columns start closed behind their toggles
        assert not await nav.is_visible()
        assert await toggle_nav.get_attribute("aria-expanded") == "false"
        assert not await page.get_by_role("complementary", name="Membres").is_visible()
        composer = page.get_by_role("combobox", name="Écrire dans #general")
        await composer.fill("Bonjour depuis mon téléphone")
        await composer.press("Enter")
        await message(web, "Bonjour depuis").wait_for()
        await post(world, world.alice, "Salut ! ```sql\nSELECT 1 -- un\n```")
        await message(web, "Salut").locator(".hl-kw", has_text="SELECT").wait_for()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
        await web.shot("chat-phone-fr")
        await toggle_nav.click()
        await nav.wait_for()
        assert await toggle_nav.get_attribute("aria-expanded") == "true"
        await web.shot("chat-phone-fr-nav")
        await nav.get_by_role("link", name="general").click()
        await nav.wait_for(state="hidden")
        await toggle_members.click()
        await page.get_by_role("complementary", name="Membres").get_by_text("En ligne — 1").wait_for()
    finally:
        await close_web(web)


@pytest.fixture
def llm() -> Any:
    fake = FakeLLM(reply=distinct_reply).start()  # lines the near-duplicate filter never rejects
    yield fake
    fake.stop()


async def test_a_real_agent_worker_answers_live(web: Web, platform: Platform, settings: Settings, server: RunningServer,
                                                client: httpx.AsyncClient, llm: FakeLLM) -> None:
    page: Any = web.page
    admin = await person(platform, is_admin=True)
    guild_id, cast = await found(platform, admin)
    general = next(c["id"] for c in (await client.get(f"/api/v10/guilds/{guild_id}/channels", headers=admin.headers)).json()
                   if c["name"] == "general")
    worker = AgentWorker(worker_settings(settings, server, llm.url), platform, name=name("w"))
    await worker.start()
    try:
        agent = cast[0]
        # The leading worker keeps the agents' presence: online, with their mood as a custom status
        # (an emoji and a coarse label, for every member; here the administrator, a member too).
        await sign_in(web, admin, f"/app/{guild_id}/{general}")
        row = page.get_by_role("complementary", name="Members").locator(f".member.online[data-user='{agent['id']}']")
        await row.locator(".tag-bot").wait_for()
        await row.locator(".member-status").wait_for()
        async def shows_its_mood() -> bool | None:
            # the mood moves (what the agent reads, relaxing over time): the status follows it
            label = worker.state.mood(int(agent["id"])).label()
            return (await row.locator(".member-status").text_content()) == f"{MOOD_EMOJI[label]}{label}" or None

        await wait_for(shows_its_mood, timeout=30, interval=0.5)
        composer = page.get_by_role("combobox", name="Message #general")
        await composer.type(f"@{agent['user']['username'][:5]}")
        await page.get_by_role("option").first.wait_for()
        await composer.press("Enter")
        await composer.type("good morning, any news?")
        await composer.press("Enter")
        mine = message(web, "any news?")
        await mine.wait_for()
        sent_id = await mine.get_attribute("data-id")
        # The worker reads the event stream, asks the (fake) model and answers through the API:
        # the answer shows up live in the open page, as a reply to the mention.
        answer = page.locator(".centre .msg", has=page.locator(".tag-bot")).filter(has=page.locator(".reply-line", has_text="any news"))
        await answer.wait_for(timeout=30_000)
        assert await answer.locator(".msg-body").text_content()
        assert cmp_ids(await answer.get_attribute("data-id"), sent_id) > 0
        await web.shot("chat-agent-reply")
    finally:
        await worker.stop()
