"""Our folders load in sentence-transformers and Model2Vec with the same vectors, and we read Model2Vec's."""

from __future__ import annotations

import numpy as np
import pytest

from static_model import StaticModel

TEXTS = ["the cat sat on the mat", "a dog runs fast.", "unbelievable playing!", "bank river money tax law"]
REAL_TEXTS = [
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog!",
    "Static embeddings are hundreds of times faster than transformers.",
    "Where is the nearest train station?",
]


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_sentence_transformers_loads_our_folder(tiny_model, tmp_path, dtype):
    from sentence_transformers import SentenceTransformer

    tiny_model.save_pretrained(tmp_path / "m", dtype=dtype)
    ours = StaticModel.from_pretrained(tmp_path / "m").encode(TEXTS)
    theirs = SentenceTransformer(str(tmp_path / "m"), device="cpu").encode(TEXTS)
    # sentence-transformers averages a float16 table in float16; we accumulate in float32.
    np.testing.assert_allclose(theirs, ours, atol=1e-5 if dtype != "float16" else 1e-3)


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_model2vec_loads_our_folder(tiny_model, tmp_path, dtype):
    from model2vec import StaticModel as Model2VecModel

    tiny_model.save_pretrained(tmp_path / "m", dtype=dtype)
    ours = StaticModel.from_pretrained(tmp_path / "m").encode(TEXTS)
    theirs = Model2VecModel.from_pretrained(tmp_path / "m").encode(TEXTS)
    np.testing.assert_allclose(np.asarray(theirs, dtype=np.float32), ours, atol=1e-3)


def test_we_load_model2vec_folders(tiny_table, wordpiece_tokenizer, tmp_path):
    from model2vec import StaticModel as Model2VecModel

    weights = np.linspace(0.5, 1.5, len(tiny_table)).astype(np.float32)
    theirs = Model2VecModel(tiny_table, wordpiece_tokenizer, normalize=True, weights=weights)
    theirs.save_pretrained(str(tmp_path / "m2v"))
    ours = StaticModel.from_pretrained(tmp_path / "m2v")
    assert ours.normalize and ours.max_length == 512
    np.testing.assert_allclose(ours.encode(TEXTS), theirs.encode(TEXTS), atol=1e-5)


def test_we_load_sentence_transformers_static_embedding(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import StaticEmbedding

    module = StaticEmbedding(tiny_model.tokenizer, embedding_weights=tiny_model.embedding_matrix())
    SentenceTransformer(modules=[module], device="cpu").save(str(tmp_path / "st"))
    ours = StaticModel.from_pretrained(tmp_path / "st")
    np.testing.assert_allclose(ours.encode(TEXTS, normalize=False), tiny_model.encode(TEXTS, normalize=False),
                               atol=1e-6)


def test_real_sized_model_in_both_directions(minilm_input_model, tmp_path):
    from model2vec import StaticModel as Model2VecModel
    from sentence_transformers import SentenceTransformer

    minilm_input_model.save_pretrained(tmp_path / "real", dtype="float16")
    ours = StaticModel.from_pretrained(tmp_path / "real")
    expected = ours.encode(REAL_TEXTS)
    st_vectors = SentenceTransformer(str(tmp_path / "real"), device="cpu").encode(REAL_TEXTS)
    np.testing.assert_allclose(st_vectors, expected, atol=1e-3)
    m2v = Model2VecModel.from_pretrained(tmp_path / "real")
    np.testing.assert_allclose(np.asarray(m2v.encode(REAL_TEXTS), dtype=np.float32), expected, atol=1e-3)
    m2v.save_pretrained(str(tmp_path / "back"))
    np.testing.assert_allclose(StaticModel.from_pretrained(tmp_path / "back").encode(REAL_TEXTS), expected, atol=1e-3)


@pytest.mark.parametrize("quantize_to", ["int8", "float16", "float32", "float64"])
@pytest.mark.parametrize("normalize", [True, False])
def test_we_load_every_dtype_model2vec_writes(tiny_model, tmp_path, quantize_to, normalize):
    """Issue 20 item 9: Model2Vec re-saving our folder keeps our ``dtype`` key and adds ``embedding_dtype``."""
    from model2vec import StaticModel as Model2VecModel

    tiny_model.normalize = normalize
    tiny_model.save_pretrained(tmp_path / "ours")
    theirs = Model2VecModel.from_pretrained(tmp_path / "ours", quantize_to=quantize_to, normalize=normalize)
    theirs.save_pretrained(str(tmp_path / "m2v"))
    ours = StaticModel.from_pretrained(tmp_path / "m2v")
    expected = np.asarray(theirs.encode(TEXTS), dtype=np.float32)
    np.testing.assert_allclose(ours.encode(TEXTS), expected, atol=1e-5 if quantize_to != "float16" else 2e-3)
    assert ours.dtype == {"float64": "float32"}.get(quantize_to, quantize_to)


@pytest.mark.parametrize("quantize_to", [None, "int8", "float16"])
def test_we_load_model2vec_vocabulary_quantization(minilm_input_model, tmp_path, quantize_to):
    """Model2Vec's ``vocabulary_quantization`` stores cluster rows, per-token weights and a token → row mapping."""
    from model2vec import StaticModel as Model2VecModel

    small = minilm_input_model.truncate_dims(32)
    small.save_pretrained(tmp_path / "ours")
    theirs = Model2VecModel.from_pretrained(tmp_path / "ours", vocabulary_quantization=64, quantize_to=quantize_to)
    theirs.save_pretrained(str(tmp_path / "m2v"))
    assert theirs.token_mapping is not None and len(theirs.embedding) == 64
    ours = StaticModel.from_pretrained(tmp_path / "m2v")
    assert ours.vocab_size == small.vocab_size
    expected = np.asarray(theirs.encode(REAL_TEXTS), dtype=np.float32)
    np.testing.assert_allclose(ours.encode(REAL_TEXTS), expected, atol=1e-5 if quantize_to != "float16" else 2e-3)


def test_we_load_model2vec_dimensionality_reduction(tiny_model, tmp_path):
    """Model2Vec keeps our ``dim`` key when it cuts dimensions; its ``embedding_dtype`` marks the folder as its own."""
    from model2vec import StaticModel as Model2VecModel

    tiny_model.save_pretrained(tmp_path / "ours")
    theirs = Model2VecModel.from_pretrained(tmp_path / "ours", dimensionality=4)
    theirs.save_pretrained(str(tmp_path / "m2v"))
    ours = StaticModel.from_pretrained(tmp_path / "m2v")
    assert ours.dim == 4
    np.testing.assert_allclose(ours.encode(TEXTS), np.asarray(theirs.encode(TEXTS), dtype=np.float32), atol=1e-5)
