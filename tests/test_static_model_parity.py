"""The calls a user switching from Model2Vec or sentence-transformers makes: the ones we share give the same vectors
and shapes as Model2Vec's, the settings Model2Vec's ``from_pretrained`` takes are taken with its meaning, and another
library's option we do not take is Python's ``TypeError`` naming it (``dims=`` and ``dtype=`` do what Model2Vec's
``dimensionality=`` and ``quantize_to=`` do)."""

from __future__ import annotations

import numpy as np
import pytest

from static_model import StaticModel

TEXTS = ["the cat sat on the mat", "a dog runs fast.", "unbelievable playing!", "bank river money tax law", "", "zzz"]
LONG = "the cat sat on the mat on the dog runs fast"  # 11 known tokens


@pytest.fixture
def folder(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def _model2vec(folder, **kwargs):
    from model2vec import StaticModel as Model2VecModel

    return Model2VecModel.from_pretrained(folder, **kwargs)


def test_shared_calls_give_model2vec_vectors_shapes_and_ids(folder):
    ours, theirs = StaticModel.from_pretrained(folder), _model2vec(folder)
    for texts in (TEXTS, tuple(TEXTS), np.array(TEXTS), TEXTS[0]):
        mine = ours.encode(texts)
        assert mine.dtype == np.float32
        np.testing.assert_allclose(mine, theirs.encode(texts), atol=1e-6)
    np.testing.assert_allclose(ours.encode(TEXTS, normalize=False), theirs.encode(TEXTS, normalize=False), atol=1e-6)
    assert ours.encode([]).shape == (0, ours.dim)  # Model2Vec 0.10 fails on [] ("need at least one array")
    assert [t.tolist() for t in ours.tokenize(TEXTS)] == theirs.tokenize(TEXTS)
    for mine, reference in zip(ours.encode_as_sequence(TEXTS), theirs.encode_as_sequence(TEXTS), strict=True):
        assert mine.shape == reference.shape
        np.testing.assert_allclose(mine, reference, atol=1e-6)
    assert ours.dim == theirs.dim and ours.normalize == theirs.normalize and ours.max_length == theirs.max_length


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("max_length", [None, 3])
def test_from_pretrained_takes_normalize_and_max_length_as_model2vec_does(folder, normalize, max_length):
    ours = StaticModel.from_pretrained(folder, normalize=normalize, max_length=max_length)
    theirs = _model2vec(folder, normalize=normalize, max_length=max_length)
    assert (ours.normalize, ours.max_length) == (theirs.normalize, theirs.max_length) == (normalize, max_length)
    assert [len(ids) for ids in ours.tokenize([LONG])] == [11 if max_length is None else 3]
    if max_length is None:
        np.testing.assert_allclose(ours.encode([LONG, *TEXTS]), theirs.encode([LONG, *TEXTS]), atol=1e-6)
    else:  # Model2Vec first cuts a text at max_length x its median token length in characters (here "the cat s":
        # 2 tokens); we keep the first max_length tokens, as the constructor's setting does
        built = StaticModel(ours.embeddings, ours.tokenizer, weights=ours.weights, normalize=normalize, max_length=3)
        np.testing.assert_array_equal(ours.encode([LONG, *TEXTS]), built.encode([LONG, *TEXTS]))
        rows = ours.embedding_matrix()[ours.tokenize([LONG])[0]].mean(axis=0)
        np.testing.assert_allclose(ours.encode(LONG, normalize=False), rows, atol=1e-6)


def test_from_pretrained_without_settings_keeps_the_folders(tiny_model, tmp_path):
    tiny_model.max_length = 4
    tiny_model.normalize = False
    tiny_model.save_pretrained(tmp_path / "m")
    loaded = StaticModel.from_pretrained(tmp_path / "m")
    assert (loaded.normalize, loaded.max_length) == (False, 4)
    # max_length=None at load time is every token (Model2Vec's encode(max_length=None)); in encode it means the
    # model's setting, so a loaded model with max_length=None is how to get every token by default
    every = StaticModel.from_pretrained(tmp_path / "m", max_length=None)
    assert [len(ids) for ids in loaded.tokenize([LONG], max_length=None)] == [4]
    assert [len(ids) for ids in every.tokenize([LONG])] == [11]
    np.testing.assert_allclose(every.encode([LONG]), _model2vec(tmp_path / "m").encode([LONG], max_length=None),
                               atol=1e-6)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"normalize": "yes"}, TypeError, "normalize must be True or False"),
    ({"normalize": 1}, TypeError, "normalize must be True or False"),
    ({"max_length": 0}, ValueError, "max_length must be a positive integer"),
    ({"max_length": "512"}, ValueError, "max_length must be a positive integer"),
])
def test_from_pretrained_checks_its_settings_before_reading_the_folder(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        StaticModel.from_pretrained(tmp_path / "no such folder", **kwargs)


def test_another_librarys_load_option_is_pythons_type_error_naming_it(tmp_path):
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'quantize_to'"):
        StaticModel.from_pretrained(tmp_path / "no such folder", quantize_to="float16")


def test_the_suggested_load_options_do_what_model2vecs_do(folder):
    ours = StaticModel.from_pretrained(folder, dims=4, dtype="float16")
    theirs = _model2vec(folder, dimensionality=4, quantize_to="float16")
    assert (ours.dim, ours.dtype) == (theirs.dim, str(theirs.embedding.dtype)) == (4, "float16")
    np.testing.assert_allclose(ours.encode(TEXTS), np.asarray(theirs.encode(TEXTS), dtype=np.float32), atol=2e-3)


def test_sentence_transformers_dimension_getters(tiny_model):
    assert tiny_model.get_embedding_dimension() == tiny_model.get_sentence_embedding_dimension() == tiny_model.dim
    assert tiny_model.encode(TEXTS).shape[1] == tiny_model.get_sentence_embedding_dimension()
    assert tiny_model.truncate_dims(3).get_embedding_dimension() == 3


def test_similarity_of_vectors_not_in_one_array_says_to_pass_one(tiny_model):
    vectors = tiny_model.encode(TEXTS[:3])
    with pytest.raises(TypeError, match=r"a must be texts or a numeric numpy array.*np\.asarray\(a\)"):
        tiny_model.similarity(list(vectors), vectors)
    with pytest.raises(TypeError, match=r"b must be texts or a numeric numpy array.*np\.asarray\(b\)"):
        tiny_model.similarity(vectors, list(vectors))
    with pytest.raises(TypeError, match=r"a must be texts or a numeric numpy array of vectors; texts\[0\] is float"):
        tiny_model.similarity([0.5, 0.25], vectors)
    np.testing.assert_allclose(tiny_model.similarity(np.asarray(list(vectors)), vectors),
                               tiny_model.similarity(vectors, vectors), atol=1e-6)


def test_similarity_of_texts_is_still_the_cosine_of_their_vectors(tiny_model):
    vectors = tiny_model.encode(TEXTS[:4])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(tiny_model.similarity(TEXTS[:2], TEXTS[:4]), unit[:2] @ unit.T, atol=1e-6)
