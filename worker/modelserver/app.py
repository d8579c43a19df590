"""Ollama's HTTP API over llama.cpp, as the official `ollama` client (0.6.x) expects it.

Routes: `GET /`, `GET /api/version`, `GET /api/tags`, `GET /api/ps`, `POST /api/show`,
`POST /api/chat`, `POST /api/generate`. Chat and generate stream NDJSON unless `"stream": false`
(Ollama's default is to stream). Errors are `{"error": "..."}` with Ollama's status codes:
400 for bad input, 404 for an unknown model, 413 for an oversized body, 503 when the queue is full.

Locking rule: llama.cpp runs one request at a time, so every call that touches a model runs on
`Engine`'s single worker thread; requests queue in front of it (at most `max_queue`), and the
event loop only shuttles chunks, so it stays responsive while a reply is generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from .models import MAX_PREDICT, Finished, LoadedModel, ModelEntry, ModelRegistry, SamplingOptions

log = logging.getLogger("townsquare.modelserver")

OLLAMA_VERSION = "0.12.0"  # the Ollama API level these routes follow
MAX_BODY = 1 << 20
EVICT_INTERVAL = 10.0


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---- request shapes (unknown fields are ignored, as Ollama does) ----

class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class OptionsIn(_In):
    num_predict: int | None = None
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0, le=1)
    typical_p: float | None = Field(None, ge=0, le=1)
    repeat_penalty: float | None = Field(None, ge=0)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    stop: list[str] | str | None = None


class MessageIn(_In):
    role: str = Field(min_length=1, max_length=64)
    content: str | None = None
    images: list[Any] | None = None


class _GenerateBase(_In):
    model: str = Field(min_length=1, max_length=512)
    stream: bool = True
    options: OptionsIn | None = None
    keep_alive: float | str | None = None
    format: Literal["", "json"] | dict[str, Any] | None = None
    think: bool | str | None = None


class ChatIn(_GenerateBase):
    messages: list[MessageIn] = Field(default_factory=list)
    tools: list[Any] | None = None


class GenerateIn(_GenerateBase):
    prompt: str | None = None
    system: str | None = None
    suffix: str | None = None
    raw: bool | None = None
    images: list[Any] | None = None


class ShowIn(_In):
    model: str | None = None
    name: str | None = None  # the older spelling


# ---- helpers ----

def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_keep_alive(value: float | str | None) -> float | None:
    """Seconds (negative = forever) from a number of seconds or a Go duration ("5m", "1h30m")."""
    if value is None or isinstance(value, (int, float)):
        return None if value is None else float(value)
    text = value.strip()
    with contextlib.suppress(ValueError):
        return float(text)
    sign, body = (-1.0, text[1:]) if text.startswith("-") else (1.0, text)
    if body and _DURATION.sub("", body) == "":
        return sign * sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(body))
    raise ApiError(400, f"invalid keep_alive duration: {value!r}")


def sampling_options(opts: OptionsIn | None) -> SamplingOptions:
    out = SamplingOptions()
    if opts is None:
        return out
    for name in ("temperature", "top_p", "top_k", "min_p", "typical_p", "repeat_penalty", "presence_penalty", "frequency_penalty"):
        if (value := getattr(opts, name)) is not None:
            setattr(out, name, value)
    if opts.num_predict is not None and opts.num_predict > 0:  # -1 / -2 mean "until done": our cap
        out.num_predict = min(opts.num_predict, MAX_PREDICT)
    if opts.seed is not None and opts.seed >= 0:  # a negative seed asks for a random one
        out.seed = opts.seed & 0xFFFFFFFF
    out.stop = [opts.stop] if isinstance(opts.stop, str) else list(opts.stop or [])
    return out


def grammar_for(fmt: str | dict[str, Any] | None) -> Any:
    """`format: "json"` or a JSON schema becomes a llama.cpp grammar that constrains sampling."""
    if not fmt:
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar, json_schema_to_gbnf

    if fmt == "json":
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    try:
        return LlamaGrammar.from_string(json_schema_to_gbnf(json.dumps(fmt)), verbose=False)
    except Exception as exc:  # the converter raises assorted errors on schemas it cannot express
        raise ApiError(400, f"invalid format schema: {exc}") from None


async def read_body(request: Request, shape: type[_In]) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, "request body too large")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise ApiError(413, "request body too large")
    if not data.strip():
        raise ApiError(400, "missing request body")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"invalid JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "request body must be a JSON object")
    try:
        return shape.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(400, "model is required" if first["loc"] == ("model",) and first["type"] == "missing"
                       else f"{where}: {first['msg']}") from None
    except RecursionError:
        raise ApiError(400, "request body is nested too deeply") from None


# ---- the engine: one model thread, a bounded queue in front of it ----

_END = object()


class Engine:
    def __init__(self, registry: ModelRegistry, max_queue: int = 64) -> None:
        self.registry = registry
        self.max_queue = max_queue
        self.pending = 0  # submitted jobs not finished yet (running one included); loop thread only
        self.closing = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
        self._cancels: set[threading.Event] = set()

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a short model-thread task (unload, eviction) in turn with generations."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def stream(self, work: Callable[[Callable[[Any], None], threading.Event], None]) -> AsyncGenerator[Any, None]:
        """Run `work(emit, cancel)` on the model thread and yield what it emits. Leaving the
        iteration early (client gone) sets `cancel`; the job is never torn off its thread, so a
        second job can never touch llama.cpp while the first still runs."""
        if self.closing:
            raise ApiError(503, "the model server is shutting down")
        if self.pending >= self.max_queue:
            raise ApiError(503, "server busy, please try again later (too many queued requests)")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody listens any more
                cancel.set()

        def run() -> None:
            try:
                if cancel.is_set():  # client gone or server stopping while queued: costs nothing
                    raise ApiError(503, "the model server is shutting down")
                work(emit, cancel)
            except BaseException as exc:  # noqa: BLE001 - handed to the request's coroutine
                emit(exc)
            finally:
                emit(_END)

        self.pending += 1
        self._cancels.add(cancel)

        def finished(_: Any) -> None:
            self.pending -= 1
            self._cancels.discard(cancel)

        loop.run_in_executor(self._executor, run).add_done_callback(finished)
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()

    def cancel_all(self) -> None:
        """On a stop signal: the running generation ends at its next token and queued ones never
        start; their clients get a 503 (or an error line) instead of waiting out the grace period."""
        self.closing = True
        for cancel in list(self._cancels):
            cancel.set()

    def shutdown(self) -> None:
        """After `cancel_all` (on the loop): wait for the model thread, then free the models.
        Blocking: run it in a thread."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.registry.unload_all()  # the model thread is gone: safe from here


# ---- generation jobs (run on the model thread) ----

def _generation_job(registry: ModelRegistry, entry: ModelEntry, prompt: Callable[[LoadedModel, int], list[int]] | None,
                    opts: SamplingOptions, grammar: Any, keep_alive: float | None,
                    started: float) -> Callable[[Callable[[Any], None], threading.Event], None]:
    """Load (if needed), render the prompt, stream the reply, then emit one stats dict.
    With `prompt` None the request only loads (or, with keep_alive 0, unloads) the model."""

    def work(emit: Callable[[Any], None], cancel: threading.Event) -> None:
        model, load_seconds = registry.acquire(entry, keep_alive)
        stats: dict[str, Any] = {"load_duration": int(load_seconds * 1e9)}
        if prompt is None:
            stats["done_reason"] = "load"
        else:
            try:
                tokens = prompt(model, opts.num_predict)
            except Exception as exc:  # the GGUF's Jinja template rejects this conversation
                raise ApiError(400, f"cannot apply the model's chat template: {exc}") from None
            for item in model.stream(tokens, opts, cancel, grammar):
                if isinstance(item, Finished):
                    stats |= {"done_reason": item.done_reason, "prompt_eval_count": item.prompt_eval_count,
                              "prompt_eval_duration": item.prompt_eval_duration, "eval_count": item.eval_count,
                              "eval_duration": item.eval_duration}
                    if item.prompt_eval_cached_count:  # Ollama omits it when nothing came from the cache
                        stats["prompt_eval_cached_count"] = item.prompt_eval_cached_count
                else:
                    emit(item)
            if cancel.is_set():  # only a listening client, if any, is the one of a stopping server
                raise ApiError(503, "the model server is shutting down")
        if keep_alive is not None and keep_alive == 0:
            registry.unload(entry.name)
            if prompt is None:
                stats["done_reason"] = "unload"
        else:
            registry.touch(model, keep_alive)  # the keep-alive runs from the end of the request
        stats["total_duration"] = int((time.perf_counter() - started) * 1e9)
        emit(stats)

    return work


def _reject_unsupported(req: ChatIn | GenerateIn) -> None:
    if req.think:
        raise ApiError(400, f'"{req.model}" does not support thinking')
    if isinstance(req, ChatIn) and req.tools:
        raise ApiError(400, f'"{req.model}" does not support tools')
    images = req.images if isinstance(req, GenerateIn) else [i for m in req.messages for i in (m.images or [])]
    if images:
        raise ApiError(400, f'"{req.model}" does not support images')
    if isinstance(req, GenerateIn) and req.suffix:
        raise ApiError(400, f'"{req.model}" does not support insert')


async def _respond(request: Request, engine: Engine, req: ChatIn | GenerateIn, entry: ModelEntry,
                   prompt: Callable[[LoadedModel, int], list[int]] | None, started: float) -> Response:
    opts = sampling_options(req.options)
    keep_alive = parse_keep_alive(req.keep_alive)
    grammar = grammar_for(req.format)
    chat = isinstance(req, ChatIn)

    def piece(text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"message": {"role": "assistant", "content": text}} if chat else {"response": text}
        return {"model": req.model, "created_at": _now(), **body, "done": False}

    def final(text: str, stats: dict[str, Any]) -> dict[str, Any]:
        log.info("generated", extra={"model": entry.name, "route": "chat" if chat else "generate", **stats})
        return {**piece(text), "done": True, **stats}

    items = engine.stream(_generation_job(engine.registry, entry, prompt, opts, grammar, keep_alive, started))
    # Wait for the first piece before answering: a load or template error still gets its status code.
    first = await items.__anext__()
    if not req.stream:
        async def collect() -> Response:
            texts: list[str] = []
            item = first
            try:
                while isinstance(item, str):
                    texts.append(item)
                    item = await items.__anext__()
            finally:
                await items.aclose()  # sets the job's cancel flag if it is still generating
            return JSONResponse(final("".join(texts), item))

        # a client that gave up (its timeout) must not keep the one model thread busy for nothing
        collecting = asyncio.ensure_future(collect())
        while not collecting.done():
            await asyncio.wait({collecting}, timeout=0.25)
            if not collecting.done() and await request.is_disconnected():
                collecting.cancel()
                await asyncio.gather(collecting, return_exceptions=True)
                log.info("client gone: generation cancelled", extra={"model": entry.name})
                return Response(status_code=499)
        return collecting.result()

    async def lines() -> AsyncIterator[bytes]:
        item = first
        try:
            while True:
                if isinstance(item, str):
                    yield (json.dumps(piece(item), ensure_ascii=False) + "\n").encode()
                else:
                    yield (json.dumps(final("", item)) + "\n").encode()
                    return
                item = await items.__anext__()
        except ApiError as exc:  # after the 200 was sent, Ollama reports errors in-stream
            yield (json.dumps({"error": exc.message}) + "\n").encode()
        except Exception as exc:
            log.exception("generation failed", extra={"model": entry.name})
            yield (json.dumps({"error": f"generation failed: {type(exc).__name__}"}) + "\n").encode()
        finally:
            await items.aclose()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


# ---- the app ----

def create_model_app(registry: ModelRegistry, *, max_queue: int = 64) -> Starlette:
    engine = Engine(registry, max_queue)

    def find(name: str) -> ModelEntry:
        entry = registry.resolve(name)
        if entry is None:
            raise ApiError(404, f'model "{name}" not found, try pulling it first')
        return entry

    async def root(request: Request) -> Response:
        return PlainTextResponse("Ollama is running")

    async def version(request: Request) -> Response:
        return JSONResponse({"version": OLLAMA_VERSION})

    async def tags(request: Request) -> Response:
        return JSONResponse({"models": [
            {"name": e.name, "model": e.name, "modified_at": _iso(e.modified_at), "size": e.size, "digest": e.digest,
             "details": e.details()} for e in registry.list_models()]})

    async def ps(request: Request) -> Response:
        now = time.monotonic()
        models = []
        for m in registry.loaded():
            expires = time.time() + (m.expires_at - now) if m.expires_at is not None else time.time() + 100 * 365 * 86400
            models.append({"name": m.entry.name, "model": m.entry.name, "size": m.entry.size, "digest": m.entry.digest,
                           "details": m.entry.details(), "expires_at": _iso(expires), "size_vram": 0, "context_length": m.n_ctx,
                           "prefix_cache": dataclasses.asdict(m.prefix_cache.stats)})  # ours: Ollama clients ignore it
        return JSONResponse({"models": models})

    async def show(request: Request) -> Response:
        req = await read_body(request, ShowIn)
        if not (req.model or req.name):
            raise ApiError(400, "model is required")
        entry = find(req.model or req.name)
        try:
            meta = await asyncio.to_thread(registry.metadata, entry)
        except Exception as exc:  # a truncated or foreign file in the models folder
            log.warning("unreadable model file", extra={"model": entry.name, "error": str(exc)})
            raise ApiError(500, f"cannot read model file of {entry.name}") from None
        template = meta.get("tokenizer.chat_template") or ""
        details = entry.details()
        if meta.get("general.architecture"):
            details |= {"family": meta["general.architecture"], "families": [meta["general.architecture"]]}
        if meta.get("general.size_label") and not details["parameter_size"]:
            details["parameter_size"] = meta["general.size_label"]
        info = {k: v for k, v in meta.items() if k != "tokenizer.chat_template"}
        return JSONResponse({
            "license": meta.get("general.license") or "",
            "modelfile": f"# Modelfile generated by Townsquare\nFROM {entry.path}\n",
            "parameters": "",
            "template": template,
            "details": details,
            "model_info": info,
            "capabilities": ["completion"],
            "modified_at": _iso(entry.modified_at),
        })

    async def chat(request: Request) -> Response:
        started = time.perf_counter()
        req: ChatIn = await read_body(request, ChatIn)
        entry = find(req.model)
        _reject_unsupported(req)
        messages = [{"role": m.role, "content": m.content or ""} for m in req.messages]
        prompt = (lambda model, n: model.chat_tokens(messages, n)) if messages else None
        return await _respond(request, engine, req, entry, prompt, started)

    async def generate(request: Request) -> Response:
        started = time.perf_counter()
        req: GenerateIn = await read_body(request, GenerateIn)
        entry = find(req.model)
        _reject_unsupported(req)
        prompt: Callable[[LoadedModel, int], list[int]] | None = None
        if req.prompt and req.raw:
            text = req.prompt
            prompt = lambda model, n: model.raw_tokens(text, n)  # noqa: E731
        elif req.prompt:
            messages = ([{"role": "system", "content": req.system}] if req.system else []) + [{"role": "user", "content": req.prompt}]
            prompt = lambda model, n: model.chat_tokens(messages, n)  # noqa: E731
        return await _respond(request, engine, req, entry, prompt, started)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail))

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("request failed", exc_info=exc)
        return _error(500, "internal error")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def evict() -> None:
            while True:
                await asyncio.sleep(EVICT_INTERVAL)
                for name in await engine.call(registry.evict_expired):
                    log.info("model unloaded (keep-alive expired)", extra={"model": name})

        task = asyncio.create_task(evict())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await task
            engine.cancel_all()
            await asyncio.to_thread(engine.shutdown)

    app = Starlette(
        routes=[
            Route("/", root, methods=["GET", "HEAD"]),
            Route("/api/version", version, methods=["GET"]),
            Route("/api/tags", tags, methods=["GET"]),
            Route("/api/ps", ps, methods=["GET"]),
            Route("/api/show", show, methods=["POST"]),
            Route("/api/chat", chat, methods=["POST"]),
            Route("/api/generate", generate, methods=["POST"]),
        ],
        exception_handlers={ApiError: api_error, HTTPException: http_error, Exception: crash},
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.registry = registry
    return app
