"""The brain: fallback chain with circuit breakers (real `ollama` client, scripted servers),
routing files, reply cleaning, near-duplicate rejection, and mood dynamics."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from townsquare.agents.brain.backends import GenOptions
from townsquare.agents.brain.chain import FallbackChain, ReplyCache
from townsquare.agents.brain.routing import BackendSpec, Routes, Routing, load_routing
from townsquare.agents.mind.clock import FakeClock
from townsquare.agents.mind.mood import Mood, Stimulus
from townsquare.agents.society.persona import Traits
from townsquare.platform.actions.context import Platform

from .fakellm import FakeLLM
from .helpers import free_port, name


def _routing(primary: str, secondary: str, threshold: int = 2, recovery: float = 30.0) -> Routing:
    return Routing.model_validate({
        "backends": {"primary": {"host": primary, "timeout_seconds": 5}, "secondary": {"host": secondary, "timeout_seconds": 5}},
        "routes": {"default": ["primary", "secondary"], "tasks": {"revive": ["secondary"]}},
        "breaker": {"failure_threshold": threshold, "recovery_seconds": recovery},
    })


def _accept(text: str) -> str | None:
    return text.strip() or None


MESSAGES = [{"role": "system", "content": "You are Ana."}, {"role": "user", "content": "hello"}]


async def test_fallback_chain_breakers_cache_and_silence(platform: Platform) -> None:
    up = FakeLLM(reply=lambda m: "from the secondary").start()
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    clock, calls = FakeClock(), []
    chain = FallbackChain(_routing(down, up.url), clock, cache=ReplyCache(platform.redis, f"test:{name()}:"), record=calls.append)
    try:
        think = dict(agent_id=7, guild_id=1, agent_name="Ana", task="reply", messages=MESSAGES, options=GenOptions(),
                     accept=_accept, cache_key="hello")
        first = await chain.think(**think)
        assert (first.text, first.backend, first.step, first.source) == ("from the secondary", "secondary", 1, "llm")
        assert [(c["backend"], c["outcome"]) for c in calls] == [("primary", "error"), ("secondary", "ok")]
        await chain.think(**think)
        assert chain.breakers["primary"].state == "open"  # two failures in a row
        calls.clear()
        await chain.think(**think)
        assert [c["backend"] for c in calls] == ["secondary"]  # the open breaker is skipped, not called
        # everything down: the cached reply to the same line, recorded as such
        up.fail_status = 503
        cached = await chain.think(**think)
        assert (cached.text, cached.source) == ("from the secondary", "cache")
        assert calls[-1]["outcome"] == "cached" and calls[-2]["outcome"] == "error"
        # nothing cached for a new line: silence, and with both breakers open the agent is "resting"
        silent = await chain.think(**{**think, "cache_key": "something else"})
        assert silent.text is None and silent.unavailable and not silent.reached
        # recovery: after the breaker's period, one trial call goes to the primary again
        clock.advance(31)
        assert chain.breakers["primary"].state == "half_open"
        calls.clear()
        await chain.think(**think)
        assert calls[0]["backend"] == "primary"
        # a per-task route (once the secondary's breaker lets a trial through again)
        up.fail_status = None
        clock.advance(31)
        calls.clear()
        revived = await chain.think(**{**think, "task": "revive"})
        assert revived.backend == "secondary" and [c["backend"] for c in calls] == ["secondary"]
    finally:
        await chain.close()
        up.stop()


async def test_one_failure_is_a_failed_turn_not_an_outage() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    routing = Routing.model_validate({"backends": {"only": {"host": down}}, "routes": {"default": ["only"]},
                                      "breaker": {"failure_threshold": 3}})
    chain = FallbackChain(routing, FakeClock())
    try:
        outcomes = []
        for _ in range(3):
            t = await chain.think(agent_id=1, guild_id=1, agent_name="Ana", task="reply", messages=MESSAGES,
                                  options=GenOptions(), accept=_accept)
            outcomes.append((t.reached, t.unavailable))
        assert outcomes == [(False, False), (False, False), (False, True)]  # resting once the breaker opens
    finally:
        await chain.close()


async def test_an_unusable_reply_moves_on_without_tripping_the_breaker(platform: Platform) -> None:
    garbage = FakeLLM(reply=lambda m: "   ").start()
    good = FakeLLM(reply=lambda m: "a proper answer").start()
    calls: list[dict[str, Any]] = []
    chain = FallbackChain(_routing(garbage.url, good.url), FakeClock(), record=calls.append)
    try:
        for _ in range(3):
            thought = await chain.think(agent_id=1, guild_id=1, agent_name="Ana", task="reply", messages=MESSAGES,
                                        options=GenOptions(), accept=_accept)
            assert thought.text == "a proper answer" and thought.step == 1
        assert chain.breakers["primary"].state == "closed"
        assert [c["outcome"] for c in calls[:2]] == ["rejected", "ok"]
        assert garbage.calls[0]["options"]["num_predict"] == 60  # max tokens reach the model
    finally:
        await chain.close()
        garbage.stop()
        good.stop()


async def test_openai_compatible_backend() -> None:
    server = FakeLLM(reply=lambda m: "via the openai shape").start()
    routing = Routing.model_validate({"backends": {"vllm": {"kind": "openai", "host": f"{server.url}/v1", "model": "qwen"}},
                                      "routes": {"default": ["vllm"]}})
    calls: list[dict[str, Any]] = []
    chain = FallbackChain(routing, FakeClock(), record=calls.append)
    try:
        thought = await chain.think(agent_id=1, guild_id=1, agent_name="Ana", task="reply", messages=MESSAGES,
                                    options=GenOptions(max_tokens=33, stop=("\nBob:",)), accept=_accept)
        assert thought.text == "via the openai shape"
        assert calls[0]["model"] == "qwen" and (calls[0]["prompt_tokens"], calls[0]["completion_tokens"]) == (40, 9)
        assert server.calls[0]["max_tokens"] == 33 and server.calls[0]["stop"] == ["\nBob:"]
        server.fail_status = 500
        failed = await chain.think(agent_id=1, guild_id=1, agent_name="Ana", task="reply", messages=MESSAGES,
                                   options=GenOptions(), accept=_accept)
        assert not failed.reached and calls[-1]["outcome"] == "error"
    finally:
        await chain.close()
        server.stop()


def test_routing_files(tmp_path: Any) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("backends:\n  a: {host: 'http://x:1'}\n  b: {kind: openai, host: 'http://y:2/v1', model: m}\n"
                    "routes:\n  default: [a]\n  agents: {Ana: [b, a]}\n  tasks: {revive: [b]}\n")
    routing = load_routing(path, "http://unused")
    assert routing.chain(agent="Ana", task="revive") == ["b", "a"]
    assert routing.chain(agent="Bob", task="revive") == ["b"]
    assert routing.chain(agent="Bob", task="reply") == ["a"]
    assert load_routing(None, "http://h:1").backends["local"].host == "http://h:1"
    with pytest.raises(ValidationError):
        Routing(backends={"a": BackendSpec(host="h")}, routes=Routes(default=["nope"]))


def test_mood_moves_with_events_and_relaxes_to_the_traits_baseline() -> None:
    calm = Traits(neuroticism=0.1, agreeableness=0.8, extraversion=0.5)
    touchy = Traits(neuroticism=0.9, agreeableness=0.3, extraversion=0.5)
    base = Mood.baseline(calm)
    praised = base.felt(Stimulus.MENTIONED, calm, sentiment=0.9)
    assert praised.valence > base.valence and praised.arousal > base.arousal
    insulted_calm = Mood.baseline(calm).felt(Stimulus.MENTIONED, calm, sentiment=-0.9)
    insulted_touchy = Mood.baseline(touchy).felt(Stimulus.MENTIONED, touchy, sentiment=-0.9)
    assert Mood.baseline(touchy).valence - insulted_touchy.valence > Mood.baseline(calm).valence - insulted_calm.valence
    tired = base
    for _ in range(30):
        tired = tired.felt(Stimulus.SPOKE, calm)
    assert tired.label() == "tired" and tired.talkativeness(calm) < base.talkativeness(calm)
    rested = tired.relaxed(calm, 6 * 3600)
    assert abs(rested.energy - 1.0) < 0.1 and abs(rested.valence - base.valence) < 0.2
    # bounded whatever happens
    wild = base
    for _ in range(500):
        wild = wild.felt(Stimulus.MENTIONED, touchy, sentiment=1.0, intensity=5)
    assert -1 <= wild.valence <= 1 and 0 <= wild.arousal <= 1
