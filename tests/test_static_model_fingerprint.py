"""static_model.fingerprint.model_fingerprint: equal for equal models (also after a save and a load), different as
soon as anything that changes the output vectors differs (the token mapping of a vocabulary-quantized model too)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.tokenizers import WORDS, make_wordpiece_tokenizer

from static_model import StaticModel
from static_model.fingerprint import model_fingerprint


def mapped_model(tiny_table: np.ndarray, tokenizer, *, shift: int = 0, weight: float = 1.0) -> StaticModel:
    """A vocabulary-quantized model: 4 cluster rows, token ``t`` -> row ``(t + shift) % 4``, all weights ``weight``."""
    n = len(tiny_table)
    return StaticModel(tiny_table[:4].copy(), tokenizer, token_mapping=((np.arange(n) + shift) % 4).astype(np.int32),
                       weights=np.full(n, weight, dtype=np.float32), config={"normalize": True})


def test_models_differing_only_in_their_mapping_differ(tiny_table, wordpiece_tokenizer):
    a = mapped_model(tiny_table, wordpiece_tokenizer)
    b = mapped_model(tiny_table, wordpiece_tokenizer, shift=1)
    assert np.array_equal(a.embeddings, b.embeddings) and np.array_equal(a.weights, b.weights)
    assert not np.allclose(a.encode(["the cat"]), b.encode(["the cat"]))  # really another model
    assert model_fingerprint(a) != model_fingerprint(b)
    assert model_fingerprint(a) == model_fingerprint(mapped_model(tiny_table, wordpiece_tokenizer))


def test_equal_after_a_save_and_a_load(tmp_path, tiny_table, wordpiece_tokenizer):
    plain = StaticModel(tiny_table, wordpiece_tokenizer, config={"normalize": True})
    models = {"plain": plain, "int8": StaticModel(tiny_table, wordpiece_tokenizer).quantize("int8"),
              "mapped": mapped_model(tiny_table, wordpiece_tokenizer, weight=0.5)}
    for name, model in models.items():
        model.save_pretrained(tmp_path / name)
        assert model_fingerprint(StaticModel.from_pretrained(tmp_path / name)) == model_fingerprint(model), name
    assert len({model_fingerprint(m) for m in models.values()}) == 3


@pytest.mark.parametrize("change", ["weights", "table", "dtype", "tokenizer", "normalize", "max_length", "contrast"])
def test_every_thing_that_changes_the_vectors_changes_it(tiny_table, wordpiece_tokenizer, change):
    base = mapped_model(tiny_table, wordpiece_tokenizer)
    other = mapped_model(tiny_table, wordpiece_tokenizer)
    if change == "weights":
        other = mapped_model(tiny_table, wordpiece_tokenizer, weight=2.0)
    elif change == "table":
        other = mapped_model(tiny_table * 1.5, wordpiece_tokenizer)
    elif change == "dtype":
        base = StaticModel(tiny_table, wordpiece_tokenizer)
        other = StaticModel(tiny_table.astype(np.float16), wordpiece_tokenizer)
    elif change == "tokenizer":
        other = mapped_model(tiny_table, make_wordpiece_tokenizer(WORDS[::-1]))  # the same size, other ids
    elif change == "normalize":
        other.normalize = False
    elif change == "max_length":
        other.max_length = 3
    else:
        other.contrast = 2.0
    assert model_fingerprint(base) != model_fingerprint(other)
