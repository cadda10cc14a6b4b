"""Memory of one call under load: a call tokenizes its texts in bounded slices (``SLICE_TEXTS`` texts, about
``SLICE_CHARS`` characters), whatever its ``batch_size`` and text lengths, and the vectors and ids do not depend on
the slicing. (One batch's chunk strings take about 18 bytes per character: 4096 documents of 10,000 characters once
held 613 MB besides a 6 MB output, and ``batch_size=10**6`` on a million short texts 781 MB besides 256 MB.)"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from helpers.tokenizers import SPECIAL, WORDS, make_wordpiece_tokenizer

from static_model import StaticModel
from static_model import model as model_module
from static_model.model import SLICE_CHARS, SLICE_TEXTS, _slices

SMALL_CHARS = 1 << 18  # the tests' slice: 256 K characters, so that inputs eight times larger stay fast
SMALL_TEXTS = 1000


def make_model() -> StaticModel:
    table = np.random.default_rng(0).normal(size=(len(SPECIAL) + len(WORDS), 8)).astype(np.float32)
    model = StaticModel(table, make_wordpiece_tokenizer(), config={"normalize": True})
    model.cache_bytes = 0  # only the call's own memory
    return model


def documents(count: int, chars: int) -> list[str]:
    """Distinct documents of about ``chars`` characters of known words."""
    words = "the cat sat on the mat by the river bank with money and tax law ".split()
    rng = np.random.default_rng(0)
    base = " ".join(rng.choice(words, chars // 4))[:chars]
    return [f"{base} {k}" for k in range(count)]


def peak_bytes(call, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
    """What ``call`` returns, and the most memory it held at once besides what it already held (tracemalloc)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = call(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_module, "SLICE_CHARS", SMALL_CHARS)
    monkeypatch.setattr(model_module, "SLICE_TEXTS", SMALL_TEXTS)


@pytest.fixture
def no_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_module, "SLICE_CHARS", 1 << 62)
    monkeypatch.setattr(model_module, "SLICE_TEXTS", 1 << 62)


def test_slices_cover_every_text_once_within_both_bounds():
    long_text, short = "x" * 1_000_000, "a b c"
    texts = [short] * 40_000 + [long_text] * 9 + [""] * 50_000 + ["y" * (2 * SLICE_CHARS)] + [short] * 3
    for batch_size, max_length in ((4096, None), (10**9, None), (10**9, 512), (7, 512)):
        bounds = list(_slices(texts, batch_size, max_length))
        assert bounds[0][0] == 0 and bounds[-1][1] == len(texts)
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        for start, end in bounds:
            assert 0 < end - start <= min(batch_size, SLICE_TEXTS)
            counted = [min(len(t), 32 * max_length) if max_length else len(t) for t in texts[start:end]]
            assert end - start == 1 or sum(counted) <= SLICE_CHARS  # one text alone may be longer
    assert list(_slices([], 4096, None)) == [] and list(_slices([""], 4096, None)) == [(0, 1)]
    assert len(list(_slices(texts, 10**9, 512))) < len(list(_slices(texts, 10**9, None)))  # long texts cut first


def test_a_huge_batch_of_long_documents_holds_one_slice_at_a_time(small_slices):
    model = make_model()
    texts = documents(160, 12_000)  # 1.9 M characters: eight small slices
    model.encode(texts[:2])
    reference = np.vstack([model.encode(texts[k : k + 1], max_length=None) for k in range(len(texts))])
    vectors, held = peak_bytes(model.encode, texts, batch_size=10**9, max_length=None)
    np.testing.assert_array_equal(vectors, reference)
    assert held < 40 * SMALL_CHARS, f"{held / 1e6:.1f} MB held for a {SMALL_CHARS / 1e6:.2f} M character slice"
    ids, held = peak_bytes(model.tokenize, texts, max_length=None)
    assert [t.tolist() for t in ids] == [t.tolist() for k in range(len(texts))
                                         for t in model.tokenize(texts[k : k + 1], max_length=None)]
    assert held - sum(t.nbytes for t in ids) < 40 * SMALL_CHARS
    sequences, held = peak_bytes(model.encode_as_sequence, texts[:40], max_length=None)
    assert [len(s) for s in sequences] == [len(t) for t in ids[:40]]
    assert held - sum(s.nbytes for s in sequences) < 40 * SMALL_CHARS


def test_a_huge_batch_of_short_texts_holds_one_slice_at_a_time(small_slices):
    model = make_model()
    texts = [f"the cat sat on the mat {k % 3} by the river bank" for k in range(12_000)]
    model.encode(texts[:2])
    vectors, held = peak_bytes(model.encode, texts, batch_size=10**9)
    np.testing.assert_array_equal(vectors, model.encode(texts, batch_size=100))
    extra = held - vectors.nbytes
    # the per-text lengths (16 bytes a text) and one slice's work (about 1 KB a text), not every text's at once
    assert extra < 16 * len(texts) + 2000 * SMALL_TEXTS, f"{extra / 1e6:.2f} MB besides the vectors"


def test_the_slicing_changes_no_vector_or_id(no_slices):
    model = make_model()
    texts = documents(30, 40_000) + ["", "café 日本 😀", "[MASK] the cat", "x" * 150] * 5
    unsliced = model.encode(texts, max_length=None), model.tokenize(texts, max_length=700)
    model_module.SLICE_CHARS, model_module.SLICE_TEXTS = 50_000, 7  # restored by the fixture
    np.testing.assert_array_equal(model.encode(texts, max_length=None), unsliced[0])
    assert [t.tolist() for t in model.tokenize(texts, max_length=700)] == [t.tolist() for t in unsliced[1]]
    np.testing.assert_array_equal(model.encode(texts, max_length=None, workers=2), unsliced[0])
