"""Encoding semantics of StaticModel: mean of rows, unknown tokens dropped, truncation, normalization, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from static_model import StaticModel


def manual_mean(model: StaticModel, ids: list[int]) -> np.ndarray:
    return model.embedding_matrix()[ids].mean(axis=0)


def test_encode_is_the_mean_of_token_rows(tiny_model, wordpiece_tokenizer):
    ids = [wordpiece_tokenizer.token_to_id(t) for t in ["the", "cat", "sat"]]
    vector = tiny_model.encode("The cat sat", normalize=False)
    np.testing.assert_allclose(vector, manual_mean(tiny_model, ids), rtol=1e-6)
    unit = tiny_model.encode("The cat sat")
    np.testing.assert_allclose(unit, vector / np.linalg.norm(vector), rtol=1e-5)


def test_shapes_and_dtypes(tiny_model):
    assert tiny_model.encode("a cat").shape == (8,)
    batch = tiny_model.encode(["a cat", "the dog runs", ""])
    assert batch.shape == (3, 8) and batch.dtype == np.float32
    assert tiny_model.encode([]).shape == (0, 8)
    assert tiny_model.encode(("a", "b")).shape == (2, 8)
    assert tiny_model.encode(np.array(["a cat", "dog"])).shape == (2, 8)


def test_empty_and_unknown_only_texts_give_zero_vectors(tiny_model):
    vectors = tiny_model.encode(["", "   ", "zzz qqq", "\x00\x01"])
    assert np.all(vectors == 0) and np.isfinite(vectors).all()


def test_unknown_tokens_are_dropped_from_the_mean(tiny_model):
    np.testing.assert_allclose(tiny_model.encode("cat zzz dog"), tiny_model.encode("cat dog"), rtol=1e-6)


def test_no_special_tokens_and_padding_is_ignored(tiny_model, wordpiece_tokenizer):
    # The tokenizer pads to 16 with [PAD] and adds [CLS]/[SEP]; the model must use neither.
    assert [list(ids) for ids in tiny_model.tokenize(["the cat"])] == [[5, 7]]
    assert tiny_model.tokenizer.padding is None and tiny_model.tokenizer.truncation is None


def test_truncation_counts_tokens(tiny_model):
    text = "the cat sat on the mat"
    np.testing.assert_allclose(tiny_model.encode(text, max_length=2), tiny_model.encode("the cat"), rtol=1e-6)
    tiny_model.max_length = 3
    np.testing.assert_allclose(tiny_model.encode(text), tiny_model.encode("the cat sat"), rtol=1e-6)
    assert len(tiny_model.tokenize(text)[0]) == 3
    tiny_model.max_length = None
    assert len(tiny_model.tokenize(text)[0]) == 6


def test_batch_size_does_not_change_results(tiny_model):
    texts = ["the cat", "a dog runs fast", "", "unbelievable playing"] * 7
    np.testing.assert_array_equal(tiny_model.encode(texts, batch_size=3), tiny_model.encode(texts))


def test_encode_as_sequence_and_tokenize(tiny_model):
    sequences = tiny_model.encode_as_sequence(["the cat sat", "", "unbelievable"])
    assert [s.shape for s in sequences] == [(3, 8), (0, 8), (3, 8)]
    assert tiny_model.encode_as_sequence("a cat").shape == (2, 8)
    np.testing.assert_allclose(sequences[0].mean(axis=0), tiny_model.encode("the cat sat", normalize=False), rtol=1e-6)


def test_similarity_matrix(tiny_model):
    sims = tiny_model.similarity(["the cat", "a dog"], ["the cat", "", "bank"])
    assert sims.shape == (2, 3)
    assert sims[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert sims[0, 1] == 0.0 and np.isfinite(sims).all()
    vectors = tiny_model.encode(["the cat", "a dog"])
    np.testing.assert_allclose(tiny_model.similarity(vectors, vectors[0]), sims[:, :1], atol=1e-6)
    with pytest.raises(ValueError, match="dims"):
        tiny_model.similarity(vectors, np.ones(3))


@pytest.mark.parametrize("bad", [None, b"bytes", 3, 2.5, ["ok"]])
def test_non_str_items_raise_type_error_naming_the_index(tiny_model, bad):
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        tiny_model.encode(["fine", bad])


@pytest.mark.parametrize("bad", [None, b"bytes", 42])
def test_non_text_input_raises_type_error(tiny_model, bad):
    with pytest.raises(TypeError, match="texts must be"):
        tiny_model.encode(bad)


@pytest.mark.parametrize("texts", [{"b text", "a text"}, frozenset({"a text"}), {"a text": 1}, {"k": "a text"}])
def test_dicts_and_sets_raise_type_error_instead_of_encoding_in_an_arbitrary_order(tiny_model, texts):
    # a set's iteration order changes with PYTHONHASHSEED, a dict would encode its keys: no row order to trust
    with pytest.raises(TypeError, match=rf"texts is a {type(texts).__name__}.*pass a list"):
        tiny_model.encode(texts)
    with pytest.raises(TypeError, match="pass a list"):
        tiny_model.tokenize(texts)


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"batch_size": "8"}, {"max_length": 0}, {"max_length": -5}])
def test_bad_parameters_raise_value_error(tiny_model, kwargs):
    with pytest.raises(ValueError):
        tiny_model.encode(["a"], **kwargs)


@pytest.mark.parametrize("value", ["no", 1, None, "False"])
def test_show_progress_bar_takes_only_a_bool(tiny_model, value):
    with pytest.raises(TypeError, match="show_progress_bar must be True or False"):
        tiny_model.encode(["a"], show_progress_bar=value)


@pytest.mark.parametrize("name", ["convert_to_numpy", "normalize_embeddings", "device", "use_multiprocessing"])
def test_an_option_of_other_libraries_is_a_type_error_naming_it(tiny_model, name):
    with pytest.raises(TypeError, match=name):
        tiny_model.encode(["a"], **{name: True})


@pytest.mark.parametrize("workers", [1, 3])
def test_the_progress_bar_moves_as_batches_finish(tiny_model, monkeypatch, workers):
    """With workers the batches are all submitted at once; the bar once counted submissions, so it stood at 100%
    before the first batch was done."""
    import time

    import tqdm.auto

    from static_model import model as model_module

    finished: list[int] = []
    seen: list[int] = []
    pool = model_module.pool

    def slow_pool(*args: object, **kwargs: object) -> None:
        time.sleep(0.005)  # the batches take a while (the check below is no timing: it holds at any speed)
        pool(*args, **kwargs)
        finished.append(1)

    class Bar:
        def __init__(self, iterable, total: int, **kwargs: object) -> None:  # noqa: ANN001
            self.iterable, self.total = iterable, total

        def __iter__(self):  # noqa: ANN204
            for item in self.iterable:
                seen.append(len(finished))  # batches done when the bar moves
                yield item

    monkeypatch.setattr(model_module, "pool", slow_pool)
    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    texts = [f"the cat {k}" for k in range(60)]
    vectors = tiny_model.encode(texts, batch_size=4, workers=workers, show_progress_bar=True)
    np.testing.assert_array_equal(vectors, tiny_model.encode(texts))
    assert len(seen) == 15
    assert all(done >= step for step, done in enumerate(seen, start=1)), seen


def test_unicode_junk_never_crashes(tiny_model):
    junk = [
        "\x00\x01\x02 control \x7f\x1f\x0b\x0c", "lone \ud800 surrogate \udfff", "emoji 😀🤖👍🏽", "日本語のテキスト",
        "مرحبا بالعالم", "שלום", "\u200b\u200d\ufeff zero width", "e\u0301 café", "\ufffd\ufffd", "[MASK] [cls] [Unk]",
        "\u2028line\u2029para\x85next\xa0nbsp", "tab\tnew\nline\rcr",
    ]
    vectors = tiny_model.encode(junk)
    assert vectors.shape == (len(junk), 8) and np.isfinite(vectors).all()
    assert len(tiny_model.tokenize(junk)) == len(junk)


def test_very_long_text_is_truncated(tiny_model):
    long_text = "the cat sat on the mat " * 200_000  # 4.6 M characters
    vector = tiny_model.encode(long_text, normalize=False)
    np.testing.assert_allclose(vector, tiny_model.encode("the cat sat on the mat " * 100, normalize=False), rtol=1e-5)
    assert len(tiny_model.tokenize(long_text)[0]) == 512


def test_constructor_validates_its_input(tiny_table, wordpiece_tokenizer):
    with pytest.raises(TypeError, match="tokenizer"):
        StaticModel(tiny_table, "not a tokenizer")
    with pytest.raises(TypeError, match="embeddings"):
        StaticModel(tiny_table.tolist(), wordpiece_tokenizer)
    with pytest.raises(ValueError, match="rows"):
        StaticModel(tiny_table[:10], wordpiece_tokenizer)
    with pytest.raises(ValueError, match="weights"):
        StaticModel(tiny_table, wordpiece_tokenizer, weights=np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        StaticModel(np.full_like(tiny_table, np.nan), wordpiece_tokenizer)
    with pytest.raises(ValueError, match="2-D"):
        StaticModel(tiny_table[0], wordpiece_tokenizer)


def test_weights_scale_rows(tiny_table, wordpiece_tokenizer):
    weights = np.linspace(0.5, 2.0, len(tiny_table)).astype(np.float32)
    model = StaticModel(tiny_table, wordpiece_tokenizer, weights=weights)
    ids = [wordpiece_tokenizer.token_to_id(t) for t in ["cat", "dog"]]
    expected = (tiny_table[ids] * weights[ids, None]).mean(axis=0)
    np.testing.assert_allclose(model.encode("cat dog", normalize=False), expected, rtol=1e-6)


@pytest.mark.parametrize("change", [
    lambda tokenizer: tokenizer.add_tokens(["zebra", "giraffe"]),  # ids past the table: were read out of bounds
    lambda tokenizer: tokenizer.enable_padding(length=16),  # [PAD] rows were averaged into non-ASCII texts
])
def test_changing_model_tokenizer_cannot_change_the_model(tiny_model, change):
    texts = ["zebra é giraffe", "日本 the cat", "a\x1czebra dog", "the cat"]
    before = tiny_model.encode(texts)
    change(tiny_model.tokenizer)
    assert tiny_model.tokenizer is tiny_model.tokenizer  # one copy, kept: the change stays visible to its author
    np.testing.assert_array_equal(tiny_model.encode(texts), before)
    assert all(ids.max(initial=0) < tiny_model.vocab_size for ids in tiny_model.tokenize(texts))
