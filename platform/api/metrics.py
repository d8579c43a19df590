"""Prometheus `/metrics`.

Two kinds of figures:
- this instance's: HTTP request latency (by route *template* and status class, so the label
  set stays bounded whatever paths clients send), gateway sessions, the process itself. Run
  several instances and Prometheus scrapes each (label `instance`).
- the society's, read at scrape time from Redis with a few O(1) commands (no table scans):
  events published (the event stream's `entries-added`), stream length and the agents'
  consumer-group lag (XINFO GROUPS), rq queue depths, and the workers' counters of turns, LLM
  calls, latency, tokens and fallbacks (platform/core/metrics.py). Every instance shows the same.

Access: loopback callers need nothing (a local Prometheus, `curl` on the box); any other
caller, or one whose request came through a proxy (X-Forwarded-For / Forwarded / X-Real-IP:
a proxy on the same host must not open /metrics to the world), needs
`Authorization: Bearer <TOWNSQUARE_METRICS_TOKEN>`; without that setting /metrics is loopback-only.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ...worker.runtime.run import queue_name
from ..core.config import Settings
from ..core.errors import MissingAccess, Unauthorized
from ..core.metrics import BUCKETS, metrics_key, parse_counters
from ..events.publisher import stream_key

log = logging.getLogger(__name__)
router = APIRouter()

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class HttpMetrics:
    """This instance's registry (one per app: several apps may share a process in tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram("townsquare_http_request_duration_seconds", "HTTP request latency by route template and status class",
                                  ["method", "route", "status"], buckets=HTTP_BUCKETS, registry=self.registry)
        ProcessCollector(registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method if method in _METHODS else "other", route, f"{status // 100}xx").observe(seconds)


class _Families:
    """A one-scrape collector over families computed beforehand (collect() must be synchronous)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_metrics_access(request: Request) -> None:
    token = request.app.state.platform.settings.metrics_token
    proxied = any(h in request.headers for h in ("x-forwarded-for", "forwarded", "x-real-ip"))
    if _is_loopback(request.client.host if request.client else None) and not proxied:
        return
    if not token:
        raise MissingAccess("Metrics are served to loopback only (set TOWNSQUARE_METRICS_TOKEN for remote scrapes)")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized()


def _rq_keys(queue: str) -> dict[str, str]:
    """rq's own key names for a queue's list and its started / failed / scheduled registries."""
    from rq import Queue
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    return {"queued": f"{Queue.redis_queue_namespace_prefix}{queue}",
            "started": StartedJobRegistry.key_template.format(queue),
            "failed": FailedJobRegistry.key_template.format(queue),
            "scheduled": ScheduledJobRegistry.key_template.format(queue)}


async def stream_figures(redis: Any, settings: Settings) -> dict[str, Any]:
    """The event stream, its consumer groups and the rq queue, in one pipeline round trip."""
    prefix = settings.redis_prefix
    key = stream_key(prefix)
    queue = queue_name(settings)  # the worker's own naming (a light module: no worker is loaded)
    rq_keys = _rq_keys(queue)
    pipe = redis.pipeline(transaction=False)
    pipe.xinfo_stream(key)
    pipe.xinfo_groups(key)
    for state, k in rq_keys.items():
        pipe.llen(k) if state == "queued" else pipe.zcard(k)
    pipe.hgetall(metrics_key(prefix))
    results = await pipe.execute(raise_on_error=False)
    info, groups, *depths, counters = results
    stream: dict[str, Any] = {"length": 0, "entries_added": 0, "last_id": None, "groups": []}
    if isinstance(info, dict):  # missing until the first event: an error reply, reported as empty
        stream.update(length=info.get("length", 0), entries_added=info.get("entries-added", info.get("length", 0)),
                      last_id=_text(info.get("last-generated-id")))
    if isinstance(groups, list):
        stream["groups"] = [{"name": _text(g.get("name")), "consumers": g.get("consumers", 0), "pending": g.get("pending", 0),
                             "lag": _lag(g, stream["last_id"])} for g in groups]
    queues = {queue: {state: (d if isinstance(d, int) else None) for state, d in zip(rq_keys, depths)}}
    return {"stream": stream, "queues": queues, "counters": parse_counters(counters) if isinstance(counters, dict) else {}}


def _lag(group: dict[str, Any], last_id: str | None) -> int | None:
    """Redis's own count when it has one. It has none in some states (Redis 7.0: a group made at
    `$` until its first read; after deletions inside the stream): then the distance between event
    positions, which are our stream ids (`<position>-1`, positions consecutive)."""
    if group.get("lag") is not None:
        return int(group["lag"])
    delivered = _text(group.get("last-delivered-id"))
    try:
        return max(0, int(str(last_id).split("-")[0]) - int(str(delivered).split("-")[0]))
    except ValueError:
        return None


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _society_families(figures: dict[str, Any]) -> list[Metric]:
    stream, families = figures["stream"], []
    events = CounterMetricFamily("townsquare_events_published", "Events added to the event stream (all instances)")
    events.add_metric([], stream["entries_added"])
    length = GaugeMetricFamily("townsquare_event_stream_length", "Entries kept in the event stream")
    length.add_metric([], stream["length"])
    lag = GaugeMetricFamily("townsquare_stream_consumer_lag", "Events not yet delivered to a consumer group", labels=["group"])
    pending = GaugeMetricFamily("townsquare_stream_consumer_pending", "Events delivered but not yet acknowledged", labels=["group"])
    for g in stream["groups"]:
        if g["lag"] is not None:  # Redis cannot tell after entries were deleted past the group's position
            lag.add_metric([g["name"]], g["lag"])
        pending.add_metric([g["name"]], g["pending"])
    depth = GaugeMetricFamily("townsquare_rq_queue_depth", "Jobs per rq queue and state", labels=["queue", "state"])
    for queue, states in figures["queues"].items():
        for state, n in states.items():
            if n is not None:
                depth.add_metric([queue, state], n)
    families += [events, length, lag, pending, depth]
    counters = figures["counters"]
    families.append(_histogram("townsquare_llm_call_duration_seconds", "LLM call latency by backend and outcome",
                               "llm_call_seconds", ["backend", "outcome"], counters))
    families.append(_histogram("townsquare_agent_turn_duration_seconds", "Agent turn duration by trigger and outcome",
                               "agent_turn_seconds", ["trigger", "outcome"], counters))
    turns = CounterMetricFamily("townsquare_agent_turns", "Agent turns by trigger and outcome", labels=["trigger", "outcome"])
    for labels, entry in counters.get("agent_turn_seconds", {}).items():
        turns.add_metric([v for _, v in labels], sum(entry["buckets"].values()))
    tokens = CounterMetricFamily("townsquare_llm_tokens", "LLM tokens by backend and kind (prompt, completion)", labels=["backend", "kind"])
    for labels, entry in counters.get("llm_tokens", {}).items():
        tokens.add_metric([v for _, v in labels], entry["n"])
    fallbacks = CounterMetricFamily("townsquare_llm_fallbacks", "LLM calls served past the chain's first backend", labels=["backend"])
    for labels, entry in counters.get("llm_fallbacks", {}).items():
        fallbacks.add_metric([v for _, v in labels], entry["n"])
    gate = CounterMetricFamily("townsquare_gate_rejections", "Candidate replies the quality gate rejected, by reason", labels=["reason"])
    for labels, entry in counters.get("gate_rejections", {}).items():
        gate.add_metric([v for _, v in labels], entry["n"])
    return families + [turns, tokens, fallbacks, gate]


def _histogram(name: str, doc: str, metric: str, label_names: list[str], counters: dict[str, Any]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=label_names)
    bounds = [repr(b) for b in BUCKETS[metric]] + ["+Inf"]
    for labels, entry in counters.get(metric, {}).items():
        if [k for k, _ in labels] != label_names:
            continue
        running, buckets = 0.0, []
        for le in bounds:
            running += entry["buckets"].get(le, 0.0)
            buckets.append((le, running))
        family.add_metric([v for _, v in labels], buckets, entry["sum"])
    return family


async def render(request: Request) -> bytes:
    app = request.app
    platform = app.state.platform
    hub = getattr(app.state, "hub", None)
    sessions = GaugeMetricFamily("townsquare_gateway_sessions", "Gateway sessions connected to this instance")
    sessions.add_metric([], len(hub.sessions) if hub is not None else 0)
    up = GaugeMetricFamily("townsquare_metrics_source_up", "Whether the society's figures could be read", labels=["source"])
    families: list[Metric] = [sessions, up]
    try:
        figures = await asyncio.wait_for(stream_figures(platform.redis, platform.settings),
                                         platform.settings.ready_timeout_seconds)
        families += _society_families(figures)
        up.add_metric(["redis"], 1)
    except Exception as exc:  # noqa: BLE001 - a scrape still returns this instance's figures
        log.warning("metrics: society figures unavailable: %s", type(exc).__name__)
        up.add_metric(["redis"], 0)
    return generate_latest(app.state.http_metrics.registry) + generate_latest(_Families(families))  # type: ignore[arg-type]


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    check_metrics_access(request)
    return Response(await render(request), media_type=CONTENT_TYPE_LATEST)
