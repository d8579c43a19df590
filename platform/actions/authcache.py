"""Who a token belongs to, remembered for a few seconds so that most requests skip the
database for it. Revocations and profile changes are forgotten at once in this process
and, through the event stream (TOKEN_REVOKED, USER_UPDATE), in every other one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

TTL_SECONDS = 30.0
MAX_ENTRIES = 50_000


class AuthCache:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self._ttl = ttl
        self._entries: dict[bytes, tuple[float, Any]] = {}
        self._inflight: dict[bytes, asyncio.Future[Any]] = {}

    async def single_flight(self, key: bytes, load: Callable[[], Awaitable[Any]]) -> Any:
        """One lookup per key at a time: a burst of requests with a new token costs one query."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load()
            future.set_result(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must log it
            raise
        finally:
            del self._inflight[key]

    def get(self, token_hash: bytes) -> Any | None:
        hit = self._entries.get(token_hash)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self._entries.pop(token_hash, None)
            return None
        return hit[1]

    def put(self, token_hash: bytes, value: Any) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[token_hash] = (time.monotonic() + self._ttl, value)

    def forget_tokens(self, token_ids: set[int]) -> None:
        for key in [k for k, (_, v) in self._entries.items() if v[0].token_id in token_ids]:
            self._entries.pop(key, None)

    def forget_user(self, user_id: int) -> None:
        for key in [k for k, (_, v) in self._entries.items() if v[0].id == user_id]:
            self._entries.pop(key, None)
