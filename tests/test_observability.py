"""Observability on a real server: /ready's checks (a closed port, a hung service, a configured
LLM), Prometheus /metrics (request histograms by route template, gateway sessions, the event
stream and the agents' lag, rq depth, the workers' counters), JSON logs with request ids, and
the admin System page."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis as SyncRedis
from rq import Queue

from townsquare.platform.actions.context import Platform
from townsquare.platform.core.config import Settings
from townsquare.platform.core.logging import JsonFormatter, bind_log_context, reset_log_context
from townsquare.platform.core.metrics import count_records

from .fakellm import FakeLLM
from .gwclient import GatewayClient
from .helpers import RunningServer, World, assert_discord_error, free_port, person, start_server, wait_for

CORE = ("postgres", "redis", "object_store")


def _metrics(text: str) -> dict[str, list[Any]]:
    """name -> samples, through prometheus_client's own parser (the text must be valid exposition)."""
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _value(samples: list[Any], name: str, **labels: str) -> float | None:
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


@contextmanager
def captured(logger_name: str) -> Iterator[io.StringIO]:
    """The JSON lines a logger writes at INFO while the block runs (the server runs in a thread of this process)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung service."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


# --- /ready ----------------------------------------------------------------------------------


async def test_ready_reports_every_check(client: httpx.AsyncClient) -> None:
    r = await client.get("/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["checks"]) == {*CORE, "llm", "chroma"}
    for name in CORE:
        check = body["checks"][name]
        assert check["status"] == "ok" and check["required"] is True, (name, check)
        assert isinstance(check["latency_ms"], float) and check["latency_ms"] >= 0
    assert body["checks"]["chroma"]["status"] == "ok" and body["checks"]["chroma"]["required"] is True  # CHROMA_URL is set
    llm = body["checks"]["llm"]  # no OLLAMA_HOST: the bundled model's port, reported but not required
    assert llm["required"] is False and llm["status"] in ("ok", "error", "timeout")
    assert body["status"] == ("ok" if llm["status"] == "ok" else "degraded")
    assert (await client.get("/health")).json() == {"status": "ok"}


def test_ready_fails_when_chroma_is_down(settings: Settings, services) -> None:  # type: ignore[no-untyped-def]
    running = start_server(settings, services.database_url, services.redis_url, chroma_url=f"http://127.0.0.1:{free_port()}",
                           ready_timeout_seconds=10.0)  # generous: the healthy checks must answer in time on a loaded machine
    try:
        r = httpx.get(f"{running.url}/ready", timeout=60)
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["chroma"]["status"] == "error" and body["checks"]["chroma"]["error"] == "ConnectError"
        assert all(body["checks"][name]["status"] == "ok" for name in CORE), body
    finally:
        running.stop()


def test_a_hung_service_is_a_timeout_not_a_hang(settings: Settings, services) -> None:  # type: ignore[no-untyped-def]
    # One budget for every check: generous, so that the healthy ones answer in time on a loaded
    # machine; the hung ones still end as a timeout once it is spent (10 s of this test's time).
    with silent_port() as port:
        running = start_server(settings, services.database_url, services.redis_url, chroma_url=f"http://127.0.0.1:{port}",
                               ollama_host=f"http://127.0.0.1:{port}", ready_timeout_seconds=10.0)
        try:
            r = httpx.get(f"{running.url}/ready", timeout=60)
            assert r.status_code == 503, r.text
            checks = r.json()["checks"]
            assert checks["chroma"]["status"] == "timeout"
            assert checks["llm"]["status"] in ("timeout", "error") and checks["llm"]["required"] is True
            assert all(checks[name]["status"] == "ok" for name in CORE)
        finally:
            running.stop()


def test_a_configured_llm_is_required(settings: Settings, services) -> None:  # type: ignore[no-untyped-def]
    llm = FakeLLM().start()
    running = start_server(settings, services.database_url, services.redis_url, ollama_host=llm.url)
    try:
        r = httpx.get(f"{running.url}/ready")
        assert r.status_code == 200, r.text
        assert r.json()["checks"]["llm"] | {"latency_ms": 0} == {"status": "ok", "required": True, "backends": {"local": "ok"},
                                                                  "latency_ms": 0}
        llm.stop()
        r = httpx.get(f"{running.url}/ready")
        assert r.status_code == 503, r.text
        llm_check = r.json()["checks"]["llm"]
        assert llm_check["status"] == "error" and llm_check["backends"] == {"local": "error"}
    finally:
        running.stop()


# --- /metrics --------------------------------------------------------------------------------


async def test_metrics_request_histogram_by_route_template(world: World, client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await client.get(f"/api/v10/channels/{world.general_id}", headers=world.alice.headers)).status_code == 200
    assert (await client.get("/no/such/path/12345")).status_code == 404
    assert (await client.get("/static/css/base.css")).status_code == 200

    async def observed() -> list[Any] | None:
        # a request is observed once its response has gone out: the client may be quicker
        r = await client.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        samples = _metrics(r.text)["townsquare_http_request_duration_seconds"]
        done = _value(samples, "townsquare_http_request_duration_seconds_count", route="/api/v10/channels/{channel_id}",
                      status="2xx", method="GET") or 0
        return samples if done >= 3 and _value(samples, "townsquare_http_request_duration_seconds_count", route="unmatched") else None

    samples = await wait_for(observed)
    count = _value(samples, "townsquare_http_request_duration_seconds_count", route="/api/v10/channels/{channel_id}", status="2xx",
                   method="GET")
    routes = {s.labels["route"] for s in samples if "route" in s.labels}
    assert "unmatched" in routes and not any(str(world.general_id) in route or "12345" in route for route in routes)
    assert "/static/{path}" in routes and not any("base.css" in route for route in routes)
    inf = _value(samples, "townsquare_http_request_duration_seconds_bucket", route="/api/v10/channels/{channel_id}", status="2xx",
                 method="GET", le="+Inf")
    assert inf == count


async def test_metrics_gateway_sessions(world: World, server: RunningServer, client: httpx.AsyncClient) -> None:
    async def sessions() -> float:
        value = _value(_metrics((await client.get("/metrics")).text)["townsquare_gateway_sessions"], "townsquare_gateway_sessions")
        assert value is not None
        return value

    before = await sessions()
    gw = GatewayClient(server.url)
    try:
        await gw.identify(world.bob.token)
        assert await sessions() == before + 1
    finally:
        await gw.close()
    await wait_for(lambda: _async_equals(sessions, before))


async def _async_equals(fn: Any, expected: float) -> bool:
    return await fn() == expected


async def test_metrics_event_stream_lag_and_queue(world: World, settings: Settings, services, client: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    from townsquare.platform.events.publisher import stream_key
    from townsquare.worker.runtime.run import queue_name
    from townsquare.worker.runtime.worker import GROUP, ensure_group

    await ensure_group(world.platform.redis, stream_key(settings.redis_prefix))  # what a worker does on start

    async def figures() -> dict[str, list[Any]]:
        return _metrics((await client.get("/metrics")).text)

    first = await figures()
    published = _value(first["townsquare_events_published"], "townsquare_events_published_total")
    lag = _value(first["townsquare_stream_consumer_lag"], "townsquare_stream_consumer_lag", group=GROUP)
    assert published is not None and lag is not None
    await world.send(world.alice, "observability says hi")  # no worker reads the group here: the lag grows

    async def grew() -> dict[str, list[Any]] | None:
        now = await figures()
        return now if (_value(now["townsquare_stream_consumer_lag"], "townsquare_stream_consumer_lag", group=GROUP) or 0) > lag else None

    later = await wait_for(grew)
    assert (_value(later["townsquare_events_published"], "townsquare_events_published_total") or 0) > published

    queue = Queue(queue_name(settings), connection=SyncRedis.from_url(services.redis_url))  # where the workers enqueue
    try:
        # the queue is the instance's: jobs an earlier test's worker left queued (no rq worker runs here) count too
        before = _value((await figures())["townsquare_rq_queue_depth"], "townsquare_rq_queue_depth", queue=queue.name, state="queued")
        queue.enqueue("townsquare.worker.jobs.maintenance.prune_records", job_timeout=60)
        depth = _value((await figures())["townsquare_rq_queue_depth"], "townsquare_rq_queue_depth", queue=queue.name, state="queued")
        assert depth == (before or 0) + 1
    finally:
        queue.empty()


async def test_metrics_show_the_workers_counters(settings: Settings, world: World, client: httpx.AsyncClient) -> None:
    """What a worker's flush adds (platform/core/metrics.py) is what any instance's /metrics shows."""
    backend = "obs-" + settings.redis_prefix.split(":")[2]

    def call(outcome: str, latency_ms: int, step: int) -> dict[str, Any]:
        return {"agent_id": None, "guild_id": None, "task": "reply", "backend": backend, "model": "m", "prompt_tokens": 50,
                "completion_tokens": 12, "latency_ms": latency_ms, "outcome": outcome, "fallback_step": step, "error": None}

    turns = [{"agent_id": None, "guild_id": None, "channel_id": None, "trigger": "mention", "event_position": None,
              "outcome": "posted", "message_id": None, "llm_ms": 300, "total_ms": 700}]
    def turn_count(m: dict[str, list[Any]]) -> float:
        return _value(m.get("townsquare_agent_turns", []), "townsquare_agent_turns_total", trigger="mention", outcome="posted") or 0

    before = turn_count(_metrics((await client.get("/metrics")).text))  # other tests' workers count in the same hash
    await count_records(world.platform.redis, settings.redis_prefix, [call("ok", 300, 0), call("ok", 4000, 1)], turns)
    await count_records(world.platform.redis, settings.redis_prefix, [call("timeout", 30_000, 0)], turns)
    m = _metrics((await client.get("/metrics")).text)
    latency = m["townsquare_llm_call_duration_seconds"]
    assert _value(latency, "townsquare_llm_call_duration_seconds_count", backend=backend, outcome="ok") == 2
    assert _value(latency, "townsquare_llm_call_duration_seconds_bucket", backend=backend, outcome="ok", le="0.5") == 1
    assert _value(latency, "townsquare_llm_call_duration_seconds_bucket", backend=backend, outcome="ok", le="5.0") == 2
    assert _value(latency, "townsquare_llm_call_duration_seconds_sum", backend=backend, outcome="ok") == pytest.approx(4.3)
    assert _value(latency, "townsquare_llm_call_duration_seconds_count", backend=backend, outcome="timeout") == 1
    assert _value(m["townsquare_llm_tokens"], "townsquare_llm_tokens_total", backend=backend, kind="prompt") == 150
    assert _value(m["townsquare_llm_tokens"], "townsquare_llm_tokens_total", backend=backend, kind="completion") == 36
    assert _value(m["townsquare_llm_fallbacks"], "townsquare_llm_fallbacks_total", backend=backend) == 1
    assert turn_count(m) == before + 2
    turn_time = m["townsquare_agent_turn_duration_seconds"]
    assert (_value(turn_time, "townsquare_agent_turn_duration_seconds_count", trigger="mention", outcome="posted") or 0) >= 2


async def test_metrics_count_quality_gate_rejections_by_reason(settings: Settings, world: World, client: httpx.AsyncClient) -> None:
    """A rejected LLM call ("gate:<reason>") counts under its reason; unknown reasons under "other"."""
    def call(outcome: str, error: str | None) -> dict[str, Any]:
        return {"agent_id": None, "guild_id": None, "task": "reply", "backend": "obs-gate", "model": "m", "prompt_tokens": 5,
                "completion_tokens": 5, "latency_ms": 100, "outcome": outcome, "fallback_step": 0, "error": error}

    async def counts() -> dict[str, float]:
        family = _metrics((await client.get("/metrics")).text).get("townsquare_gate_rejections", [])
        return {s.labels["reason"]: s.value for s in family if s.name == "townsquare_gate_rejections_total"}

    before = await counts()  # other tests' workers count in the same hash
    await count_records(world.platform.redis, settings.redis_prefix, [
        call("rejected", "gate:wrong_voice"), call("rejected", "gate:wrong_voice"), call("rejected", "gate:loop"),
        call("rejected", "gate:something new"), call("ok", None), call("error", "gate:loop"), call("rejected", "not the gate")], [])
    after = await counts()
    grew = {r: after[r] - before.get(r, 0) for r in after if after[r] != before.get(r, 0)}
    assert grew == {"wrong_voice": 2, "loop": 1, "other": 1}


async def test_metrics_need_a_token_off_loopback(settings: Settings, services, client: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    proxied = {"X-Forwarded-For": "203.0.113.9"}  # through a proxy on this host: not a local caller
    assert_discord_error(await client.get("/metrics", headers=proxied), 403)  # no token configured: loopback only
    running = start_server(settings, services.database_url, services.redis_url, metrics_token="scrape-me")
    try:
        async with httpx.AsyncClient(base_url=running.url) as other:
            assert_discord_error(await other.get("/metrics", headers=proxied), 401)
            assert_discord_error(await other.get("/metrics", headers={**proxied, "Authorization": "Bearer wrong"}), 401)
            r = await other.get("/metrics", headers={**proxied, "Authorization": "Bearer scrape-me"})
            assert r.status_code == 200 and "townsquare_gateway_sessions" in r.text
            assert (await other.get("/metrics")).status_code == 200  # loopback, no proxy: no token needed
    finally:
        running.stop()


# --- logs ------------------------------------------------------------------------------------


async def test_access_line_carries_the_request_id(world: World, client: httpx.AsyncClient) -> None:
    with captured("townsquare.access") as out:
        r = await client.get(f"/api/v10/channels/{world.general_id}?token=hunter2", headers={**world.alice.headers, "X-Request-Id": "obs-req-1"})
        generated = await client.get("/api/v10/users/@me", headers=world.bob.headers)
        # the access line is written once the response has gone out: the client may read it first
        await wait_for(lambda: _has_request_ids(out, "obs-req-1", generated.headers["x-request-id"]))
    assert r.status_code == 200 and r.headers["x-request-id"] == "obs-req-1"
    lines = {line["request_id"]: line for line in _lines(out)}
    line = lines["obs-req-1"]
    assert line["level"] == "info" and line["route"] == "/api/v10/channels/{channel_id}" and line["status"] == 200
    assert line["method"] == "GET" and line["user_id"] == str(world.alice.id) and line["duration_ms"] >= 0
    assert "hunter2" not in out.getvalue() and world.alice.token not in out.getvalue() and str(world.general_id) not in out.getvalue()
    rid = generated.headers["x-request-id"]
    assert rid and lines[rid]["user_id"] == str(world.bob.id)
    # a hostile id (a forged log line) is replaced, not echoed
    r = await client.get("/health", headers={"X-Request-Id": 'forged" level=error'})
    assert r.headers["x-request-id"] != 'forged" level=error' and r.headers["x-request-id"].isalnum()


async def _has_request_ids(out: io.StringIO, *ids: str) -> bool:
    return set(ids) <= {line.get("request_id") for line in _lines(out)}


def test_every_line_inside_a_request_carries_its_id() -> None:
    """The formatter adds the bound context to any record (a route's own warnings included)."""
    formatter = JsonFormatter()
    record = logging.LogRecord("townsquare.test", logging.WARNING, __file__, 1, "something odd", (), None)
    token = bind_log_context(request_id="abc123")
    try:
        inside = json.loads(formatter.format(record))
    finally:
        reset_log_context(token)
    assert inside["request_id"] == "abc123" and inside["msg"] == "something odd"
    assert "request_id" not in json.loads(formatter.format(record))


async def test_gateway_lines_carry_the_session_id(world: World, server: RunningServer) -> None:
    with captured("townsquare.platform.gateway.connection") as out:
        gw = GatewayClient(server.url)
        try:
            await gw.identify(world.bob.token)
        finally:
            await gw.close()
        await wait_for(lambda: _has_line(out, "gateway session ended"))
    started = [line for line in _lines(out) if line["msg"] == "gateway session started"]
    assert started and started[0]["session_id"] == gw.session_id and started[0]["user_id"] == str(world.bob.id)
    ended = [line for line in _lines(out) if line["msg"] == "gateway session ended"]
    assert ended[0]["session_id"] == gw.session_id and world.bob.token not in out.getvalue()


async def _has_line(out: io.StringIO, msg: str) -> bool:
    return any(line["msg"] == msg for line in _lines(out))


# --- the System page -------------------------------------------------------------------------


async def test_system_page_is_for_admins(world: World, client: httpx.AsyncClient) -> None:
    assert_discord_error(await client.get("/api/v10/townsquare/system", headers=world.alice.headers), 403, 50013)
    assert_discord_error(await client.get("/api/v10/townsquare/system"), 401)
    admin = await person(world.platform, is_admin=True)
    r = await client.get("/api/v10/townsquare/system", headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    me = [p for p in body["processes"] if p["this_process"]]
    assert len(me) == 1 and me[0]["role"] == "server" and me[0]["rss_bytes"] > 0 and me[0]["open_fds"] > 0
    assert me[0]["disk_read_bytes"] >= 0 and me[0]["disk_write_bytes"] >= 0  # disk I/O per process
    assert isinstance(me[0]["cpu_percent"], float)
    # the Chroma server the suite started from this process (as `up` does) is one of ours
    assert any(p["role"] == "memory serve" and p["parent_pid"] == me[0]["pid"] for p in body["processes"]), body["processes"]
    assert body["disk"]["total_bytes"] > 0 and body["disk"]["data_bytes"] >= 0 and body["disk"]["complete"] is True
    assert set(body["stream"]) >= {"length", "entries_added", "groups"}
    assert set(body["ready"]["checks"]) == {*CORE, "llm", "chroma"}
    assert isinstance(body["gateway_sessions"], int)


async def test_a_real_worker_turn_shows_in_metrics(platform: Platform, settings: Settings, server: RunningServer,
                                                  client: httpx.AsyncClient) -> None:
    """The worker's own flush feeds the counters: a mention answered through the fake model's
    server counts one posted turn and the call's tokens."""
    from townsquare.worker.runtime.worker import AgentWorker

    from .test_worker import replies_to, society_with_human, worker_settings

    def figures(m: dict[str, list[Any]]) -> tuple[float, float, float]:
        return (_value(m.get("townsquare_agent_turns", []), "townsquare_agent_turns_total", trigger="mention", outcome="posted") or 0,
                _value(m.get("townsquare_llm_tokens", []), "townsquare_llm_tokens_total", backend="local", kind="completion") or 0,
                _value(m.get("townsquare_llm_call_duration_seconds", []), "townsquare_llm_call_duration_seconds_count",
                       backend="local", outcome="ok") or 0)

    async def scrape() -> dict[str, list[Any]]:
        return _metrics((await client.get("/metrics")).text)

    llm = FakeLLM().start()
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    turns0, tokens0, calls0 = figures(await scrape())
    worker = AgentWorker(worker_settings(settings, server, llm.url), platform, name="obs-worker")
    await worker.start()
    try:
        agent = cast[0]
        sent = (await client.post(f"/api/v10/channels/{general}/messages", json={"content": f"<@{agent['id']}> what do you like most about your work?"},
                                  headers=human.headers)).json()
        await wait_for(lambda: replies_to(client, human, general, sent["id"], agent["id"]), timeout=20)

        async def counted() -> bool:
            turns, tokens, calls = figures(await scrape())
            return turns >= turns0 + 1 and tokens >= tokens0 + 12 and calls >= calls0 + 1

        await wait_for(counted, timeout=10)  # the worker flushes its records once a second
    finally:
        await worker.stop()
        llm.stop()
