"""Fuzzed gateway frames: whatever a client sends, the server answers with a defined close code
(or keeps the connection), never an internal error, and stays healthy for everyone else."""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from .helpers import RunningServer, World

ALLOWED_CLOSES = {1000, 4001, 4002, 4003, 4004, 4005, 4007, 4008, 4009, 4010, 4012, 4013}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
frames = st.one_of(
    st.builds(lambda op, d: json.dumps({"op": op, "d": d}), st.integers(min_value=-3, max_value=14), json_values),
    st.builds(lambda d: json.dumps({"op": 2, "d": d}), st.dictionaries(st.sampled_from(["token", "intents", "shard", "presence",
                                                                                          "properties", "compress"]), json_values)),
    st.builds(lambda d: json.dumps({"op": 6, "d": d}), st.dictionaries(st.sampled_from(["token", "session_id", "seq"]), json_values)),
    json_values.map(json.dumps),
    st.text(max_size=300),
    st.binary(max_size=300),
    st.just("x" * 5000),
)


def _exchange(url: str, sequence: list[str | bytes]) -> int | None:
    """Sends the frames after HELLO; returns the close code (None: still open after them)."""
    with connect(url, open_timeout=10, close_timeout=2) as ws:
        json.loads(ws.recv(timeout=10))  # HELLO
        try:
            for frame in sequence:
                ws.send(frame)
            while True:
                ws.recv(timeout=0.3)
        except TimeoutError:
            return None
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else -1


@seed(20261121)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sequence=st.lists(frames, min_size=1, max_size=4))
def test_fuzzed_frames_get_defined_answers(server: RunningServer, sequence: list[str | bytes]) -> None:
    url = server.url.replace("http://", "ws://") + "/gateway?v=10&encoding=json"
    code = _exchange(url, sequence)
    assert code is None or code in ALLOWED_CLOSES, (code, sequence)


def test_server_healthy_after_fuzzing(server: RunningServer, world: World) -> None:
    url = server.url.replace("http://", "ws://") + "/gateway?v=10&encoding=json"
    with connect(url) as ws:
        json.loads(ws.recv(timeout=10))
        ws.send(json.dumps({"op": 2, "d": {"token": world.bot.token, "intents": 1}}))
        ready = json.loads(ws.recv(timeout=10))
        assert ready["t"] == "READY"
    assert httpx.get(f"{server.url}/health").status_code == 200
