"""StaticModel under load: many threads on one cold model, a cache that evicts mid-batch, a byte budget that
holds, pickling, fork and spawn."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers.tokenizers import TRICKY, reference_ids
from tokenizers import Tokenizer

from static_model import StaticModel
from static_model.chunk_cache import Generation


@pytest.fixture(scope="module")
def minilm_parts(minilm_folder):
    """MiniLM's tokenizer and a small random table of its vocabulary size (vectors only need to be comparable)."""
    tokenizer = Tokenizer.from_file(str(minilm_folder / "tokenizer.json"))
    table = np.random.default_rng(0).normal(size=(tokenizer.get_vocab_size(), 16)).astype(np.float16)
    return table, tokenizer


def fresh_model(parts, **kwargs) -> StaticModel:
    table, tokenizer = parts
    model = StaticModel(table, tokenizer, config={"normalize": True, "contrast": 1.0})
    for key, value in kwargs.items():
        setattr(model, key, value)
    return model


def workload(lines: list[str]) -> list[list[str]]:
    """Batches of mixed sizes: small ones, one with more than the parallel pooling threshold, tricky texts."""
    batches = [lines[i : i + 97] for i in range(0, 2000, 97)]
    batches.append(lines[2000:6000])  # > 50,000 tokens: the parallel pooling kernel
    batches += [TRICKY, TRICKY[::-1], [t * 40 for t in lines[6000:6050]]]
    return batches


def run_all(model: StaticModel, batch: list[str]) -> tuple:
    vectors = model.encode(batch)
    sequences = model.encode_as_sequence(batch[:20])
    ids = model.tokenize(batch, max_length=16)
    sims = model.similarity(batch[:10], batch[-10:])
    return vectors, sequences, ids, sims


def assert_same(a: tuple, b: tuple) -> None:
    # bit for bit, contrast pooling included (its last bit once depended on where a scratch buffer was allocated:
    # test_static_model_contrast.py::test_a_vector_does_not_depend_on_where_the_scratch_buffer_lies)
    np.testing.assert_array_equal(a[0], b[0])
    assert len(a[1]) == len(b[1]) and all(np.array_equal(x, y) for x, y in zip(a[1], b[1]))
    assert len(a[2]) == len(b[2]) and all(np.array_equal(x, y) for x, y in zip(a[2], b[2]))
    # similarity is one BLAS matmul of those identical vectors: OpenBLAS may split it differently when threads
    # call it at once, which moves the last bit of a float32 sum, so it is compared to 1e-6
    np.testing.assert_allclose(a[3], b[3], rtol=0, atol=1e-6)


@pytest.mark.parametrize("cache_bytes", [64 << 20, 200_000])  # the default, and one that evicts all the time
def test_eight_threads_on_one_cold_model_match_a_single_thread(minilm_parts, corpus_lines, cache_bytes):
    batches = workload(corpus_lines[::37])
    expected = [run_all(fresh_model(minilm_parts), b) for b in batches]  # single thread, one model per batch
    model = fresh_model(minilm_parts, cache_bytes=cache_bytes)
    jobs = [k for _ in range(3) for k in range(len(batches))]
    np.random.default_rng(1).shuffle(jobs)
    start = threading.Barrier(8)

    def first(k: int) -> tuple[int, tuple]:
        start.wait(timeout=60)  # eight threads hit the cold cache together
        return k, run_all(model, batches[k])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(first, jobs[:8])) + list(pool.map(lambda k: (k, run_all(model, batches[k])), jobs[8:]))
    for k, got in results:
        assert_same(got, expected[k])
    info = model.cache_info()
    assert info.misses > 0 and info.hits > 0
    assert info.bytes <= max(cache_bytes, 200_000)


def test_a_batch_larger_than_the_cache_encodes(minilm_parts):
    """The 1.1M-line `KeyError: 'order'` case, scaled down: the cache evicts many times within one encode."""
    texts = [f"order {i} shipped to customer" for i in range(60_000)]
    model = fresh_model(minilm_parts, cache_bytes=100_000)
    vectors = model.encode(texts, batch_size=5_000)
    reference = fresh_model(minilm_parts, cache_bytes=0)  # no cache at all
    np.testing.assert_array_equal(vectors, reference.encode(texts))
    sample = texts[::997]
    assert [t.tolist() for t in model.tokenize(sample)] == reference_ids(minilm_parts[1], sample, 512)
    assert model.cache_info().bytes <= 100_000


def test_the_byte_budget_holds_for_long_distinct_words(minilm_parts):
    """The 20,000 x 8,000-character case, scaled down, plus many distinct cacheable words."""
    rng = np.random.default_rng(2)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    model = fresh_model(minilm_parts, cache_bytes=1 << 20)
    for length, count in ((8_000, 500), (40, 20_000), (200, 5_000)):
        words = [rng.choice(letters, length).tobytes().decode() for _ in range(count)]
        model.encode(words, batch_size=1_000)
        assert model.cache_info().bytes <= 1 << 20
    assert model.cache_info().entries > 0
    model.clear_cache()
    info = model.cache_info()
    assert (info.entries, info.hits, info.misses) == (0, 0, 0)


def test_cache_appends_in_amortised_constant_time():
    """Adding entries one at a time reallocates the id arrays only O(log n) times, never per add."""
    generation = Generation()
    arrays = {id(generation.arrays[0])}
    for k in range(20_000):
        generation.append([f"w{k}"], np.array([k, k], dtype=np.int32), np.array([0, 2], dtype=np.int64))
        arrays.add(id(generation.arrays[0]))
    assert len(arrays) <= 12
    pieces, starts = generation.arrays
    entry = generation.index["w12345"]
    assert pieces[starts[entry] : starts[entry + 1]].tolist() == [12345, 12345]


def test_bad_cache_budget_is_refused(tiny_model):
    for bad in (-1, 1.5, "big", True, 1, 3000, 16 * 1024 - 1):  # 1..16 KiB-1 would cache nothing, silently
        with pytest.raises(ValueError, match="cache_bytes"):
            tiny_model.cache_bytes = bad
    tiny_model.cache_bytes = 16 * 1024  # the smallest budget accepted holds what it is given
    tiny_model.encode(["hello world", "hello"])
    assert tiny_model.cache_info().entries >= 2
    tiny_model.cache_bytes = 0  # off
    tiny_model.encode(["hello world", "hello"])
    info = tiny_model.cache_info()  # was bytes=368, max_bytes=0: a monitor of bytes <= max_bytes tripped
    assert (info.entries, info.bytes, info.max_bytes) == (0, 0, 0)


def test_pickle_is_arrays_and_tokenizer_never_the_cache(minilm_parts, corpus_lines):
    model = fresh_model(minilm_parts)
    empty_size = len(pickle.dumps(model))
    vectors = model.encode(corpus_lines[:3000])
    assert model.cache_info().entries > 1000
    blob = pickle.dumps(model)
    assert len(blob) <= empty_size + 1000  # the warm cache adds nothing
    assert len(blob) < minilm_parts[0].nbytes + len(minilm_parts[1].to_str()) + 100_000
    clone = pickle.loads(blob)
    assert clone.cache_info().entries == 0
    np.testing.assert_array_equal(clone.encode(corpus_lines[:3000]), vectors)


def _encode_in_child(args: tuple) -> np.ndarray:
    model, texts = args
    return model.encode(texts)


_FORK_MODEL: StaticModel | None = None


def _encode_with_inherited_model(texts: list[str]) -> np.ndarray:
    return _FORK_MODEL.encode(texts)


def test_model_works_under_spawn(minilm_parts, corpus_lines):
    model = fresh_model(minilm_parts)
    texts = [corpus_lines[i : i + 500] for i in range(0, 1500, 500)]
    expected = [model.encode(t) for t in texts]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        got = pool.map(_encode_in_child, [(model, t) for t in texts])
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform")
def test_model_works_after_fork_while_other_threads_use_it(minilm_parts, corpus_lines):
    global _FORK_MODEL
    model = fresh_model(minilm_parts)
    big = corpus_lines[:6000]  # > 50,000 tokens: the parent has used the parallel pooling kernel
    expected = model.encode(big)
    _FORK_MODEL = model
    stop = threading.Event()

    def keep_busy() -> None:  # the cache's lock may be held at the moment of the fork
        k = 0
        while not stop.is_set():
            model.encode([f"busy{k} word{k}x"])
            k += 1

    busy = threading.Thread(target=keep_busy)
    busy.start()
    try:
        with multiprocessing.get_context("fork").Pool(2) as pool:
            got = pool.map(_encode_with_inherited_model, [big, big[:100] + [f"new{k}" for k in range(50)]])
    finally:
        stop.set()
        busy.join()
        _FORK_MODEL = None
    np.testing.assert_array_equal(got[0], expected)
    np.testing.assert_array_equal(got[1][:100], expected[:100])


def test_workers_give_the_same_vectors(minilm_parts, corpus_lines):
    texts = corpus_lines[:3001]
    expected = fresh_model(minilm_parts).encode(texts)
    model = fresh_model(minilm_parts)
    np.testing.assert_array_equal(model.encode(texts, workers=3, batch_size=500), expected)
    np.testing.assert_array_equal(model.encode(texts, workers=2), expected)  # warm
    assert model.encode("one text", workers=4).shape == (16,)
    with pytest.raises(ValueError, match="workers"):
        model.encode(texts, workers=0)


def _save_in_child(model: StaticModel, folder: str) -> None:
    model.save_pretrained(folder)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform")
def test_a_child_forked_while_a_save_holds_its_lock_can_save(tiny_model, tmp_path):
    """A thread of the parent saving at the instant of the fork held the saves' lock: the child's saves hung."""
    from static_model import atomic

    with atomic._ACTIVE_LOCK:  # as a save in another thread holds it for a moment
        child = multiprocessing.get_context("fork").Process(target=_save_in_child,
                                                            args=(tiny_model, str(tmp_path / "m")))
        child.start()
    child.join(120)  # a hang guard, not a timing check: the save takes well under a second
    if child.is_alive():
        child.kill()
        child.join()
    assert child.exitcode == 0
    np.testing.assert_array_equal(StaticModel.from_pretrained(tmp_path / "m").embeddings, tiny_model.embeddings)
