"""Who a token belongs to, remembered for a few seconds so that most requests skip the
database for it. Revocations and profile changes are forgotten at once in this process
and, through the event stream (TOKEN_REVOKED, USER_UPDATE), in every other one."""

from __future__ import annotations

import time
from typing import Any

TTL_SECONDS = 30.0
MAX_ENTRIES = 50_000


class AuthCache:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self._ttl = ttl
        self._entries: dict[bytes, tuple[float, Any]] = {}

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
