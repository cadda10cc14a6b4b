"""Audit of the table storage variants: quantize chains, int8/float16 precision, truncate_dims, save/load round trips
with weights and token mappings."""

from __future__ import annotations

import numpy as np
import pytest

from distill import quantize_vocabulary
from static_model import StaticModel

TEXTS = ["the cat sat on the mat", "a dog runs fast.", "unbelievable playing!", "bank river money tax law", "zzz"]
CHAINS = [["float16", "int8", "float32"], ["int8", "int8", "int8"], ["int8", "float32", "int8"], ["int8", "float16"]]


def _relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.fixture
def weighted(tiny_table, wordpiece_tokenizer):
    weights = np.random.default_rng(1).uniform(-3.0, 3.0, len(tiny_table)).astype(np.float32)
    return StaticModel(tiny_table, wordpiece_tokenizer, weights=weights)


# --------------------------------------------------------------------------- float16 of subnormal rows


def test_float16_refuses_rows_it_would_round_worse_than_int8(tiny_table, wordpiece_tokenizer, tmp_path):
    """Rows of about 1e-6 (a valid model: the weights carry the magnitude) went to float16 silently, every value a
    subnormal with steps of 6e-8: encode moved by 1.3% (1e-7: 13%) where int8 moves it by 0.4%."""
    weights = np.full(len(tiny_table), 1e5, dtype=np.float32)
    small = StaticModel(tiny_table * 1e-6, wordpiece_tokenizer, weights=weights)
    problem = r"dtype='float16': row \d+ is nonzero but its largest magnitude, .* is below 7.57e-06 .*more than int8"
    with pytest.raises(ValueError, match=problem):
        small.quantize("float16")
    with pytest.raises(ValueError, match=problem):
        small.save_pretrained(tmp_path / "m", dtype="float16")
    assert not (tmp_path / "m").exists()
    # the advice works: int8 keeps each row's scale
    assert _relative_error(small.quantize("int8").encode(TEXTS), small.encode(TEXTS)) < 6e-3
    # int8 rows times their scale, folded in, are checked the same way
    folded = StaticModel(tiny_table * 1e-6, wordpiece_tokenizer).quantize("int8")
    with pytest.raises(ValueError, match=r"times its weights .* is below 7.57e-06.*Keep the model int8"):
        folded.quantize("float16")
    # rows down to the bound still store, within int8's error
    fine = StaticModel(tiny_table / np.abs(tiny_table).max(axis=1, keepdims=True) * 8e-6, wordpiece_tokenizer,
                       weights=weights)
    assert _relative_error(fine.quantize("float16").encode(TEXTS), fine.encode(TEXTS)) < 6e-3


# --------------------------------------------------------------------------- chains: weights applied once


@pytest.mark.parametrize("chain", CHAINS, ids="-".join)
def test_quantize_chains_stay_within_int8_error(weighted, chain):
    want = weighted.encode(TEXTS)
    model = weighted
    for dtype in chain:
        model = model.quantize(dtype)
    assert model.dtype == chain[-1]
    assert _relative_error(model.encode(TEXTS), want) < 6e-3  # measured 0.0036-0.0039; a double weight would be ~1


def test_int8_again_is_the_same_model(weighted):
    once = weighted.quantize("int8")
    twice = once.quantize("int8").quantize("int8")
    np.testing.assert_array_equal(twice.embeddings, once.embeddings)
    np.testing.assert_array_equal(twice.weights, once.weights)


@pytest.mark.parametrize("chain", CHAINS, ids="-".join)
def test_mapping_chains_keep_the_rows_shared_and_the_weights_once(weighted, chain):
    quantized = quantize_vocabulary(weighted, 5)
    want = quantized.encode(TEXTS)
    model = quantized
    for dtype in chain:
        model = model.quantize(dtype)
    assert len(model.embeddings) == 5
    np.testing.assert_array_equal(model.token_mapping, quantized.token_mapping)
    assert _relative_error(model.encode(TEXTS), want) < 6e-3


@pytest.mark.parametrize("make", ["plain", "mapping"])
def test_int8_save_load_float32_save_load_keeps_the_vectors(weighted, tmp_path, make):
    model = weighted if make == "plain" else quantize_vocabulary(weighted, 5)
    model.save_pretrained(tmp_path / "a", dtype="int8")
    first = StaticModel.from_pretrained(tmp_path / "a")
    first.save_pretrained(tmp_path / "b", dtype="float32")
    second = StaticModel.from_pretrained(tmp_path / "b")
    assert (first.dtype, second.dtype) == ("int8", "float32")
    np.testing.assert_allclose(second.encode(TEXTS), first.encode(TEXTS), rtol=1e-6, atol=1e-6)
    assert _relative_error(second.encode(TEXTS), model.encode(TEXTS)) < 6e-3
    cut = StaticModel.from_pretrained(tmp_path / "b", dims=4, dtype="int8")
    assert _relative_error(cut.encode(TEXTS), model.truncate_dims(4).encode(TEXTS)) < 1e-2


# --------------------------------------------------------------------------- truncate_dims


def test_truncate_dims_of_int8_and_normalized_models(tiny_table, wordpiece_tokenizer):
    model = StaticModel(tiny_table, wordpiece_tokenizer, config={"normalize": True})
    cut = model.quantize("int8").truncate_dims(4)
    assert cut.normalize and cut.dim == 4
    np.testing.assert_allclose(np.linalg.norm(cut.encode(TEXTS[:-1]), axis=1), 1.0, rtol=1e-5)  # renormalized
    raw = model.truncate_dims(4).encode(TEXTS, normalize=False)
    assert _relative_error(cut.encode(TEXTS, normalize=False), raw) < 1e-2


@pytest.mark.parametrize("dims", [0, -1, 9, True, 2.0, None, "4"])
def test_bad_dims_are_clear_errors(tiny_model, dims):
    with pytest.raises(ValueError, match="dims"):
        tiny_model.truncate_dims(dims)


@pytest.mark.parametrize("dtype", ["Float16", "fp16", "bfloat16", "float64", "int4", None, 3])
def test_bad_dtypes_are_clear_errors(tiny_model, dtype, tmp_path):
    with pytest.raises(ValueError, match="dtype must be one of float32, float16, int8"):
        tiny_model.quantize(dtype)
    if dtype is None:  # save_pretrained(dtype=None): the model's own dtype
        return
    with pytest.raises(ValueError, match="dtype must be one of"):
        tiny_model.save_pretrained(tmp_path / "m", dtype=dtype)
    assert not (tmp_path / "m").exists()


def test_truncate_dims_drops_what_the_clusters_measured_on_every_dimension(weighted, tmp_path):
    """A clustered model's config kept the mean cosine of its tokens to their centres measured on all dimensions
    after truncate_dims (and so did from_pretrained(dims=...)): it cannot be measured again on fewer (the token rows
    are not kept), so it is dropped; the parameters that say how the mapping was made stay."""
    from static_model.model import CLUSTERS_KEY

    clustered = quantize_vocabulary(weighted, 5)
    record = clustered.config[CLUSTERS_KEY]
    assert "mean_cosine_to_centre" in record
    params = {k: v for k, v in record.items() if k != "mean_cosine_to_centre"}
    assert clustered.truncate_dims(clustered.dim).config[CLUSTERS_KEY] == record  # nothing cut: still true
    cut = clustered.truncate_dims(4)
    assert cut.config[CLUSTERS_KEY] == params
    assert clustered.config[CLUSTERS_KEY] == record  # the original keeps its own
    np.testing.assert_array_equal(cut.embedding_matrix(), clustered.embedding_matrix()[:, :4])  # as before
    clustered.save_pretrained(tmp_path / "m")
    loaded = StaticModel.from_pretrained(tmp_path / "m", dims=4)
    assert loaded.config[CLUSTERS_KEY] == params
    loaded.save_pretrained(tmp_path / "cut")
    assert "mean cosine" not in (tmp_path / "cut" / "README.md").read_text()
    assert "mean cosine" in (tmp_path / "m" / "README.md").read_text()
