"""LLM backends. The official `ollama` client is the one path to Ollama-API servers (a real
Ollama, or the bundled model behind `townsquare model serve`); OpenAI-compatible endpoints
(vLLM, llama.cpp's server, ...) may be configured as well."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import ollama

from .routing import BackendSpec


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class GenOptions:
    max_tokens: int = 60
    temperature: float = 0.8
    top_p: float = 0.9
    stop: tuple[str, ...] = ()
    seed: int | None = None
    repeat_penalty: float = 1.15


class BackendError(Exception):
    """The backend failed (unreachable, timeout, error status): counts against its breaker."""


class Backend(Protocol):
    name: str
    model: str

    async def chat(self, messages: list[dict[str, str]], options: GenOptions) -> Completion: ...

    async def complete(self, prompt: str, options: GenOptions) -> Completion:
        """Raw text completion (no chat template): the transcript prompt form."""
        ...

    async def close(self) -> None: ...


class OllamaBackend:
    def __init__(self, name: str, spec: BackendSpec) -> None:
        self.name, self.model = name, spec.model
        self._client = ollama.AsyncClient(host=spec.host, timeout=spec.timeout_seconds)

    @staticmethod
    def _options(options: GenOptions) -> dict[str, Any]:
        opts: dict[str, Any] = {"num_predict": options.max_tokens, "temperature": options.temperature, "top_p": options.top_p,
                                "stop": list(options.stop), "repeat_penalty": options.repeat_penalty}
        if options.seed is not None:
            opts["seed"] = options.seed
        return opts

    async def chat(self, messages: list[dict[str, str]], options: GenOptions) -> Completion:
        try:
            response = await self._client.chat(model=self.model, messages=messages, options=self._options(options), stream=False)
        except (ollama.ResponseError, httpx.HTTPError, ConnectionError, OSError) as exc:
            raise BackendError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        return Completion(response.message.content or "", response.prompt_eval_count or 0, response.eval_count or 0)

    async def complete(self, prompt: str, options: GenOptions) -> Completion:
        try:
            response = await self._client.generate(model=self.model, prompt=prompt, raw=True, options=self._options(options),
                                                   stream=False)
        except (ollama.ResponseError, httpx.HTTPError, ConnectionError, OSError) as exc:
            raise BackendError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        return Completion(response.response or "", response.prompt_eval_count or 0, response.eval_count or 0)

    async def close(self) -> None:
        await self._client._client.aclose()


class OpenAIBackend:
    def __init__(self, name: str, spec: BackendSpec) -> None:
        self.name, self.model = name, spec.model
        key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.AsyncClient(base_url=spec.host.rstrip("/"), timeout=spec.timeout_seconds, headers=headers)

    async def _post(self, path: str, body: dict[str, Any], options: GenOptions, text_of: Any) -> Completion:
        body |= {"model": self.model, "max_tokens": options.max_tokens, "temperature": options.temperature,
                 "top_p": options.top_p, "stop": list(options.stop)[:4]}
        if options.seed is not None:
            body["seed"] = options.seed
        try:
            r = await self._client.post(path, json=body)
            r.raise_for_status()
            data = r.json()
            text = text_of(data["choices"][0]) or ""
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise BackendError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        usage = data.get("usage") or {}
        return Completion(text, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))

    async def chat(self, messages: list[dict[str, str]], options: GenOptions) -> Completion:
        return await self._post("/chat/completions", {"messages": messages}, options, lambda choice: choice["message"]["content"])

    async def complete(self, prompt: str, options: GenOptions) -> Completion:
        return await self._post("/completions", {"prompt": prompt}, options, lambda choice: choice["text"])

    async def close(self) -> None:
        await self._client.aclose()


def make_backend(name: str, spec: BackendSpec) -> Backend:
    return OllamaBackend(name, spec) if spec.kind == "ollama" else OpenAIBackend(name, spec)
