"""The fallback chain: primary -> next -> ... -> a cached reply -> silence.

Each backend sits behind a circuit breaker. A backend that fails (unreachable, timeout, error)
counts against its breaker; one that answers with something unusable (empty, garbage, a
near-duplicate: the caller's `accept` says) does not, but the chain still moves on, because a
bad reply is never posted. When nothing usable comes back and no cached reply fits, the agent
stays silent and the caller shows it "resting". Every call is handed to `record`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from ..mind.clock import Clock
from .backends import Backend, BackendError, GenOptions, make_backend
from .breaker import CircuitBreaker
from .routing import Routing

log = logging.getLogger("townsquare.brain")


@dataclass(frozen=True)
class Thought:
    text: str | None
    source: str  # "llm" | "cache" | "none"
    backend: str | None = None
    step: int = 0  # position in the chain that answered (the cache is the step after the last backend)
    llm_ms: int = 0
    unavailable: bool = False  # every backend is switched off by its breaker: the agent is "resting"
    reached: bool = True  # some backend answered (usable or not)


class ReplyCache:
    """Good replies kept per agent and prompt (Redis, shared by workers): what the agent said
    before to the same line is what it says when every model is down."""

    def __init__(self, redis: Redis, prefix: str, ttl_seconds: int = 7 * 86_400) -> None:
        self.redis, self.prefix, self.ttl = redis, prefix, ttl_seconds

    def _key(self, agent_id: int, key: str) -> str:
        digest = hashlib.sha1(" ".join(key.lower().split()).encode()).hexdigest()[:20]
        return f"{self.prefix}replycache:{agent_id}:{digest}"

    async def get(self, agent_id: int, key: str) -> str | None:
        value = await self.redis.get(self._key(agent_id, key))
        return value.decode() if isinstance(value, bytes) else value

    async def put(self, agent_id: int, key: str, text: str) -> None:
        await self.redis.set(self._key(agent_id, key), text, ex=self.ttl)


class FallbackChain:
    def __init__(self, routing: Routing, clock: Clock, *, cache: ReplyCache | None = None,
                 record: Callable[[dict[str, Any]], None] | None = None, backends: dict[str, Backend] | None = None) -> None:
        self.routing, self.clock, self.cache = routing, clock, cache
        self.record = record or (lambda call: None)
        self.backends = backends or {name: make_backend(name, spec) for name, spec in routing.backends.items()}
        b = routing.breaker
        self.breakers = {name: CircuitBreaker(clock, b.failure_threshold, b.recovery_seconds) for name in self.backends}

    async def close(self) -> None:
        for backend in self.backends.values():
            await backend.close()

    def _log(self, *, agent_id: int | None, guild_id: int | None, task: str, backend: str, model: str, started: float,
             outcome: str, step: int, prompt_tokens: int = 0, completion_tokens: int = 0, error: str | None = None) -> int:
        latency = int((time.perf_counter() - started) * 1000)
        self.record({"agent_id": agent_id, "guild_id": guild_id, "task": task, "backend": backend, "model": model,
                     "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "latency_ms": latency,
                     "outcome": outcome, "fallback_step": step, "error": error})
        return latency

    async def think(self, *, agent_id: int | None, guild_id: int | None, agent_name: str | None, task: str,
                    messages: list[dict[str, str]], options: GenOptions, accept: Callable[[str], Any],
                    cache_key: str | None = None, timeout: float | None = None, prompt: str | None = None) -> Thought:
        """`prompt`: a raw completion prompt (the transcript form) instead of chat `messages`.
        `accept(text)` returns the postable text or None, or a verdict with `.text` and `.reason`
        (the quality gate): a rejection's reason is recorded with the call."""
        chain = self.routing.chain(agent=agent_name, task=task)
        reached, llm_ms = False, 0
        for step, name in enumerate(chain):
            backend, breaker = self.backends[name], self.breakers[name]
            if not breaker.allow():
                continue
            started = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    completion = await (backend.complete(prompt, options) if prompt is not None else backend.chat(messages, options))
            except (BackendError, TimeoutError) as exc:
                breaker.failure()
                outcome = "timeout" if isinstance(exc, TimeoutError) else "error"
                log.warning("LLM backend failed", extra={"backend": name, "outcome": outcome, "breaker": breaker.state,
                                                         "error": str(exc)[:200]})
                llm_ms += self._log(agent_id=agent_id, guild_id=guild_id, task=task, backend=name, model=backend.model,
                                    started=started, outcome=outcome, step=step, error=str(exc)[:300] or outcome)
                continue
            breaker.success()
            reached = True
            text, reason = _verdict(accept(completion.text))
            llm_ms += self._log(agent_id=agent_id, guild_id=guild_id, task=task, backend=name, model=backend.model, started=started,
                                outcome="ok" if text else "rejected", step=step, prompt_tokens=completion.prompt_tokens,
                                completion_tokens=completion.completion_tokens, error=f"gate:{reason}" if reason else None)
            if text:
                if self.cache is not None and cache_key and agent_id is not None:
                    await self.cache.put(agent_id, cache_key, text)
                return Thought(text, "llm", name, step, llm_ms)
        if self.cache is not None and cache_key and agent_id is not None:
            started = time.perf_counter()
            cached = await self.cache.get(agent_id, cache_key)
            text = _verdict(accept(cached))[0] if cached else None
            if text:
                self._log(agent_id=agent_id, guild_id=guild_id, task=task, backend="cache", model="cache", started=started,
                          outcome="cached", step=len(chain))
                return Thought(text, "cache", "cache", len(chain), llm_ms)
        # "resting" only when every backend of the chain is switched off by its breaker: one
        # timeout is a failed turn, not an outage
        down = not reached and all(self.breakers[name].state != "closed" for name in chain)
        return Thought(None, "none", None, len(chain), llm_ms, unavailable=down, reached=reached)


def _verdict(result: Any) -> tuple[str | None, str | None]:
    """(text, rejection reason) from what an `accept` returned: a string, None, or a gate verdict."""
    if result is None or isinstance(result, str):
        return result or None, None
    return result.text, (None if result.text else getattr(result, "reason", None))
