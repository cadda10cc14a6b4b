"""Load audit of the CPU runtime: many threads with different per-call settings on one model while another thread
changes its settings, budget and cache; huge and degenerate inputs against a numpy reference; generators and numpy
string arrays; ``workers`` beyond the cores; errors and Ctrl-C in worker calls; fork under load; numba's disk cache
written by several processes and versions."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers.tokenizers import SPECIAL, WORDS, make_wordpiece_tokenizer, random_texts
from hypothesis import given, settings
from hypothesis import strategies as st

from static_model import StaticModel
from static_model.tokenization import prepare_tokenizer, unknown_token_id

TABLE = np.random.default_rng(0).normal(size=(len(SPECIAL) + len(WORDS), 8)).astype(np.float32)


def make_model(**settings: object) -> StaticModel:
    model = StaticModel(TABLE, make_wordpiece_tokenizer())
    for key, value in settings.items():
        setattr(model, key, value)
    return model


_SHARED = make_model()


def reference(texts: list[str], *, max_length: int | None = 512, normalize: bool = False) -> np.ndarray:
    """The plain mean of each text's rows, from the Hugging Face tokenizer's ids, in float64."""
    tokenizer = prepare_tokenizer(make_wordpiece_tokenizer())
    unk = unknown_token_id(tokenizer)
    out = np.zeros((len(texts), TABLE.shape[1]))
    for i, text in enumerate(texts):
        ids = [t for t in tokenizer.encode(text, add_special_tokens=False).ids if t != unk][:max_length]
        if ids:
            out[i] = TABLE[ids].astype(np.float64).mean(axis=0)
            if normalize:
                out[i] /= np.linalg.norm(out[i])
    return out


def corpus(n: int, seed: int) -> list[str]:
    texts = random_texts(n, seed)
    rng = np.random.default_rng(seed)
    extras = ["", " ", "\t\n", "☃ ☃☃", "zzz qqq", "Hello, World! café 日本 😀", "cat " * 40, "x" * 300]
    for k in range(0, n, 7):
        texts[k] = str(rng.choice(extras))
    return texts


CALLS = [dict(normalize=n, max_length=m, contrast=c, batch_size=b, workers=w)
         for n, m, c, b, w in [(True, None, None, 4096, 1), (False, 5, 0.0, 3, 1), (None, 3, 2.0, 7, 4),
                               (True, 512, 1.0, 1, 3), (False, None, 0.5, 64, 8), (None, None, None, 2, 2)]]


def test_threads_with_their_own_call_settings_match_one_thread_while_the_model_changes():
    """Guard: per-call settings, batch sizes and workers differ between threads; another thread changes the model's
    contrast, normalize, max_length and cache budget and clears the cache. Each call gives exactly what one thread
    alone gives for the settings it read (one of the model's combinations where the call passed None)."""
    batches = [corpus(60, seed) for seed in range(6)]
    model_states = [dict(contrast=c, normalize=n, max_length=m) for c in (0.0, 1.5) for n in (False, True)
                    for m in (None, 4)]
    expected: dict[tuple, list[np.ndarray]] = {}
    for s, state in enumerate(model_states):
        single = make_model(**state)
        for c, call in enumerate(CALLS):
            expected[s, c] = [single.encode(b, **call) for b in batches]
    model = make_model(**model_states[0])
    done = threading.Event()
    failures: list[str] = []

    def change() -> None:
        rng = np.random.default_rng(1)
        while not done.is_set():
            op = int(rng.integers(5))
            if op == 0:
                state = model_states[int(rng.integers(len(model_states)))]
                for key, value in state.items():  # one setter at a time: each call sees some combination
                    setattr(model, key, value)
            elif op == 1:
                model.cache_bytes = int(rng.choice([0, 16 * 1024, 40_000, 64 << 20]))
            else:
                model.clear_cache()

    def serve(worker: int) -> None:
        rng = np.random.default_rng(100 + worker)
        for _ in range(12):
            c, k = int(rng.integers(len(CALLS))), int(rng.integers(len(batches)))
            got = model.encode(batches[k], **CALLS[c])
            if not any(np.array_equal(got, expected[s, c][k]) for s in range(len(model_states))):
                failures.append(f"call {CALLS[c]} on batch {k}")

    changer = threading.Thread(target=change)
    changer.start()
    try:
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(serve, range(6)))
    finally:
        done.set()
        changer.join()
    assert failures == []
    info = model.cache_info()
    assert info.bytes <= info.max_bytes or info.max_bytes == 0 and info.entries == 0


def test_degenerate_texts_match_the_numpy_reference():
    """Guard: empty, whitespace-only and unknown-only texts give zero vectors; ordinary ones the float64 mean (to
    float32 rounding: the kernel sums in float32, in token order)."""
    texts = ["", " ", "\t \n\r ", "☃", "☃ ☃☃ \u2603", "\u200b", "cat", "cat ☃ dog", "\x00", " \x00 "] + corpus(50, 9)
    model = make_model()
    got = model.encode(texts)
    np.testing.assert_allclose(got, reference(texts), rtol=0, atol=1e-5)
    assert not got[:6].any()
    np.testing.assert_allclose(model.encode(texts, normalize=True), reference(texts, normalize=True), rtol=0,
                               atol=1e-5)


def test_generators_numpy_string_arrays_and_workers_give_the_list_result():
    """Guard: a generator, a numpy str array (fixed width and object), ``workers`` from 1 to far beyond the cores and
    any ``batch_size`` give the same bits as a plain list."""
    texts = corpus(300, 4)
    model = make_model(contrast=1.0)
    want = model.encode(texts)
    assert np.array_equal(model.encode(t for t in texts), want)
    assert np.array_equal(model.encode(np.array(texts)), want)
    assert np.array_equal(model.encode(np.array(texts, dtype=object)), want)
    for workers, batch_size in [(1, 1), (2, 5), (64, 4096), (300, 1), (1000, 3)]:
        assert np.array_equal(model.encode(texts, workers=workers, batch_size=batch_size), want)
    assert model.encode([], workers=8).shape == (0, TABLE.shape[1])


def test_a_hundred_thousand_tiny_texts_match_the_small_batch_result():
    """Guard: 100,000 texts (several slices) give the vectors of small batches."""
    base = corpus(200, 5)
    texts = [base[i % 200] for i in range(100_000)]
    model = make_model()
    got = model.encode(texts, workers=3)
    np.testing.assert_array_equal(got, np.tile(model.encode(base), (500, 1)))


_KERNEL = '''
from static_model.jit import njit


@njit(nogil=True)
def total(values):
    s = 0.0
    for v in values:
        s += v
    return s
'''


def _fresh_kernel(path):
    """The kernel of ``path`` as a new process sees it: a new dispatcher, reading the disk cache."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("audit_kernel", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.total


def test_two_processes_saving_two_signatures_at_once_leave_a_cache_that_heals(tmp_path, monkeypatch):
    """Bug: numba's save reads the index and takes the first free data file name, so two processes on a cold cache
    saving two signatures of one kernel at once (a float32 and an int8 model's pooling) both write ``-1.nbc``; the
    index can then name, for int8, the file holding the float32 kernel. numba loaded it unchecked and every int8 call,
    in every later process, failed with "can't unbox array". The interleaving is replayed here step by step: the
    int8 call now compiles again (one warning) and rewrites the file, and the next process loads it from the cache."""
    import numba

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "kernel.py"
    source.write_text(_KERNEL)
    floats, small = np.array([1.5, 2.5, 300], dtype=np.float32), np.array([1, 2, 100], dtype=np.int8)
    assert _fresh_kernel(source)(floats) == 304.0  # process A compiles float32: index {f32: 1}, file 1
    (index,) = (tmp_path / "cache").rglob("*.nbi")
    (data,) = (tmp_path / "cache").rglob("*.nbc")
    float_kernel = data.read_bytes()
    index.unlink()  # process B read the index before A saved it
    assert _fresh_kernel(source)(small) == 103.0  # B compiles int8: index {i8: 1}, file 1
    data.write_bytes(float_kernel)  # and A's write of file 1 lands last
    with pytest.warns(RuntimeWarning, match="holds the kernel compiled for"):
        assert _fresh_kernel(source)(small) == 103.0
    healed = _fresh_kernel(source)
    assert healed(small) == 103.0 and sum(healed.stats.cache_hits.values()) == 1


def test_a_batch_of_long_texts_of_few_tokens_is_encoded_again_a_bounded_part_at_a_time(monkeypatch):
    """Bug: a long text whose first ``32 * max_length`` characters give fewer than ``max_length`` tokens (mostly
    whitespace, unknown symbols) was encoded again whole, and all such texts of a slice at once: 40 texts of 1 MB with
    ``max_length=512`` made one tokenization of 40 M characters (gigabytes for symbol-dense text, past the slices'
    bound of about 4 M characters). Now each is cut four times further on per round, until it has its tokens or is
    whole, and each round is tokenized in groups of at most about 4 M characters. The ids are the same."""
    from static_model.tokenization import TextEncoder

    sparse_known = ("cat" + " " * 97) * 10_000  # 1 M characters, 10,000 tokens: 512 within the first 52 K
    sparse_unknown = ("zzz" + " " * 97) * 10_000  # no token at all: encoded whole in the end
    texts = [sparse_known, sparse_unknown] * 20 + ["the cat sat", ""]
    sizes: list[int] = []
    original = TextEncoder._encode_parts

    def spy(self, texts, limit):  # noqa: ANN001, ANN202
        sizes.append(sum(map(len, texts)))
        return original(self, texts, limit)

    model = make_model(contrast=0.0)
    want_ids = [model.tokenize([t], max_length=None)[0][:512] for t in texts[:2]] * 20
    want_ids += model.tokenize(texts[-2:], max_length=512)
    monkeypatch.setattr(TextEncoder, "_encode_parts", spy)
    got = model.tokenize(texts, max_length=512)
    assert [g.tolist() for g in got] == [w.tolist() for w in want_ids]
    assert len(got[0]) == 512 and len(got[1]) == 0
    assert max(sizes) <= 4 * 1024 * 1024 + len(sparse_known), f"{max(sizes) / 1e6:.1f} M characters in one call"
    vectors = model.encode(texts, max_length=512)
    np.testing.assert_array_equal(vectors[::2][:20], np.tile(model.encode([sparse_known], max_length=512), (20, 1)))
    assert not vectors[1::2][:20].any()


def test_a_call_that_looks_up_during_another_calls_merge_adds_no_second_entry(monkeypatch):
    """Bug: a merge counted itself (``_merges``) before appending, so a call that read the count during that merge
    (its look-ups not yet seeing the entries) found the count unchanged at its own merge, skipped the filter and
    appended the same chunks again: a second entry for each, bytes counted twice against the budget, and a cache
    that holds fewer distinct chunks. The count now moves once the entries are published."""
    from static_model.chunk_cache import ChunkCache, Generation

    resolved = threading.Event()

    def resolve(chunks: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        if threading.current_thread().name == "second":
            resolved.set()  # its look-ups are done
        offsets = np.arange(len(chunks) + 1, dtype=np.int64) * 2
        return chunks, np.repeat(np.arange(len(chunks), dtype=np.int32) + 7, 2), offsets

    cache = ChunkCache(resolve, 1 << 20)
    inside, release = threading.Event(), threading.Event()
    append = Generation.append

    def slow_append(self: Generation, chunks: list[str], ids: np.ndarray, offsets: np.ndarray) -> None:
        if threading.current_thread().name == "first" and not inside.is_set():
            inside.set()
            release.wait(30)  # a thread switch in the middle of the merge
        append(self, chunks, ids, offsets)

    monkeypatch.setattr(Generation, "append", slow_append)
    first = threading.Thread(target=cache.lookup, args=(["alpha", "beta"],), name="first")
    first.start()
    try:
        assert inside.wait(30)
        second = threading.Thread(target=cache.lookup, args=(["alpha", "beta", "gamma"],), name="second")
        second.start()  # looks up now, merges once the first merge lets go of the lock
        assert resolved.wait(30)
    finally:
        release.set()
        first.join()
    second.join()
    info = cache.info()
    assert info.entries == 3, f"{info.entries} entries for 3 distinct chunks"
    found = cache.lookup(["alpha", "beta", "gamma"])
    assert found.local_ids.size == 0 and len(set(found.entries.tolist())) == 3


_ATOMS = ["cat", "dog ", "zzz", "☃", "☃☃☃", " ", " " * 40, "\n", "\t", "日", ",", "!", "[MASK]", "café", "x" * 120,
          "unbelievable", "a", "0"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_ATOMS), max_size=400).map("".join), min_size=1, max_size=4),
       st.sampled_from([1, 2, 3, 5]))
def test_a_text_cut_round_after_round_keeps_the_first_max_length_ids(texts, max_length):
    """Guard for the rounds of cuts: long texts of few tokens (whitespace runs, unknown symbols) give the first
    ``max_length`` ids of the whole text, and the vectors of those ids."""
    model = _SHARED
    whole = model.tokenize(texts, max_length=None)
    got = model.tokenize(texts, max_length=max_length)
    assert [g.tolist() for g in got] == [w[:max_length].tolist() for w in whole]
    vectors = model.encode(texts, max_length=max_length)
    for ids, vector in zip(got, vectors):
        np.testing.assert_allclose(vector, TABLE[ids].mean(axis=0) if len(ids) else 0.0, rtol=1e-5, atol=1e-6)


def test_workers_with_many_small_batches_hold_a_few_batches_at_a_time():
    """Bug: ``encode(workers=N)`` listed every batch and handed them all to ``executor.map``, which submits them at
    once: a future and its bookkeeping (about 2 KB) per batch, so 50,000 texts with ``batch_size=1`` held 90 MB
    (a million, about 2 GB) where one worker held 1 MB, against the README's "a call's own memory is bounded whatever
    batch_size". Now a few batches per worker are in flight; the vectors are the same."""
    import tracemalloc

    model = make_model()
    texts = [f"the cat {k % 10} sat" for k in range(8000)]
    want = model.encode(texts, batch_size=1)
    tracemalloc.start()
    try:
        got = model.encode(texts, batch_size=1, workers=2)
        held = tracemalloc.get_traced_memory()[1] - got.nbytes
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, want)
    assert held < 4_000_000, f"{held / 1e6:.1f} MB held for 8,000 one-text batches on 2 workers"


def test_an_error_in_one_batch_of_a_worker_call_stops_the_call_and_leaves_the_model_right(monkeypatch):
    """Guard: a batch that fails on a worker thread fails the call with its error, the batches not started are
    cancelled, and the model then encodes as before (cache consistent)."""
    from static_model import model as model_module

    model = make_model()
    texts = corpus(400, 8)
    want = make_model().encode(texts)
    calls = []
    real_pool = model_module.pool

    def failing_pool(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("the third batch")
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(model_module, "pool", failing_pool)
    with pytest.raises(MemoryError, match="third batch"):
        model.encode(texts, batch_size=1, workers=2)
    assert len(calls) < 100  # the rest were cancelled, not run
    monkeypatch.setattr(model_module, "pool", real_pool)
    np.testing.assert_array_equal(model.encode(texts, workers=3, batch_size=9), want)
    np.testing.assert_array_equal(model.encode(texts), want)
    info = model.cache_info()
    assert 0 < info.entries and info.bytes <= info.max_bytes


def test_a_ctrl_c_during_a_worker_call_stops_it_and_leaves_the_model_right(monkeypatch):
    """Guard: a Ctrl-C while ``encode(workers=2)`` waits for its batches is a KeyboardInterrupt from that call, the
    batches not started are cancelled, and the model (and its cache) then encodes as before, here and on threads."""
    import signal
    import time

    from static_model import model as model_module

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    model = make_model()
    texts = corpus(400, 11)
    want = make_model().encode(texts)
    calls = []
    real_pool = model_module.pool

    def interrupting_pool(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # the main thread is waiting for this batch
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(model_module, "pool", interrupting_pool)
    with pytest.raises(KeyboardInterrupt):
        model.encode(texts, batch_size=1, workers=2)
    assert len(calls) < 100
    monkeypatch.setattr(model_module, "pool", real_pool)
    np.testing.assert_array_equal(model.encode(texts), want)
    with ThreadPoolExecutor(4) as pool:
        for got in pool.map(lambda w: model.encode(texts, workers=w, batch_size=7), [1, 2, 3, 4]):
            np.testing.assert_array_equal(got, want)


def test_an_upgraded_kernel_whose_data_write_failed_is_not_replaced_by_the_old_one(tmp_path, monkeypatch):
    """Bug: numba writes a kernel's index before its data file. After the source changed (an upgrade), a process
    whose data write failed (a full disk: the small index fits, the kernel does not) left an index for the new source
    naming ``-1.nbc``, which still held the old kernel: every later process ran the old code, silently (here 3.0
    instead of 6.0). The data file is now written first, so an index entry only names a file its own save wrote."""
    import numba
    import numba.core.caching

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "kernel.py"
    source.write_text(_KERNEL)
    values = np.array([1.0, 2.0])
    assert _fresh_kernel(source)(values) == 3.0
    source.write_text(_KERNEL.replace("s += v", "s += 2 * v"))  # the upgrade: another size, so another stamp
    os.utime(source, (1e9, 1e9))

    def disk_full(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(numba.core.caching.IndexDataCacheFile, "_save_data", disk_full)
        with pytest.warns(RuntimeWarning, match="could not write"):
            assert _fresh_kernel(source)(values) == 6.0
    assert _fresh_kernel(source)(values) == 6.0
    healed = _fresh_kernel(source)
    assert healed(values) == 6.0 and sum(healed.stats.cache_hits.values()) == 1


def test_the_budget_holds_at_every_moment_while_threads_insert_and_evict():
    """Guard: four threads insert distinct words into a small cache (generations swap all the time) while another
    reads ``cache_info``: the bytes never pass the budget, and every call gives the cold-model vectors."""
    rng = np.random.default_rng(5)  # distinct words of known pieces ("playingsed123"): each a new entry with ids
    stems, suffixes = ["un", "play", "caf", "bank", "cat"], ["believ", "able", "ing", "s", "ed", "e", "0"]
    words = sorted({str(rng.choice(stems)) + "".join(rng.choice(suffixes, rng.integers(1, 6))) + str(k)
                    for k in range(12_000)})
    texts = [" ".join(words[k : k + 1 + k % 200]) for k in range(0, 11_500, 97)]
    want = make_model(cache_bytes=0).encode(texts)
    model = make_model(cache_bytes=40_000)
    stop, over, wrong = threading.Event(), [], []

    def watch() -> None:
        while not stop.is_set():
            info = model.cache_info()
            if info.bytes > info.max_bytes:
                over.append(info)

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(40):
            k = int(rng.integers(len(texts)))
            if not np.array_equal(model.encode(texts[k]), want[k]):
                wrong.append(k)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(work, range(4)))
    finally:
        stop.set()
        watcher.join()
    assert over == [] and wrong == []
    assert 0 < model.cache_info().entries


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_children_forked_while_threads_encode_with_workers_match():
    """Guard: children forked while two threads run ``encode(workers=2)`` with contrast encode with workers too and
    get the parent's single-thread vectors."""
    model = make_model(contrast=1.0)
    texts = corpus(300, 12)
    want = make_model(contrast=1.0).encode(texts)
    stop = threading.Event()

    def hammer(seed: int) -> None:
        while not stop.is_set():
            model.encode(texts[seed : seed + 60], workers=2, batch_size=5)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in (0, 100)]
    for thread in threads:
        thread.start()
    codes = []
    try:
        for _ in range(3):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                ok = np.array_equal(model.encode(texts, workers=3, batch_size=11), want) and \
                    np.array_equal(model.encode(texts), want)
                os._exit(0 if ok else 1)
            codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert codes == [0, 0, 0]
