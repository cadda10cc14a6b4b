"""Contrast pooling: each token row weighted by exp(-c * cos(row, the text's plain mean))."""

from __future__ import annotations

import json

import numpy as np
import pytest

from static_model import StaticModel, pooling


def contrast_weights(rows: np.ndarray, contrast: float) -> np.ndarray:
    """The per-token weights that contrast pooling gives one text's rows ``(n, dim)``: ``exp(-contrast * cos(r_t,
    mean))`` (the numpy definition the kernel is tested against; all ones for one row, a zero mean or
    ``contrast=0``)."""
    rows = np.asarray(rows, dtype=np.float64)
    mean = rows.mean(0) if len(rows) else np.zeros(rows.shape[1])
    m_norm, r_norm = np.linalg.norm(mean), np.linalg.norm(rows, axis=1)
    if contrast == 0 or len(rows) < 2 or m_norm == 0:
        return np.ones(len(rows))
    cos = np.divide(rows @ mean, r_norm * m_norm, out=np.zeros(len(rows)), where=r_norm > 0)
    return np.exp(-contrast * cos)


TEXTS = ["the cat sat on the mat", "a dog runs fast on the river bank", "hello", "", "money tax law law law", "日本"]


def _reference(model: StaticModel, texts, contrast: float, normalize: bool) -> np.ndarray:
    """The numpy definition: rows, their contrast weights, the weighted mean (or its unit vector)."""
    out = np.zeros((len(texts), model.dim))
    for i, rows in enumerate(model.encode_as_sequence(list(texts))):
        if len(rows) == 0:
            continue
        w = contrast_weights(rows, contrast)
        v = (w[:, None] * rows.astype(np.float64)).sum(0) / w.sum()
        out[i] = v / np.linalg.norm(v) if normalize else v
    return out


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("parallel", [False, True])
def test_kernel_matches_the_numpy_definition(tiny_model, dtype, normalize, parallel, monkeypatch):
    if parallel:
        monkeypatch.setattr(pooling, "PARALLEL_MIN_TOKENS", 0)
    model = tiny_model.quantize(dtype)
    got = model.encode(TEXTS, contrast=1.5, normalize=normalize)
    np.testing.assert_allclose(got, _reference(model, TEXTS, 1.5, normalize), atol=2e-6)
    assert np.all(np.isfinite(got))


def test_zero_contrast_is_the_plain_mean(tiny_model):
    plain = tiny_model.encode(TEXTS)
    assert tiny_model.contrast == 0.0  # no "contrast" in the config: Model2Vec's plain mean
    np.testing.assert_array_equal(tiny_model.encode(TEXTS, contrast=0), plain)
    assert not np.allclose(tiny_model.encode(TEXTS, contrast=2.0)[:2], plain[:2])


def test_contrast_weights_rows_that_point_away_from_the_mean(tiny_model):
    rows = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
    w = contrast_weights(rows, 2.0)
    assert w[2] > w[0] and w[2] > w[1]  # the odd one out counts most
    np.testing.assert_array_equal(contrast_weights(rows[:1], 2.0), [1.0])  # one row: nothing to contrast
    np.testing.assert_array_equal(contrast_weights(rows, 0.0), np.ones(3))
    one_token = tiny_model.encode(["hello"], contrast=3.0)
    np.testing.assert_allclose(one_token, tiny_model.encode(["hello"]), atol=1e-7)


def test_zero_rows_and_opposite_rows_give_no_nan(tiny_table, wordpiece_tokenizer):
    table = tiny_table.copy()
    cat, dog = wordpiece_tokenizer.token_to_id("cat"), wordpiece_tokenizer.token_to_id("dog")
    table[dog] = -table[cat]  # "cat dog": the plain mean is zero
    table[wordpiece_tokenizer.token_to_id("mat")] = 0.0  # a zero row
    model = StaticModel(table, wordpiece_tokenizer, config={"normalize": True, "contrast": 1.5})
    vecs = model.encode(["cat dog", "mat", "the mat", "cat dog mat"])
    assert np.all(np.isfinite(vecs))
    np.testing.assert_array_equal(vecs[:2], 0.0)
    np.testing.assert_allclose(vecs[2], model.encode("the"), atol=1e-6)  # a zero row adds nothing


def test_contrast_is_saved_loaded_and_kept_by_copies(tiny_table, wordpiece_tokenizer, tmp_path):
    model = StaticModel(tiny_table, wordpiece_tokenizer, config={"normalize": True}, contrast=1.5)
    model.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["contrast"] == 1.5
    loaded = StaticModel.from_pretrained(tmp_path / "m")
    assert loaded.contrast == 1.5
    np.testing.assert_allclose(loaded.encode(TEXTS), model.encode(TEXTS), atol=1e-6)
    for copy in (model.quantize("float16"), model.truncate_dims(4)):
        assert copy.contrast == 1.5
    model.contrast = 0
    np.testing.assert_array_equal(model.encode(TEXTS), model.encode(TEXTS, contrast=0.0))


@pytest.mark.parametrize("bad, error", [(-0.5, ValueError), (float("nan"), ValueError), (51, ValueError),
                                        ("1", TypeError), (True, TypeError), (None, TypeError)])
def test_bad_contrast_is_refused_with_its_name(tiny_model, tiny_table, wordpiece_tokenizer, bad, error):
    if bad is not None:
        with pytest.raises(error, match="contrast"):
            tiny_model.encode(["the cat"], contrast=bad)
        with pytest.raises(error, match="contrast"):
            StaticModel(tiny_table, wordpiece_tokenizer, contrast=bad)
    with pytest.raises(error, match="contrast"):
        StaticModel(tiny_table, wordpiece_tokenizer, config={"contrast": bad})
    with pytest.raises(error, match="contrast"):
        tiny_model.contrast = bad


def test_pool_needs_norms_for_contrast(tiny_table):
    out = np.empty((1, tiny_table.shape[1]), dtype=np.float32)
    ids, offsets = np.array([5, 6], dtype=np.int32), np.array([0, 2], dtype=np.int64)
    with pytest.raises(ValueError, match="norms"):
        pooling.pool(tiny_table, np.ones(len(tiny_table), np.float32), ids, offsets, out, normalize=True, contrast=1.0)


@pytest.mark.parametrize("stored", ["float32", "float16", "int8"])
@pytest.mark.parametrize("dim", [16, 100, 384])
def test_a_vector_does_not_depend_on_where_the_scratch_buffer_lies(dim, stored):
    """The kernel's scratch row right after ``out``'s row in memory, or far from it: the same bits. (A fastmath loop
    that copied ``out`` into the scratch while summing it was vectorized behind a run-time overlap check; adjacent
    buffers took the scalar path and rounded differently: 64 of 600 of these segments, and under load 8 threads
    on one model got vectors that differed from a single thread's in the last bit.)"""
    rng = np.random.default_rng(dim)
    values = rng.standard_normal((3000, dim)).astype(np.float32)
    weights = rng.uniform(0.5, 2.0, len(values)).astype(np.float32)
    table = (values * 40).astype(np.int8) if stored == "int8" else values.astype(stored)
    norms = np.linalg.norm(table.astype(np.float32) * weights[:, None], axis=1).astype(np.float32)
    if stored == "float16":
        table = table.view(np.uint16)  # how pool() hands a float16 table to the kernel
    lut = np.zeros(1, np.float32)
    for _ in range(200):
        n = int(rng.integers(2, 40))
        ids = rng.integers(0, len(table), n).astype(np.int32)
        memory = np.zeros(2 * dim, np.float32)
        out, scratch = memory[:dim].reshape(1, dim), memory[dim:]  # the scratch starts where out's row ends
        far_out, far_scratch = np.zeros((1, dim), np.float32), np.zeros(dim, np.float32)
        for o, s in ((out, scratch), (far_out, far_scratch)):
            pooling._pool_segment(table, lut, weights, norms, ids, 0, n, True, 1.0, o, 0, s)
        np.testing.assert_array_equal(out, far_out)
