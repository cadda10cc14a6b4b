"""static_model.pooling.l2_normalize: the one L2 normalisation (the runtime's similarity, distill compare, the
benchmarks' cosines)."""

from __future__ import annotations

import numpy as np
import pytest

from static_model.pooling import l2_normalize


def test_rows_get_unit_norm_and_a_zero_row_stays_zero():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]], dtype=np.float32)
    out = l2_normalize(x)
    assert out.dtype == np.float32 and out is not x
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]], rtol=1e-6)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(x[0], [3.0, 4.0])  # the input is untouched


def test_one_vector_and_integer_input():
    np.testing.assert_allclose(l2_normalize(np.array([0.0, 2.0], dtype=np.float16)), [0.0, 1.0])
    out = l2_normalize(np.array([[1, 1]]))
    assert out.dtype == np.float64 and out[0, 0] == pytest.approx(2**-0.5)


def test_the_runtime_and_the_benchmarks_share_it(tiny_model):
    from benchmarks.quality.metrics import paired_cosine

    a, b = tiny_model.encode(["the cat sat", "hello world"]), tiny_model.encode(["a dog runs", "the mat"])
    cos = paired_cosine(a, b)
    np.testing.assert_allclose(cos, np.diag(tiny_model.similarity(["the cat sat", "hello world"],
                                                                    ["a dog runs", "the mat"])), atol=1e-6)
    assert paired_cosine(np.zeros((1, 8)), a[:1])[0] == 0.0


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_huge_and_tiny_rows_are_normalized_not_zeroed(dtype):
    """The squares of the norm overflowed (float32 rows of 1e20, float16 rows past 256) or underflowed (1e-25): the
    rows came back as zero vectors, so ``similarity`` of a caller's vectors gave 0 instead of their cosine."""
    info = np.finfo(dtype)
    base = np.array([[3.0, 4.0, 0.0], [1.0, -2.0, 2.0]])
    for factor in (float(info.max) / 8, float(info.tiny) * 4, 1.0):
        x = (base * factor).astype(dtype)
        out = l2_normalize(x)
        assert out.dtype == dtype and np.isfinite(out).all()
        atol = 2e-3 if dtype == np.float16 else 1e-6
        np.testing.assert_allclose(out.astype(np.float64), l2_normalize(base), atol=atol)


def test_a_row_with_nan_or_no_columns():
    assert l2_normalize(np.zeros((2, 0), dtype=np.float32)).shape == (2, 0)
    out = l2_normalize(np.array([[np.nan, 1.0], [0.0, 2.0]], dtype=np.float32))
    np.testing.assert_array_equal(out, [[0.0, 0.0], [0.0, 1.0]])


def test_similarity_of_a_callers_huge_vectors_is_their_cosine(tiny_model):
    v = tiny_model.encode(["the cat sat", "a dog runs"])
    np.testing.assert_allclose(tiny_model.similarity(v * np.float32(1e20), v), tiny_model.similarity(v, v), atol=1e-5)
