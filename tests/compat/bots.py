"""One scripted bot per library, each behind the same small command set, so that the conformance
script (test_compat.py) drives discord.py, hikari and discord.js through exactly the same steps.

A command is `await bot.call(op, **args)` with ids as strings; what a library saw comes back as
plain dicts. The Python libraries run in the test's loop; discord.js runs in Node
(`js/bot.mjs`) and takes the same commands as JSON lines on stdin.

Commands (the same in bot.mjs):
  start(token, base_url, gateway_url) -> {user_id}; guild(guild_id) -> {name, channel_ids, member_ids}
  wait_message(id) -> {id, content, author_id, channel_id, member (the author came as a guild member)}
  wait_reaction(message_id, user_id) -> {message_id, user_id, member_user_id, guild_id, emoji}
  wait_typing(channel_id, user_id); wait_resumes(more_than); wait_reconnects(more_than)
  send(channel_id, content); reply(channel_id, message_id, content); edit(channel_id, message_id, content)
  delete(channel_id, message_id); react(channel_id, message_id, emoji); typing(channel_id)
  history(channel_id, limit) -> [{id, content, has_thread, thread: {id, name, parent_id, type} | None}]
  thread(channel_id, message_id, name) -> {id, name, parent_id, type}; dm(user_id, content) -> {id, channel_id}
  fetch_member(guild_id, user_id) -> {user_id, joined_at}; chunk(guild_id) -> {member_ids}
  resumes() / reconnects() / readies() -> {count} (RESUMED seen; op 7 RECONNECT obeyed; READY seen), and
  wait_readies(more_than); received() -> {ids}; stop()"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

WAIT = 60.0  # generous: a busy machine is slow, never wrong
HAS_THREAD = 1 << 5
JS_DIR = Path(__file__).parent / "js"


class PyBot:
    """Shared bookkeeping of the in-process libraries: what arrived, and waiting for it."""

    name = "?"

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.message_order: list[str] = []
        self.reactions: list[dict[str, Any]] = []
        self.typing: list[dict[str, Any]] = []
        self.resume_count = 0
        self.reconnect_count = 0  # op 7 RECONNECT frames the library acted on
        self.ready_count = 0  # READY: the first IDENTIFY, and every new session after one that could not resume
        self.errors: list[str] = []
        self._changed = asyncio.Condition()

    async def _note(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _until(self, found: Any, what: str) -> Any:
        async def wait() -> Any:
            async with self._changed:
                while (value := found()) is None:
                    if self.errors:
                        raise AssertionError(f"{self.name} failed: {self.errors}")
                    await self._changed.wait()
                return value

        try:
            return await asyncio.wait_for(wait(), WAIT)
        except TimeoutError:
            raise AssertionError(f"{self.name}: no {what} within {WAIT:.0f} s (errors: {self.errors})") from None

    async def call(self, op: str, **args: Any) -> Any:
        return await getattr(self, f"op_{op}")(**args)

    async def op_wait_message(self, id: str) -> dict[str, Any]:
        return await self._until(lambda: self.messages.get(id), f"MESSAGE_CREATE {id}")

    async def op_wait_reaction(self, message_id: str, user_id: str) -> dict[str, Any]:
        return await self._until(lambda: next((r for r in self.reactions if r["message_id"] == message_id and r["user_id"] == user_id), None),
                                 f"reaction by {user_id} on {message_id}")

    async def op_wait_typing(self, channel_id: str, user_id: str) -> dict[str, Any]:
        return await self._until(lambda: next((t for t in self.typing if t["channel_id"] == channel_id and t["user_id"] == user_id), None),
                                 f"typing of {user_id} in {channel_id}")

    async def op_wait_resumes(self, more_than: int) -> dict[str, Any]:
        return await self._until(lambda: {"count": self.resume_count} if self.resume_count > more_than else None, "RESUMED")

    async def op_resumes(self) -> dict[str, Any]:
        return {"count": self.resume_count}

    async def op_readies(self) -> dict[str, Any]:
        return {"count": self.ready_count}

    async def op_wait_readies(self, more_than: int) -> dict[str, Any]:
        return await self._until(lambda: {"count": self.ready_count} if self.ready_count > more_than else None, "READY")

    async def op_reconnects(self) -> dict[str, Any]:
        return {"count": self.reconnect_count}

    async def op_wait_reconnects(self, more_than: int) -> dict[str, Any]:
        return await self._until(lambda: {"count": self.reconnect_count} if self.reconnect_count > more_than else None, "RECONNECT")

    async def op_received(self) -> dict[str, Any]:
        return {"ids": list(self.message_order)}

    async def _message(self, id: int, content: str, author_id: int, channel_id: int, member: bool) -> None:
        key = str(id)
        self.message_order.append(key)
        self.messages.setdefault(key, {"id": key, "content": content, "author_id": str(author_id), "channel_id": str(channel_id),
                                       "member": member})
        await self._note()


class ErrorLog(logging.Handler):
    """A library that swallows an exception in an event handler or a payload parser logs it:
    for the script, that is a failure (discord.py's KeyError on THREAD_MEMBERS_UPDATE was one)."""

    def __init__(self, bot: PyBot, only: str | None = None) -> None:
        super().__init__(logging.ERROR)
        self.bot, self.only = bot, only

    # what the libraries log at ERROR while the server is down, before they retry (not a failure)
    RETRYING = ("Attempting a reconnect", "failed to communicate with server", "Will retry", "will attempt to reconnect")

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if (self.only is None or self.only in text) and not any(r in text for r in self.RETRYING):
            self.bot.errors.append(text)


class Counter(logging.Handler):
    """Counts a library's log lines that contain `marker` (how hikari tells it obeyed op 7)."""

    def __init__(self, marker: str, count: Any) -> None:
        super().__init__(logging.DEBUG)
        self.marker, self.count = marker, count

    def emit(self, record: logging.LogRecord) -> None:
        if self.marker in record.getMessage():
            self.count()


# --- discord.py --------------------------------------------------------------------------

class DiscordPyBot(PyBot):
    """discord.py, configured with its two documented module settings: `http.Route.BASE` (the
    REST base) and `gateway.DiscordWebSocket.DEFAULT_GATEWAY` (where it connects at start and
    after a session it cannot resume)."""

    name = "discord.py"

    async def op_start(self, token: str, base_url: str, gateway_url: str) -> dict[str, Any]:
        import discord
        import yarl

        self._saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        discord.http.Route.BASE = f"{base_url}/api/v10"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
        self._log = ErrorLog(self)
        logging.getLogger("discord").addHandler(self._log)
        intents = discord.Intents.default()
        intents.message_content = True
        intents.members = True
        client = self.client = discord.Client(intents=intents, enable_debug_events=True)
        ready = asyncio.Event()

        @client.event
        async def on_ready() -> None:
            ready.set()
            self.ready_count += 1
            await self._note()

        @client.event
        async def on_resumed() -> None:
            self.resume_count += 1
            await self._note()

        @client.event
        async def on_socket_raw_receive(raw: str) -> None:
            if raw.startswith('{"op":7,') or json.loads(raw).get("op") == 7:
                self.reconnect_count += 1
                await self._note()

        @client.event
        async def on_message(m: discord.Message) -> None:
            await self._message(m.id, m.content, m.author.id, m.channel.id, isinstance(m.author, discord.Member))

        @client.event
        async def on_raw_reaction_add(e: discord.RawReactionActionEvent) -> None:
            self.reactions.append({"message_id": str(e.message_id), "user_id": str(e.user_id), "emoji": str(e.emoji),
                                   "guild_id": str(e.guild_id) if e.guild_id else None,
                                   "member_user_id": str(e.member.id) if e.member is not None else None})
            await self._note()

        @client.event
        async def on_raw_typing(e: discord.RawTypingEvent) -> None:
            self.typing.append({"channel_id": str(e.channel_id), "user_id": str(e.user_id)})
            await self._note()

        self._runner = asyncio.create_task(client.start(token))
        self._runner.add_done_callback(self._stopped)
        done, _ = await asyncio.wait({self._runner, asyncio.create_task(ready.wait())}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
        if self._runner in done:
            self._runner.result()  # raises what stopped it
        assert ready.is_set(), "discord.py: no on_ready"
        assert client.user is not None
        return {"user_id": str(client.user.id)}

    def _stopped(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(f"client.start raised {task.exception()!r}")
            asyncio.get_running_loop().create_task(self._note())

    def _channel(self, channel_id: str) -> Any:
        return self.client.get_channel(int(channel_id)) or self.client.get_partial_messageable(int(channel_id))

    async def op_guild(self, guild_id: str) -> dict[str, Any]:
        guild = self.client.get_guild(int(guild_id))
        assert guild is not None, "discord.py: the guild is not in the cache"
        return {"name": guild.name, "channel_ids": [str(c.id) for c in guild.channels], "member_ids": [str(m.id) for m in guild.members]}

    async def op_send(self, channel_id: str, content: str) -> dict[str, Any]:
        m = await self._channel(channel_id).send(content)
        return {"id": str(m.id), "content": m.content, "author_id": str(m.author.id)}

    async def op_reply(self, channel_id: str, message_id: str, content: str) -> dict[str, Any]:
        target = await self._channel(channel_id).fetch_message(int(message_id))
        m = await target.reply(content)
        return {"id": str(m.id), "reference_id": str(m.reference.message_id) if m.reference else None}

    async def op_edit(self, channel_id: str, message_id: str, content: str) -> dict[str, Any]:
        m = await self._channel(channel_id).get_partial_message(int(message_id)).edit(content=content)
        return {"id": str(m.id), "content": m.content}

    async def op_delete(self, channel_id: str, message_id: str) -> dict[str, Any]:
        await self._channel(channel_id).get_partial_message(int(message_id)).delete()
        return {}

    async def op_react(self, channel_id: str, message_id: str, emoji: str) -> dict[str, Any]:
        await self._channel(channel_id).get_partial_message(int(message_id)).add_reaction(emoji)
        return {}

    async def op_history(self, channel_id: str, limit: int) -> list[dict[str, Any]]:
        out = []
        async for m in self._channel(channel_id).history(limit=limit):
            thread = m.thread
            out.append({"id": str(m.id), "content": m.content, "has_thread": m.flags.has_thread,
                        "thread": None if thread is None else {"id": str(thread.id), "name": thread.name, "parent_id": str(thread.parent_id),
                                                               "type": thread.type.value}})
        return out

    async def op_thread(self, channel_id: str, message_id: str, name: str) -> dict[str, Any]:
        t = await self._channel(channel_id).get_partial_message(int(message_id)).create_thread(name=name)
        return {"id": str(t.id), "name": t.name, "parent_id": str(t.parent_id), "type": t.type.value}

    async def op_dm(self, user_id: str, content: str) -> dict[str, Any]:
        user = await self.client.fetch_user(int(user_id))
        m = await user.send(content)
        return {"id": str(m.id), "channel_id": str(m.channel.id)}

    async def op_typing(self, channel_id: str) -> dict[str, Any]:
        await self._channel(channel_id).typing()
        return {}

    async def op_fetch_member(self, guild_id: str, user_id: str) -> dict[str, Any]:
        guild = self.client.get_guild(int(guild_id))
        assert guild is not None
        m = await guild.fetch_member(int(user_id))
        return {"user_id": str(m.id), "joined_at": m.joined_at.isoformat() if m.joined_at else None}

    async def op_chunk(self, guild_id: str) -> dict[str, Any]:
        guild = self.client.get_guild(int(guild_id))
        assert guild is not None
        members = await guild.chunk(cache=True)
        return {"member_ids": sorted(str(m.id) for m in members)}

    async def op_stop(self) -> dict[str, Any]:
        import discord

        if hasattr(self, "client"):
            with contextlib.suppress(Exception):
                await self.client.close()
        if hasattr(self, "_runner"):
            self._runner.cancel()
            with contextlib.suppress(BaseException):
                await self._runner
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved
        logging.getLogger("discord").removeHandler(self._log)
        return {}


# --- hikari ------------------------------------------------------------------------------

class HikariBot(PyBot):
    """hikari's GatewayBot, configured with its documented `rest_url` (the gateway URL comes
    from `GET /gateway/bot`), and started with `check_for_updates=False` (no call to PyPI)."""

    name = "hikari"

    async def op_start(self, token: str, base_url: str, gateway_url: str) -> dict[str, Any]:
        import hikari

        # hikari logs a payload it cannot parse through asyncio's exception handler
        self._log, self._asyncio_log = ErrorLog(self), ErrorLog(self, only="/hikari/")
        logging.getLogger("hikari").addHandler(self._log)
        logging.getLogger("asyncio").addHandler(self._asyncio_log)
        self._reconnects = Counter("received instruction to reconnect", self._reconnected)
        logging.getLogger("hikari.gateway").addHandler(self._reconnects)
        self._gateway_level = logging.getLogger("hikari.gateway").level
        if logging.getLogger("hikari.gateway").getEffectiveLevel() > logging.INFO:
            logging.getLogger("hikari.gateway").setLevel(logging.INFO)
        intents = hikari.Intents.ALL_UNPRIVILEGED | hikari.Intents.MESSAGE_CONTENT | hikari.Intents.GUILD_MEMBERS
        bot = self.bot = hikari.GatewayBot(token, rest_url=f"{base_url}/api/v10", intents=intents, banner=None, logs=None)
        self.chunks: dict[str, set[str]] = {}

        async def on_message(e: hikari.MessageCreateEvent) -> None:
            await self._message(e.message.id, e.message.content or "", e.message.author.id, e.message.channel_id,
                                e.message.member is not None)

        async def on_reaction(e: hikari.ReactionAddEvent) -> None:
            member = getattr(e, "member", None)
            self.reactions.append({"message_id": str(e.message_id), "user_id": str(e.user_id), "emoji": str(e.emoji_name),
                                   "guild_id": str(member.guild_id) if member is not None else None,
                                   "member_user_id": str(member.id) if member is not None else None})
            await self._note()

        async def on_typing(e: hikari.TypingEvent) -> None:
            self.typing.append({"channel_id": str(e.channel_id), "user_id": str(e.user_id)})
            await self._note()

        async def on_resumed(e: hikari.ShardResumedEvent) -> None:
            self.resume_count += 1
            await self._note()

        async def on_ready(e: hikari.ShardReadyEvent) -> None:
            self.ready_count += 1
            await self._note()

        async def on_chunk(e: hikari.MemberChunkEvent) -> None:
            self.chunks.setdefault(str(e.nonce), set()).update(str(u) for u in e.members)
            if e.chunk_index == e.chunk_count - 1:
                self.chunks.setdefault(f"{e.nonce}:done", set())
            await self._note()

        bot.subscribe(hikari.MessageCreateEvent, on_message)
        bot.subscribe(hikari.ReactionAddEvent, on_reaction)
        bot.subscribe(hikari.TypingEvent, on_typing)
        bot.subscribe(hikari.ShardResumedEvent, on_resumed)
        bot.subscribe(hikari.ShardReadyEvent, on_ready)
        bot.subscribe(hikari.MemberChunkEvent, on_chunk)
        async def on_guild(e: hikari.GuildAvailableEvent) -> None:
            await self._note()

        bot.subscribe(hikari.GuildAvailableEvent, on_guild)
        await asyncio.wait_for(bot.start(check_for_updates=False), WAIT)
        me = bot.get_me()
        assert me is not None
        return {"user_id": str(me.id)}

    def _reconnected(self) -> None:
        self.reconnect_count += 1
        asyncio.get_running_loop().create_task(self._note())

    async def op_guild(self, guild_id: str) -> dict[str, Any]:
        # hikari's start() returns at READY; the guild is cached from the GUILD_CREATE that follows
        guild = await self._until(lambda: self.bot.cache.get_guild(int(guild_id)), "guild in the cache")
        return {"name": guild.name, "channel_ids": [str(c) for c in self.bot.cache.get_guild_channels_view_for_guild(int(guild_id))],
                "member_ids": [str(m) for m in self.bot.cache.get_members_view_for_guild(int(guild_id))]}

    async def op_send(self, channel_id: str, content: str) -> dict[str, Any]:
        m = await self.bot.rest.create_message(int(channel_id), content)
        return {"id": str(m.id), "content": m.content, "author_id": str(m.author.id)}

    async def op_reply(self, channel_id: str, message_id: str, content: str) -> dict[str, Any]:
        m = await self.bot.rest.create_message(int(channel_id), content, reply=int(message_id))
        return {"id": str(m.id), "reference_id": str(m.referenced_message.id) if m.referenced_message else None}

    async def op_edit(self, channel_id: str, message_id: str, content: str) -> dict[str, Any]:
        m = await self.bot.rest.edit_message(int(channel_id), int(message_id), content)
        return {"id": str(m.id), "content": m.content}

    async def op_delete(self, channel_id: str, message_id: str) -> dict[str, Any]:
        await self.bot.rest.delete_message(int(channel_id), int(message_id))
        return {}

    async def op_react(self, channel_id: str, message_id: str, emoji: str) -> dict[str, Any]:
        await self.bot.rest.add_reaction(int(channel_id), int(message_id), emoji)
        return {}

    async def op_history(self, channel_id: str, limit: int) -> list[dict[str, Any]]:
        import hikari

        messages = await self.bot.rest.fetch_messages(int(channel_id)).limit(limit)
        return [{"id": str(m.id), "content": m.content, "has_thread": bool(m.flags & hikari.MessageFlag.HAS_THREAD),
                 "thread": None if m.thread is None else {"id": str(m.thread.id), "name": m.thread.name, "parent_id": str(m.thread.parent_id),
                                                          "type": int(m.thread.type)}}
                for m in messages]

    async def op_thread(self, channel_id: str, message_id: str, name: str) -> dict[str, Any]:
        t = await self.bot.rest.create_message_thread(int(channel_id), int(message_id), name)
        return {"id": str(t.id), "name": t.name, "parent_id": str(t.parent_id), "type": int(t.type)}

    async def op_dm(self, user_id: str, content: str) -> dict[str, Any]:
        channel = await self.bot.rest.create_dm_channel(int(user_id))
        m = await self.bot.rest.create_message(channel.id, content)
        return {"id": str(m.id), "channel_id": str(m.channel_id)}

    async def op_typing(self, channel_id: str) -> dict[str, Any]:
        await self.bot.rest.trigger_typing(int(channel_id))
        return {}

    async def op_fetch_member(self, guild_id: str, user_id: str) -> dict[str, Any]:
        m = await self.bot.rest.fetch_member(int(guild_id), int(user_id))
        return {"user_id": str(m.id), "joined_at": m.joined_at.isoformat() if m.joined_at else None}

    async def op_chunk(self, guild_id: str) -> dict[str, Any]:
        nonce = os.urandom(8).hex()
        await self.bot.request_guild_members(int(guild_id), nonce=nonce)
        await self._until(lambda: True if f"{nonce}:done" in self.chunks else None, "GUILD_MEMBERS_CHUNK")
        return {"member_ids": sorted(self.chunks[nonce])}

    async def op_stop(self) -> dict[str, Any]:
        with contextlib.suppress(Exception):
            if self.bot.is_alive:
                await self.bot.close()
        logging.getLogger("hikari").removeHandler(self._log)
        logging.getLogger("asyncio").removeHandler(self._asyncio_log)
        logging.getLogger("hikari.gateway").removeHandler(self._reconnects)
        logging.getLogger("hikari.gateway").setLevel(self._gateway_level)
        return {}


# --- discord.js --------------------------------------------------------------------------

class DiscordJsBot:
    """discord.js in Node, configured with its documented `rest.api` option (the gateway URL
    comes from `GET /gateway/bot`); `js/bot.mjs` takes the commands as JSON lines."""

    name = "discord.js"

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self._n = 0
        self._lock = asyncio.Lock()
        self._stderr: list[bytes] = []

    @staticmethod
    def available() -> str | None:
        """Why it cannot run here, or None."""
        if shutil.which("node") is None:
            return "Node.js is not installed (`make test` installs Debian's nodejs and npm; or `make node`)"
        if not (JS_DIR / "node_modules" / "discord.js").is_dir():
            return "discord.js is not installed: run `make node` (npm ci in tests/compat/js)"
        return None

    async def call(self, op: str, **args: Any) -> Any:
        if self.proc is None:
            self.proc = await asyncio.create_subprocess_exec("node", str(JS_DIR / "bot.mjs"), cwd=str(JS_DIR), stdin=asyncio.subprocess.PIPE,
                                                             stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=1 << 24)
            self._drain = asyncio.create_task(self._read_stderr())
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self._lock:
            self._n += 1
            self.proc.stdin.write(json.dumps({"n": self._n, "op": op, "args": args}).encode() + b"\n")
            await self.proc.stdin.drain()
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), WAIT + 30)
            except TimeoutError:
                raise AssertionError(f"discord.js: no answer to {op} ({self.stderr()})") from None
        if not line:
            raise AssertionError(f"discord.js exited during {op}: {self.stderr()}")
        reply = json.loads(line)
        assert reply["n"] == self._n
        if not reply["ok"]:
            raise AssertionError(f"discord.js {op}: {reply['error']} ({self.stderr()})")
        return reply["result"]

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self._stderr.append(line)
            self._stderr[:] = self._stderr[-50:]

    def stderr(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")[-4000:]

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.call("stop"), 15)
            if self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
            await self.proc.wait()
            self._drain.cancel()


def make_bot(library: str) -> Any:
    return {"discord.py": DiscordPyBot, "hikari": HikariBot, "discord.js": DiscordJsBot}[library]()
