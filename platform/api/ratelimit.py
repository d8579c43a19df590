"""Per-route rate-limit buckets and a global per-token limit, counted in Redis so that every
server instance shares them. One Lua call per request checks both."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis

from ..core.config import Settings
from ..core.errors import RateLimited


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    limit: int
    window: float  # seconds


# (method, route template) -> bucket; the route's major parameter (channel or guild) is part
# of the key, like Discord's.
ROUTES: dict[tuple[str, str], Bucket] = {
    ("POST", "/api/v10/channels/{channel_id}/messages"): Bucket("message-create", 5, 5),
    ("PATCH", "/api/v10/channels/{channel_id}/messages/{message_id}"): Bucket("message-edit", 5, 5),
    ("DELETE", "/api/v10/channels/{channel_id}/messages/{message_id}"): Bucket("message-delete", 5, 1),
    ("PUT", "/api/v10/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"): Bucket("reaction", 4, 1),
    ("DELETE", "/api/v10/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"): Bucket("reaction", 4, 1),
    ("POST", "/api/v10/auth/login"): Bucket("auth", 5, 60),
    ("POST", "/api/v10/auth/register"): Bucket("auth", 5, 60),
    ("GET", "/api/v10/guilds/{guild_id}/messages/search"): Bucket("search", 10, 5),
    ("POST", "/api/v10/guilds/{guild_id}/channels"): Bucket("channel-create", 10, 10),
}
DEFAULT = Bucket("default", 50, 5)

# KEYS: global key, bucket key. ARGV: global limit, bucket limit, bucket window ms.
# Returns {allowed (1/0), scope (0 ok, 1 bucket, 2 global), remaining, reset_after_ms}.
_SCRIPT = """
local g = tonumber(redis.call('INCR', KEYS[1]))
if g == 1 then redis.call('PEXPIRE', KEYS[1], 1000) end
if g > tonumber(ARGV[1]) then
  return {0, 2, 0, redis.call('PTTL', KEYS[1])}
end
local n = tonumber(redis.call('INCR', KEYS[2]))
if n == 1 then redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3])) end
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 0 then redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3])); ttl = tonumber(ARGV[3]) end
if n > tonumber(ARGV[2]) then
  return {0, 1, 0, ttl}
end
return {1, 0, tonumber(ARGV[2]) - n, ttl}
"""


@dataclass(slots=True)
class Verdict:
    bucket: str
    limit: int
    remaining: int
    reset_after: float


class RateLimiter:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._prefix = settings.redis_prefix + "rl:"
        self._global = settings.rate_limit_global_per_second
        self._scale = settings.rate_limit_scale
        self._script = redis.register_script(_SCRIPT)

    def bucket_for(self, method: str, route: str) -> Bucket:
        return ROUTES.get((method, route), DEFAULT)

    async def hit(self, *, who: str, method: str, route: str, major: str) -> Verdict:
        """`who` identifies the caller (a token id, or the client address when anonymous)."""
        bucket = self.bucket_for(method, route)
        limit = max(1, int(bucket.limit * self._scale))
        bucket_id = hashlib.blake2s(f"{bucket.name}:{route if bucket is DEFAULT else ''}".encode(), digest_size=6).hexdigest()
        keys = [f"{self._prefix}g:{who}", f"{self._prefix}b:{who}:{bucket_id}:{major}"]
        allowed, scope, remaining, reset_ms = await self._script(keys=keys, args=[int(self._global * self._scale), limit, int(bucket.window * 1000)])
        reset_after = max(int(reset_ms), 0) / 1000
        if not allowed:
            raise RateLimited(reset_after, is_global=scope == 2, bucket=bucket_id, limit=limit, reset_after=reset_after)
        return Verdict(bucket_id, limit, int(remaining), reset_after)
