"""The public REST API as an agent uses it: its own bot token, Discord's routes, nothing else."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx


class PlatformRefused(Exception):
    """The platform said no (4xx/5xx) to an agent's request."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body[:200]}")
        self.status = status


class AgentAPI:
    def __init__(self, base_url: str, timeout: float = 15.0) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/") + "/api/v10", timeout=timeout,
                                       limits=httpx.Limits(max_connections=32, max_keepalive_connections=16))

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, token: str, method: str, path: str, **kwargs: Any) -> Any:
        for _ in range(3):
            r = await self._http.request(method, path, headers={"Authorization": f"Bot {token}"}, **kwargs)
            if r.status_code == 429:  # rate limited like any bot: wait as told, then retry
                retry = float(r.json().get("retry_after", 1.0))
                await asyncio.sleep(min(retry, 10.0))
                continue
            if r.status_code >= 400:
                raise PlatformRefused(r.status_code, r.text)
            return r.json() if r.content else None
        raise PlatformRefused(429, "rate limited")

    async def history(self, token: str, channel_id: int, limit: int) -> list[dict[str, Any]]:
        """Oldest first."""
        messages = await self._call(token, "GET", f"/channels/{channel_id}/messages", params={"limit": limit})
        return list(reversed(messages))

    async def message(self, token: str, channel_id: int, message_id: int) -> dict[str, Any] | None:
        """One message, or None when it is gone (deleted, or no longer visible)."""
        try:
            return await self._call(token, "GET", f"/channels/{channel_id}/messages/{message_id}")
        except PlatformRefused as exc:
            if exc.status in (403, 404):
                return None
            raise

    async def typing(self, token: str, channel_id: int) -> None:
        try:
            await self._call(token, "POST", f"/channels/{channel_id}/typing")
        except (PlatformRefused, httpx.HTTPError):
            pass  # typing is a courtesy

    async def send(self, token: str, channel_id: int, content: str, *, nonce: str, reply_to: int | None = None,
                   mention: tuple[int, ...] = ()) -> dict[str, Any]:
        """Pings nobody unless named in `mention` (whose `<@id>` the content holds)."""
        body: dict[str, Any] = {"content": content, "nonce": nonce,
                                "allowed_mentions": {"parse": [], "users": [str(u) for u in mention]}}
        if reply_to is not None:
            body["message_reference"] = {"message_id": str(reply_to), "fail_if_not_exists": False}
        return await self._call(token, "POST", f"/channels/{channel_id}/messages", json=body)

    async def react(self, token: str, channel_id: int, message_id: int, emoji: str) -> None:
        await self._call(token, "PUT", f"/channels/{channel_id}/messages/{message_id}/reactions/{quote(emoji, safe='')}/@me")

    async def open_dm(self, token: str, recipient_id: int) -> dict[str, Any]:
        return await self._call(token, "POST", "/users/@me/channels", json={"recipient_id": str(recipient_id)})

    async def start_thread(self, token: str, channel_id: int, message_id: int, name: str) -> dict[str, Any]:
        """A thread from a message (its id is the message's). Already there (a retried turn): that one."""
        try:
            return await self._call(token, "POST", f"/channels/{channel_id}/messages/{message_id}/threads",
                                    json={"name": name, "auto_archive_duration": 1440})
        except PlatformRefused as exc:
            if exc.status != 400:
                raise
            return await self._call(token, "GET", f"/channels/{message_id}")

    async def create_channel(self, token: str, guild_id: int, name: str, topic: str) -> dict[str, Any]:
        return await self._call(token, "POST", f"/guilds/{guild_id}/channels", json={"name": name, "type": 0, "topic": topic})

    async def channels(self, token: str, guild_id: int) -> list[dict[str, Any]]:
        return await self._call(token, "GET", f"/guilds/{guild_id}/channels")
