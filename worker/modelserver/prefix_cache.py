"""Saved KV states of recent prompts, so a prompt that starts like an earlier one (an agent's
persona) skips evaluating that start again although other prompts ran in between.

llama-cpp-python reuses only the prefix shared with the *previous* request; with 25 agents taking
turns that is the chat template's first few tokens. Here each finished request's KV cells (one
sequence, via `llama_state_seq_get_data`: a few MB, ~23 KB a token for SmolLM2-135M, no logits)
are kept under their tokens in a byte-bounded LRU. Before a request, the entry sharing the
longest prefix with the new prompt is copied back into the context when it beats what the
context holds already. Not `LlamaRAMCache`: its states carry n_tokens x n_vocab logits (~70 MB
each) that its capacity does not count.

Everything here touches the `Llama` context: call it on the model thread only (see models.py).
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SEQ = 0  # llama-cpp-python keeps its one conversation in sequence 0
MIN_SHARED = 32  # fewer shared tokens are not worth a lookup hit (nor superseding an entry)
MIN_SAVED = 64  # shorter contexts are cheap to evaluate again: not worth a slot


def shared_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


@dataclass
class _Entry:
    tokens: np.ndarray
    state: Any  # a ctypes uint8 array: handed back to llama.cpp without another copy

    @property
    def nbytes(self) -> int:
        return ctypes.sizeof(self.state) + self.tokens.nbytes


@dataclass
class PrefixCacheStats:
    """Counters since the model was loaded. hits: a saved state was restored; live: the context
    already held the longest shared prefix; misses: no prefix of MIN_SHARED tokens anywhere."""
    hits: int = 0
    live: int = 0
    misses: int = 0
    saves: int = 0
    evictions: int = 0
    prompt_tokens: int = 0
    evaluated_tokens: int = 0  # prompt tokens actually run through the model
    entries: int = 0
    bytes: int = 0


class PrefixCache:
    def __init__(self, capacity_bytes: int) -> None:
        self.capacity = max(0, capacity_bytes)
        self.stats = PrefixCacheStats()
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()  # by token bytes, least recently used first
        self._source: bytes | None = None  # the entry the context's current KV came from (restored or saved)
        self._stable: int | None = None  # where this prompt parted from its source: what `remember` keeps

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def prepare(self, llm: Any, tokens: Sequence[int]) -> int:
        """Make the context hold the longest available prefix of `tokens` and nothing after it;
        returns its length (the prompt tokens that need no evaluation). At least the last prompt
        token is always left to evaluate: sampling needs fresh logits, which no state carries."""
        prompt = np.asarray(tokens, dtype=llm.input_ids.dtype)
        usable = len(prompt) - 1
        held = int(llm.n_tokens)
        live = min(shared_prefix(llm.input_ids[:held], prompt), usable)
        reused = live
        self._stable = None
        if self.enabled:
            key, best = self._best(prompt)
            best = min(best, usable)
            if key is not None and best > live and best >= MIN_SHARED:
                if self._restore(llm, key):
                    self._source, reused = key, best
                    self._stable = best if best < len(self._entries[key].tokens) else None
                    self.stats.hits += 1
                else:  # the context's cells are gone with the failed attempt
                    reused = 0
                    self.stats.misses += 1
            elif live >= MIN_SHARED:
                self._stable = live if live < held else None
                self.stats.live += 1
            else:
                self._source = None
                self.stats.misses += 1
        # Cut the context back to the reused prefix ourselves: create_completion's own prefix
        # match then finds exactly this many tokens, so the count of evaluated tokens is ours.
        reused = max(reused, 0)
        if not llm._ctx.kv_cache_seq_rm(SEQ, reused, -1):  # a memory that cannot drop a tail: start afresh
            llm.reset()
            llm._ctx.kv_cache_seq_rm(SEQ, 0, -1)
            reused = 0
        llm.n_tokens = reused
        llm._requires_eval = True  # restored or trimmed, the context's logits are not this prompt's
        self.stats.prompt_tokens += len(prompt)
        self.stats.evaluated_tokens += len(prompt) - reused
        return reused

    def remember(self, llm: Any) -> None:
        """Save the context's KV (the prompt and the reply just generated) under its tokens. When
        the prompt parted from the state it reused (an agent's turn: same persona, new mood,
        memories and transcript), only the shared start is kept: the rest will not come again,
        and an agent's state shrinks to its persona (~2 MB instead of ~9)."""
        n = int(llm.n_tokens)
        if not self.enabled or n < MIN_SAVED:
            return
        if self._stable is not None and self._stable < n:
            n = self._stable
            if not llm._ctx.kv_cache_seq_rm(SEQ, n, -1):  # the context itself: its tail served its one request
                return
            llm.n_tokens = n
            llm._requires_eval = True
        tokens = llm.input_ids[:n].copy()
        size = _lib().llama_state_seq_get_size(llm._ctx.ctx, SEQ)
        if size + tokens.nbytes > self.capacity:
            return
        state = (ctypes.c_uint8 * size)()
        written = _lib().llama_state_seq_get_data(llm._ctx.ctx, state, size, SEQ)
        if written != size:
            return  # nothing sound to keep
        # The entry this context grew from (the same agent's previous prompt) is superseded:
        # the new one shares the same prefix and is the more recent.
        if self._source is not None and (old := self._entries.get(self._source)) is not None \
                and shared_prefix(old.tokens, tokens) >= MIN_SHARED:
            self._drop(self._source)
        key = tokens.tobytes()
        if key in self._entries:
            self._drop(key)
        self._entries[key] = _Entry(tokens, state)
        self._source = key
        self.stats.saves += 1
        self.stats.bytes += self._entries[key].nbytes
        while self.stats.bytes > self.capacity:
            self._drop(next(iter(self._entries)))
            self.stats.evictions += 1
        self.stats.entries = len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._source = None
        self.stats.entries = self.stats.bytes = 0

    def _best(self, prompt: np.ndarray) -> tuple[bytes | None, int]:
        best_key, best = None, 0
        for key, entry in self._entries.items():
            shared = shared_prefix(entry.tokens, prompt)
            if shared > best:
                best_key, best = key, shared
        return best_key, best

    def _restore(self, llm: Any, key: bytes) -> bool:
        entry = self._entries[key]
        # set_data empties sequence 0 first, then loads the saved cells at their positions
        if _lib().llama_state_seq_set_data(llm._ctx.ctx, entry.state, ctypes.sizeof(entry.state), SEQ) == 0:
            # refused (no room in the KV cache?): forget the entry and evaluate the whole prompt
            self._drop(key)
            llm.n_tokens = 0
            return False
        n = len(entry.tokens)
        llm.input_ids[:n] = entry.tokens
        llm.n_tokens = n
        self._entries.move_to_end(key)
        return True

    def _drop(self, key: bytes) -> None:
        entry = self._entries.pop(key)
        self.stats.bytes -= entry.nbytes
        self.stats.entries = len(self._entries)
        if self._source == key:
            self._source = None


def _lib() -> Any:
    import llama_cpp as module  # imported late, like models.py does: loading the library is slow

    return module
