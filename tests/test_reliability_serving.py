"""Serving under load: the chunk cache's budget (trimmed at once, measured close to real memory), its hit count,
fork while a merge holds its lock, settings read once per call, and many threads on one model while another
changes its settings and budget."""

from __future__ import annotations

import gc
import inspect
import itertools
import multiprocessing
import os
import pickle
import sys
import threading
import tracemalloc
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers.tokenizers import SPECIAL, WORDS, make_wordpiece_tokenizer

from static_model import StaticModel, chunk_cache
from static_model.chunk_cache import Generation

needs_fork = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork here")
STEMS = ["un", "play", "caf", "bank", "cat", "1"]
SUFFIXES = ["believ", "able", "ing", "s", "ed", "e", "0"]


def make_model(**settings: object) -> StaticModel:
    table = np.random.default_rng(0).normal(size=(len(SPECIAL) + len(WORDS), 8)).astype(np.float32)
    model = StaticModel(table, make_wordpiece_tokenizer(), config={"normalize": True})
    for key, value in settings.items():
        setattr(model, key, value)
    return model


def made_up_words(count: int, seed: int) -> list[str]:
    """Distinct words of known pieces ("playingsed", "1000"): each a new cache entry with real ids."""
    rng = np.random.default_rng(seed)
    words: set[str] = set()
    while len(words) < count:
        suffixes = rng.choice(SUFFIXES, rng.integers(1, 9))
        words.add(str(rng.choice(STEMS)) + "".join(suffixes) + str(rng.integers(0, 10**6)))
    return sorted(words)


def known_words(count: int, seed: int) -> list[str]:
    """Distinct words made only of known pieces ("playingsed", "cat0able"): each has ids, 2 to 5 of them."""
    rng = np.random.default_rng(seed)
    words: set[str] = set()
    while len(words) < count:
        words.add(str(rng.choice(STEMS[:-1])) + "".join(rng.choice(SUFFIXES, rng.integers(1, 5))))
    return sorted(words, key=lambda w: rng.random())


def symbols(alphabet: str, count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(alphabet), rng.integers(3, 9))) for _ in range(count)]


# ------------------------------------------------------------------ the byte budget
def test_lowering_the_budget_frees_the_cache_at_once():
    model = make_model()
    words = made_up_words(6000, 0)
    model.encode(["warm up"])
    tracemalloc.start()  # before the fill: tracemalloc sees only what is allocated while it runs
    try:
        model.encode([" ".join(words[i : i + 10]) for i in range(0, len(words), 10)])
        full = model.cache_info()
        assert full.entries == len(words) + 2 and full.bytes > 200_000
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        model.cache_bytes = 100_000  # nothing else runs: what is freed is freed by the setter
        gc.collect()
        freed = before - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    trimmed = model.cache_info()
    assert trimmed.bytes <= 100_000 < full.bytes and trimmed.entries < full.entries
    assert freed >= 0.9 * (full.bytes - trimmed.bytes)
    model.cache_bytes = 64 << 20  # raising drops nothing
    assert model.cache_info().entries == trimmed.entries
    model.cache_bytes = 0
    assert model.cache_info().entries == 0
    sample = [" ".join(words[:50]), "cat " + words[7]]
    np.testing.assert_array_equal(model.encode(sample), make_model().encode(sample))


@pytest.mark.parametrize("alphabet", ["abcdefghij", "éèàçüöñßø", "日本語中文字漢", "😀😁😂🤣😃😄"])
def test_cache_bytes_is_the_memory_it_holds(alphabet):
    """info().bytes is what clearing the cache frees (tracemalloc), within a few percent, for ASCII, Latin-1,
    BMP and astral text (1, 1, 2 and 4 bytes per character); and the cache stays within its budget."""
    budget = 300_000
    model = make_model(cache_bytes=budget)
    for start in range(0, 3000, 1000):  # the same work on other words first: numba compiles what it will run (with a
        model.encode([" ".join(symbols(alphabet, 3000, 2)[start : start + 1000])])  # cold on-disk cache, run alone,
    model.clear_cache()  # the compilations were traced: 340 KB past the budget)
    words = symbols(alphabet, 12_000, 1)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for start in range(0, len(words), 1000):
            model.encode([" ".join(words[start : start + 1000])])
            gc.collect()
            assert tracemalloc.get_traced_memory()[0] - base <= budget
            assert model.cache_info().bytes <= budget
        held, info = tracemalloc.get_traced_memory()[0], model.cache_info()
        model.clear_cache()
        gc.collect()
        freed = held - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert info.entries > 300
    assert 0.95 <= freed / info.bytes <= 1.05, (freed, info.bytes)


def test_the_separator_between_texts_is_not_a_hit():
    model = make_model()
    model.encode(["cat sat", "", "cat"])  # chunks: cat sat <sep> <sep> cat
    info = model.cache_info()
    assert (info.hits, info.misses) == (1, 2)  # the second "cat"; "cat" and "sat" tokenized
    model.encode(["cat", "sat", "", ""])
    model.encode(["", "", "", ""])
    info = model.cache_info()
    assert (info.hits, info.misses) == (3, 2)
    cache = chunk_cache.ChunkCache(lambda chunks: (chunks, np.zeros(0, np.int32), np.zeros(len(chunks) + 1, np.int64)))
    cache.lookup(["a", chunk_cache.SEPARATOR, "a", chunk_cache.SEPARATOR])  # counted when the caller does not say
    assert (cache.info().hits, cache.info().misses) == (1, 1)


# ------------------------------------------------------------------ fork
def _check_ids_in_child(model: StaticModel, texts: list[str], expected: list[list[int]]) -> None:
    assert [ids.tolist() for ids in model.tokenize(texts)] == expected
    assert [ids.tolist() for ids in model.tokenize(texts)] == expected  # again, from the child's cache


def _fork_and_check(model: StaticModel, texts: list[str], expected: list[list[int]]) -> int | None:
    child = multiprocessing.get_context("fork").Process(target=_check_ids_in_child, args=(model, texts, expected))
    child.start()
    child.join(120)  # a hang guard, not a timing check: the child's work takes well under a second
    if child.is_alive():
        child.kill()
        child.join()
    return child.exitcode


@needs_fork
def test_a_child_forked_in_the_middle_of_a_merge_neither_hangs_nor_reads_half_written_entries(monkeypatch):
    """A thread stops inside a merge, holding the cache's lock, after publishing its entries but before counting
    them (as a thread switch there would); the child forked then gets a new lock and an empty cache."""
    model = make_model()
    trigger, parent = "unbelievable", os.getpid()
    texts = ["playing cats 1000", trigger, "the bank"]  # new entries first: they would overwrite the trigger's
    expected = [ids.tolist() for ids in make_model().tokenize(texts)]
    inside, release = threading.Event(), threading.Event()
    append = Generation.append

    def stopping_append(self: Generation, chunks: list[str], ids: np.ndarray, offsets: np.ndarray) -> None:
        append(self, chunks, ids, offsets)
        if trigger in chunks and os.getpid() == parent and not inside.is_set():
            self.n_entries -= len(chunks)  # the counts of this merge not written yet
            self.n_pieces -= int(offsets[-1] - offsets[0])
            inside.set()
            release.wait(60)
            self.n_entries += len(chunks)
            self.n_pieces += int(offsets[-1] - offsets[0])

    monkeypatch.setattr(Generation, "append", stopping_append)
    merging = threading.Thread(target=model.tokenize, args=([trigger],))
    merging.start()
    try:
        assert inside.wait(60)
        assert _fork_and_check(model, texts, expected) == 0
    finally:
        release.set()
        merging.join()
    assert model.tokenize(trigger).pop().tolist() == make_model().tokenize(trigger)[0].tolist()


@needs_fork
def test_children_forked_while_a_thread_hammers_the_cache_work():
    model = make_model(cache_bytes=30_000)  # small: merges swap generations all the time
    stop = threading.Event()
    words = made_up_words(20_000, 2)

    def hammer() -> None:
        for k in itertools.count():
            if stop.is_set():
                return
            model.encode([" ".join(words[(k * 7) % 19_990 : (k * 7) % 19_990 + 10]), "cat dog"])

    texts = [" ".join(made_up_words(30, seed)) for seed in range(3, 6)] + ["café 日本 😀 the cat"]
    expected = [ids.tolist() for ids in make_model().tokenize(texts)]
    busy = threading.Thread(target=hammer)
    busy.start()
    try:
        codes = [_fork_and_check(model, texts, expected) for _ in range(6)]
    finally:
        stop.set()
        busy.join()
    assert codes == [0] * 6



# ------------------------------------------------------------------ a merge cut short
def lines_run(code: types.CodeType, call: object, *args: object) -> list[int]:
    """The lines of ``code`` that ``call(*args)`` runs, in order, repeats included (recorded by a trace function)."""
    lines: list[int] = []

    def trace(frame: types.FrameType, event: str, arg: object) -> object:
        if frame.f_code is not code:
            return None

        def local(frame: types.FrameType, event: str, arg: object) -> object:
            if event == "line":
                lines.append(frame.f_lineno)
            return local

        return local

    _traced(trace, call, *args)
    return lines


def append_lines() -> list[int]:
    """The lines ``Generation.append`` runs for a fresh model's first call."""
    return sorted(set(lines_run(Generation.append.__code__, make_model().tokenize, ["unbelievable playing"])))


def interrupt_at(code: types.CodeType, line: int) -> object:
    """A trace function that raises ``KeyboardInterrupt`` when ``code`` is about to run ``line`` (as a signal
    could land there)."""
    def trace(frame: types.FrameType, event: str, arg: object) -> object:
        if frame.f_code is not code:
            return None

        def local(frame: types.FrameType, event: str, arg: object) -> object:
            if event == "line" and frame.f_lineno == line:
                raise KeyboardInterrupt
            return local

        return local

    return trace


def _traced(trace: object, call: object, *args: object) -> None:
    previous = sys.gettrace()
    sys.settrace(trace)  # type: ignore[arg-type]
    try:
        call(*args)  # type: ignore[operator]
    finally:
        sys.settrace(previous)


def test_a_keyboard_interrupt_at_any_line_of_a_merge_leaves_the_cache_right():
    """Ctrl-C lands between any two lines of the cache's append (as a signal can): the call raises, and every later
    call, on this thread or another, gets the ids a fresh model gives. (It once landed after the new entries were
    published but before they were counted: the next merge took their numbers and room, and the words of the cut
    call read another word's ids, silently, until the cache was cleared.)"""
    words = known_words(80, 11)
    first, second = words[:40], words[40:]
    texts = [" ".join(first[:20]), " ".join(first[20:]), " ".join(second[:20]), " ".join(second[20:])]
    expected = [ids.tolist() for ids in make_model().tokenize(texts)]
    code = Generation.append.__code__
    lines = append_lines()
    assert len(lines) >= 8
    for line in lines:
        model = make_model()
        with pytest.raises(KeyboardInterrupt):
            _traced(interrupt_at(code, line), model.tokenize, texts[:2])
        with ThreadPoolExecutor(1) as other:  # the next merge (the second half), on another thread
            other.submit(model.tokenize, texts[2:]).result()
        got = [ids.tolist() for ids in model.tokenize(texts)]
        assert got == expected, f"wrong ids after an interrupt at line {line} of Generation.append"
        assert all(got), "each text has ids"


def test_a_keyboard_interrupt_inside_a_compiled_kernel_is_a_keyboard_interrupt():
    """Ctrl-C lands while numba's compiled code calls back into Python (``_numba_unpickle``, to box the arrays a
    kernel returns): numba reports it as ``SystemError: CPUDispatcher(...) returned a result with an exception set``
    (7 of 60 Ctrl-Cs during encode), which ``except KeyboardInterrupt`` and the command lines' handlers miss. Each
    public call raises it as a ``KeyboardInterrupt``, and the model stays right."""
    from numba.core import serialize

    code = serialize._numba_unpickle.__code__
    model, fresh = make_model(), make_model()
    texts = [" ".join(known_words(30, 13)), "the cat sat on the mat", "café 日本"]
    calls = [
        lambda: model.encode(texts), lambda: model.tokenize(texts), lambda: model.encode_as_sequence(texts),
        lambda: model.similarity(texts, texts[:1]),
    ]
    for call in calls:
        call()  # compiled and loaded: what follows are the kernels' own call-backs
    interrupted = 0
    for which, call in enumerate(calls):
        for k in itertools.count():
            count = [0]

            def interrupt(frame: types.FrameType, event: str, arg: object, k: int = k, count: list = count) -> object:
                if frame.f_code is code and event == "call":
                    count[0] += 1
                    if count[0] == k + 1:
                        raise KeyboardInterrupt
                return None

            model.clear_cache()  # every call tokenizes again: the same kernels run
            try:
                _traced(interrupt, call)
            except KeyboardInterrupt:
                interrupted += 1
            if count[0] <= k:  # the call made fewer call-backs than k: all of them were interrupted once
                break
        assert k >= 2, f"call {which}: numba made {k} call-backs"
    assert interrupted >= 8
    np.testing.assert_array_equal(model.encode(texts), fresh.encode(texts))
    assert [t.tolist() for t in model.tokenize(texts)] == [t.tolist() for t in fresh.tokenize(texts)]


def test_a_keyboard_interrupt_at_any_line_of_pooling_leaves_the_thread_pool_usable(monkeypatch):
    """Ctrl-C lands between any two lines of ``pool``: later large calls still use numba's thread pool. (Its lock was
    taken with ``acquire(blocking=False)`` just before the ``try`` that released it: an interrupt landing in between
    left it held, and every later call of the process pooled serially.)"""
    from static_model import pooling

    rng = np.random.default_rng(0)
    table = rng.normal(size=(50, 8)).astype(np.float32)
    weights = np.ones(50, dtype=np.float32)
    ids = rng.integers(0, 50, pooling.PARALLEL_MIN_TOKENS + 600).astype(np.int32)
    offsets = np.arange(0, len(ids) + 1, 60, dtype=np.int64)
    expected = np.empty((len(offsets) - 1, 8), dtype=np.float32)
    pooling.pool(table, weights, ids, offsets, expected, normalize=True)
    parallel_calls: list[int] = []
    parallel = pooling._pool_parallel

    def counted(*args: object) -> None:
        parallel_calls.append(1)
        parallel(*args)

    monkeypatch.setattr(pooling, "_pool_parallel", counted)
    code = pooling.pool.__code__
    out = np.empty_like(expected)

    def run() -> None:
        pooling.pool(table, weights, ids, offsets, out, normalize=True)

    lines = lines_run(code, run)
    assert parallel_calls == [1] and len(set(lines)) >= 8
    # not inside the ``finally`` clause, which only reads a local and stores a global: CPython handles signals at
    # calls and backward jumps, so no Ctrl-C lands there (a trace function can raise anywhere)
    source, first = inspect.getsourcelines(pooling.pool)
    cleanup = first + next(i for i, text in enumerate(source) if text.strip() == "finally:")
    for line in sorted(n for n in set(lines) if n < cleanup):
        with pytest.raises(KeyboardInterrupt):
            _traced(interrupt_at(code, line), run)
        parallel_calls.clear()
        run()
        assert parallel_calls == [1], f"pooled serially after an interrupt at line {line} of pool"
        np.testing.assert_array_equal(out, expected)

# ------------------------------------------------------------------ settings, read once per call
SETTINGS = [dict(zip(("normalize", "max_length", "contrast"), values))
            for values in itertools.product((True, False), (512, 6), (0.0, 1.0))]


def flip_settings_inside_the_call(model: StaticModel) -> None:
    """Change every setting from inside the call's first tokenization, as a setter on another thread could."""
    original = model._encoder.encode_parts
    flipped = []

    def encode_parts(texts: list[str], max_length: int | None) -> list:
        if not flipped:
            flipped.append(True)
            model.normalize, model.max_length, model.contrast = False, 2, 3.0
        return original(texts, max_length)

    model._encoder.encode_parts = encode_parts  # type: ignore[method-assign]


def test_a_setter_during_a_call_does_not_change_that_call():
    a = ["the cat sat on the mat in the bank", "unbelievable playing dogs"]
    b = ["money and tax law", "hello world café 日本 the river bank", ""]
    reference = make_model(max_length=512, contrast=1.0)
    model = make_model(max_length=512, contrast=1.0)
    flip_settings_inside_the_call(model)
    np.testing.assert_array_equal(model.similarity(a, b), reference.similarity(a, b))
    assert (model.normalize, model.max_length, model.contrast) == (False, 2, 3.0)
    model = make_model(max_length=512, contrast=1.0)
    flip_settings_inside_the_call(model)
    np.testing.assert_array_equal(model.encode(a + b, batch_size=2), reference.encode(a + b, batch_size=2))


def test_max_length_none_means_the_models_setting_everywhere():
    texts = ["the cat sat on the mat in the bank by the river", "unbelievable playing", ""]
    model = make_model(max_length=3, contrast=1.0)
    three = model.encode(texts, max_length=3)
    np.testing.assert_array_equal(model.encode(texts), three)
    np.testing.assert_array_equal(model.encode(texts, max_length=None), three)
    assert not np.array_equal(model.encode(texts, max_length=100), three)
    assert [len(t) for t in model.tokenize(texts, max_length=None)] == [3, 3, 0]
    assert [len(s) for s in model.encode_as_sequence(texts, max_length=None)] == [3, 3, 0]
    np.testing.assert_allclose(model.similarity(texts[:2], three[:2]), model.similarity(three[:2], three[:2]),
                               atol=1e-6)
    model.max_length = None  # the model's own None: every token
    every = [len(t) for t in model.tokenize(texts, max_length=None)]
    assert every == [len(t) for t in model.tokenize(texts, max_length=100)] and every[0] > 3
    np.testing.assert_array_equal(model.encode(texts, max_length=None), model.encode(texts, max_length=100))


def test_concurrent_setters_lose_no_change_and_pickles_keep_the_settings():
    model = make_model()

    def toggle(name: str, values: tuple) -> None:
        for k in range(2000):
            setattr(model, name, values[k % 2])

    threads = [threading.Thread(target=toggle, args=args)
               for args in (("normalize", (True, False)), ("max_length", (5, 7)), ("contrast", (2.0, 0.5)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (model.normalize, model.max_length, model.contrast) == (False, 7, 0.5)
    clone = pickle.loads(pickle.dumps(model))
    assert (clone.normalize, clone.max_length, clone.contrast) == (False, 7, 0.5)
    old = model.__getstate__()  # as pickled when each setting was its own attribute
    settings = old.pop("_settings")
    old.update(_normalize=settings.normalize, _max_length=settings.max_length, _contrast=settings.contrast)
    restored = StaticModel.__new__(StaticModel)
    restored.__setstate__(old)
    assert repr(restored) == repr(model)


# ------------------------------------------------------------------ many threads, one model
def serving_batches() -> list[list[str]]:
    long_text = " ".join(["the cat sat on the mat"] * 150)  # 900 tokens: max_length cuts it
    words = made_up_words(4000, 7)
    batches = []
    for k in range(10):
        fresh = " ".join(words[k * 400 : k * 400 + 400])  # new chunks: the cache keeps merging
        batches.append([f"the cat {k}", "café Café CAFÉ 日本 😀 é", "", fresh, long_text, "bank " * k, "x" * 150,
                        "[MASK] the dog", " ".join(words[(k * 37) % 3900 :][:40])])
    return batches


def test_eight_threads_match_one_thread_while_settings_and_budget_change():
    batches = serving_batches()
    combos = [tuple(s.values()) for s in SETTINGS]
    expected = {}
    for settings in SETTINGS:
        single = make_model(**settings)
        key = tuple(settings.values())
        expected[key] = ([single.encode(b) for b in batches], single.similarity(batches[0], batches[1]))
    tokens = {m: [make_model(max_length=m).tokenize(b) for b in batches] for m in (512, 6)}
    for a, b in itertools.combinations(combos, 2):  # each setting shows: a mix would match none
        assert not np.array_equal(expected[a][0][0], expected[b][0][0])

    model = make_model(**SETTINGS[0])
    done = threading.Event()
    failures: list[str] = []

    def change_settings() -> None:
        rng = np.random.default_rng(3)
        while not done.is_set():
            name = str(rng.choice(["normalize", "max_length", "contrast", "cache_bytes", "cache_bytes"]))
            values = {"normalize": (True, False), "max_length": (512, 6), "contrast": (0.0, 1.0),
                      "cache_bytes": (0, 20_000, 200_000, 64 << 20)}[name]
            setattr(model, name, values[rng.integers(len(values))])

    def serve(worker: int) -> None:
        rng = np.random.default_rng(worker)
        for _ in range(25):
            k = int(rng.integers(len(batches)))
            op = int(rng.integers(3))
            if op == 0:
                got = model.encode(batches[k])
                if not any(np.array_equal(got, expected[c][0][k]) for c in combos):
                    failures.append(f"encode batch {k}")
            elif op == 1:
                ids = [t.tolist() for t in model.tokenize(batches[k])]
                if not any(ids == [t.tolist() for t in tokens[m][k]] for m in tokens):
                    failures.append(f"tokenize batch {k}")
            else:
                sims = model.similarity(batches[0], batches[1])
                if not any(np.allclose(sims, expected[c][1], rtol=0, atol=1e-6) for c in combos):
                    failures.append("similarity mixed settings")

    setter = threading.Thread(target=change_settings)
    setter.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(serve, range(8)))
    finally:
        done.set()
        setter.join()
    assert failures == []
    model.cache_bytes = 20_000
    assert model.cache_info().bytes <= 20_000
