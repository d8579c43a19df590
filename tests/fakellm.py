"""A stand-in for the LLM's *content* in tests where wording does not matter: a loopback
server speaking the slice of Ollama's API the agents use (`/api/chat`, `/api/tags`), reached
through the real `ollama` client. Tests script its answers, delays and failures."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .helpers import free_port

_counter = itertools.count(1)


def speaker(call: dict[str, Any]) -> str | None:
    """Whose line a recorded call asked for: the name a transcript prompt ends with ("Ana Lee:"),
    or the chat form's "You are Ana Lee, ..."."""
    if "prompt" in call:  # the last line: "Ana Lee:" or, with the plan's first words, "Ana Lee: Yes,"
        last = (call["prompt"] or "").rstrip().rsplit("\n", 1)[-1]
        name, colon, _ = last.partition(":")
        return name if colon and 2 <= len(name) <= 40 else None
    system = (call.get("messages") or [{}])[0].get("content", "")
    return system.removeprefix("You are ").split(",")[0].split(".")[0] if system.startswith("You are ") else None


def varied_reply(messages: list[dict[str, str]]) -> str:
    """Distinct lines (no word 5-gram shared between two of them), so the gate's loop and
    near-duplicate checks let them through."""
    n = next(_counter)
    topics = ["the bread", "the rain", "tomatoes", "the old mill", "the market", "the bells", "the orchard", "jam", "the bus"]
    return f"Honestly, {topics[n % len(topics)]} reminds {_WORDS[n % len(_WORDS)]} of story {n}."


_WORDS = ("apple", "bridge", "candle", "harbour", "lantern", "meadow", "orchard", "pepper", "quilt", "river", "saddle", "tulip",
          "violin", "walnut", "yarn", "zephyr", "bakery", "compass", "dune", "ember", "falcon", "garnet", "hazel", "island",
          "jasmine", "kettle", "ledger", "marble", "nutmeg", "oyster", "pebble", "quartz", "raven", "spruce", "thistle", "umber")


def distinct_reply(messages: list[dict[str, str]]) -> str:
    """Lines that share almost nothing with each other (random words), so a long run of them
    never trips the near-duplicate filter, whatever else the channel holds."""
    import random as _random

    rng = _random.Random(next(_counter))
    words = rng.sample(_WORDS, 7)
    return f"{words[0].capitalize()} {' '.join(words[1:])}."


@dataclass
class FakeLLM:
    reply: Callable[[list[dict[str, str]]], str] = varied_reply
    delay: float = 0.0
    fail_status: int | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _server: Any = None
    _thread: Any = None

    async def _chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.calls.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_status:
            return JSONResponse({"error": "scripted failure"}, status_code=self.fail_status)
        text = self.reply(body.get("messages") or [])
        return JSONResponse({"model": body.get("model"), "created_at": "2026-11-21T00:00:00Z",
                             "message": {"role": "assistant", "content": text}, "done": True, "done_reason": "stop",
                             "prompt_eval_count": 50, "eval_count": 12, "total_duration": 1_000_000})

    async def _generate(self, request: Request) -> JSONResponse:
        """Raw completion (the transcript prompt form). Recorded with the prompt also as `messages`,
        so a test reads either form's prompt the same way."""
        body = await request.json()
        prompt = body.get("prompt") or ""
        body["messages"] = [{"role": "system", "content": prompt}, {"role": "user", "content": prompt}]
        self.calls.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_status:
            return JSONResponse({"error": "scripted failure"}, status_code=self.fail_status)
        text = self.reply(body["messages"])
        return JSONResponse({"model": body.get("model"), "created_at": "2026-11-21T00:00:00Z", "response": text, "done": True,
                             "done_reason": "stop", "prompt_eval_count": 50, "eval_count": 12, "total_duration": 1_000_000})

    async def _openai(self, request: Request) -> JSONResponse:
        """The OpenAI-compatible shape (vLLM, llama.cpp's server, ...)."""
        body = await request.json()
        self.calls.append(body)
        if self.fail_status:
            return JSONResponse({"error": {"message": "scripted failure"}}, status_code=self.fail_status)
        text = self.reply(body.get("messages") or [])
        return JSONResponse({"id": "x", "object": "chat.completion", "model": body.get("model"),
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49}})

    async def _tags(self, request: Request) -> JSONResponse:
        return JSONResponse({"models": [{"name": "smollm2:135m", "model": "smollm2:135m"}]})

    def start(self) -> FakeLLM:
        port = free_port()
        app = Starlette(routes=[Route("/api/chat", self._chat, methods=["POST"]), Route("/api/generate", self._generate, methods=["POST"]),
                                Route("/api/tags", self._tags),
                                Route("/v1/chat/completions", self._openai, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                                     loop="asyncio"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake LLM did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
