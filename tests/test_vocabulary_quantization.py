"""Vocabulary quantization (issue 24): k-means rows + a token mapping + per-token weights; what the runtime, Model2Vec,
sentence-transformers and ONNX Runtime make of it, and what a load refuses."""

from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

from distill import quantize_vocabulary
from static_model import StaticModel

TEXTS = ["the cat sat on the mat", "a dog runs fast.", "unbelievable playing!", "bank river money tax law", "", "zzz"]
REAL_TEXTS = [
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog!",
    "Static embeddings are hundreds of times faster than transformers.",
    "Where is the nearest train station?",
]


@pytest.fixture
def table_with_zero_rows(tiny_table):
    table = tiny_table.copy()
    table[[0, 7]] = 0.0  # rows the distill never embedded
    table *= np.linspace(0.2, 3.0, len(table), dtype=np.float32)[:, None]  # norms that differ (SIF-like)
    return table


@pytest.fixture
def model(table_with_zero_rows, wordpiece_tokenizer):
    return StaticModel(table_with_zero_rows, wordpiece_tokenizer, config={"normalize": True, "teacher": "t/x"})


@pytest.fixture
def quantized(model):
    return quantize_vocabulary(model, 12)


@pytest.fixture(scope="module")
def real_quantized(minilm_input_model):
    """MiniLM's own 30,522-token table cut to 32 dims, in 256 clusters."""
    return quantize_vocabulary(minilm_input_model.truncate_dims(32), 256)


def _manual_encode(model: StaticModel, texts: list[str]) -> np.ndarray:
    """``weight[id] * rows[mapping[id]]`` averaged and normalized, in numpy."""
    rows, mapping = model.embeddings.astype(np.float32), model.token_mapping
    weights = np.ones(model.vocab_size, np.float32) if model.weights is None else model.weights
    out = []
    for ids in model.tokenize(texts):
        vectors = rows[mapping[ids]] * weights[ids, None]
        mean = vectors.mean(axis=0) if len(ids) else np.zeros(model.dim, np.float32)
        norm = np.linalg.norm(mean)
        out.append(mean / norm if norm > 0 else mean)
    return np.asarray(out, dtype=np.float32)


# --------------------------------------------------------------------------- what quantization makes


def test_each_token_takes_its_centres_direction_and_keeps_its_norm(model, quantized, table_with_zero_rows):
    assert len(quantized.embeddings) == 12 and quantized.token_mapping.shape == (model.vocab_size,)
    assert quantized.vocab_size == model.vocab_size and quantized.dim == model.dim
    centres = quantized.embeddings
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, atol=1e-6)
    rows = quantized.embedding_matrix()
    norms = np.linalg.norm(table_with_zero_rows, axis=1)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), norms, rtol=1e-6)
    nonzero = norms > 0
    directions = rows[nonzero] / norms[nonzero, None]
    np.testing.assert_allclose(directions, centres[quantized.token_mapping[nonzero]], atol=1e-6)
    assert not rows[~nonzero].any()  # a zero row stays zero (weight 0)
    # every token sits with the centre nearest its own direction
    units = table_with_zero_rows[nonzero] / norms[nonzero, None]
    np.testing.assert_array_equal(quantized.token_mapping[nonzero], np.argmax(units @ centres.T, axis=1))


def test_encode_is_weight_times_the_mapped_row_pooled(quantized):
    np.testing.assert_allclose(quantized.encode(TEXTS), _manual_encode(quantized, TEXTS), atol=1e-6)
    with_contrast = quantized.encode(TEXTS, contrast=1.0)
    expanded = StaticModel(quantized.embedding_matrix(), quantized.tokenizer, normalize=True)
    np.testing.assert_allclose(with_contrast, expanded.encode(TEXTS, contrast=1.0), atol=1e-6)


def test_the_seed_decides_and_the_config_records_it(model, quantized):
    again = quantize_vocabulary(model, 12)
    np.testing.assert_array_equal(again.token_mapping, quantized.token_mapping)
    np.testing.assert_array_equal(again.embeddings, quantized.embeddings)
    record = quantized.config["vocabulary_clusters"]
    assert record["clusters"] == 12 and record["seed"] == 0 and 0 < record["mean_cosine_to_centre"] <= 1
    assert quantized.config["vocabulary_quantization"] == 12
    assert quantized.config["teacher"] == "t/x" and quantized.normalize
    other = quantize_vocabulary(model, 12, seed=1)
    assert other.config["vocabulary_clusters"]["seed"] == 1


def test_as_many_clusters_as_rows_is_the_model_itself(model):
    nonzero = int((np.linalg.norm(model.embeddings, axis=1) > 0).sum())
    full = quantize_vocabulary(model, nonzero)
    np.testing.assert_allclose(full.embedding_matrix(), model.embedding_matrix(), atol=1e-5)
    np.testing.assert_allclose(full.encode(TEXTS), model.encode(TEXTS), atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_quantize_keeps_the_storage_dtype_and_the_mapping(model, dtype):
    stored = model.quantize(dtype)
    quantized = quantize_vocabulary(stored, 12)
    assert quantized.dtype == dtype and quantized.token_mapping is not None
    np.testing.assert_allclose(quantized.encode(TEXTS), quantize_vocabulary(model, 12).encode(TEXTS), atol=2e-2)


def test_bad_arguments_are_clear_errors(model, quantized):
    for value in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match="n_clusters must be a positive integer"):
            quantize_vocabulary(model, value)
    with pytest.raises(ValueError, match="n_clusters=48 is more than the model's 47 non-zero token rows"):
        quantize_vocabulary(model, 48)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        quantize_vocabulary(model, 4, seed=-1)
    with pytest.raises(ValueError, match="already vocabulary-quantized"):
        quantize_vocabulary(quantized, 4)
    with pytest.raises(TypeError, match="model must be a static_model.StaticModel"):
        quantize_vocabulary(model.embeddings, 4)


# --------------------------------------------------------------------------- the runtime keeps it


def test_load_save_round_trip_keeps_the_small_form(model, quantized, tmp_path):
    quantized.save_pretrained(tmp_path / "q")
    tensors = load_file(str(tmp_path / "q" / "model.safetensors"))
    assert set(tensors) == {"embeddings", "mapping", "weights"}
    assert tensors["embeddings"].shape == (12, model.dim) and tensors["mapping"].dtype == np.int32
    assert tensors["weights"].shape == (model.vocab_size,)
    loaded = StaticModel.from_pretrained(tmp_path / "q")
    assert len(loaded.embeddings) == 12 and loaded.vocab_size == model.vocab_size
    np.testing.assert_array_equal(loaded.encode(TEXTS), quantized.encode(TEXTS))
    loaded.save_pretrained(tmp_path / "again")
    again = load_file(str(tmp_path / "again" / "model.safetensors"))
    for name, value in tensors.items():
        np.testing.assert_array_equal(again[name], value)
    config = json.loads((tmp_path / "again" / "config.json").read_text())
    assert config["vocabulary_quantization"] == 12 and config["vocab_size"] == model.vocab_size
    assert config["vocabulary_clusters"]["clusters"] == 12
    card = (tmp_path / "again" / "README.md").read_text()
    assert "| vocabulary clusters | 12 rows shared by the tokens" in card and "Vocabulary quantization" in card


def test_the_folder_is_smaller(real_quantized, minilm_input_model, tmp_path):
    real_quantized.save_pretrained(tmp_path / "q", dtype="float16")
    minilm_input_model.truncate_dims(32).save_pretrained(tmp_path / "full", dtype="float16")
    small = (tmp_path / "q" / "model.safetensors").stat().st_size
    full = (tmp_path / "full" / "model.safetensors").stat().st_size
    assert small < full / 4  # 256 x 32 float16 rows + 30,522 x (int32 + float32) vs 30,522 x 32 float16 rows


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_dtypes_dims_and_pickles_keep_the_mapping(quantized, tmp_path, dtype):
    stored = quantized.quantize(dtype)
    assert stored.dtype == dtype and len(stored.embeddings) == 12
    np.testing.assert_array_equal(stored.token_mapping, quantized.token_mapping)
    np.testing.assert_allclose(stored.encode(TEXTS), quantized.encode(TEXTS), atol=1e-2 if dtype == "int8" else 2e-3)
    back = stored.quantize("float32")  # from int8 the stored values are exact: the scales stay in the weights
    np.testing.assert_allclose(back.encode(TEXTS), stored.encode(TEXTS), atol=1e-6)
    cut = stored.truncate_dims(4)
    assert cut.dim == 4 and cut.token_mapping is not None
    np.testing.assert_allclose(cut.embedding_matrix(), stored.embedding_matrix()[:, :4], atol=1e-6)
    stored.save_pretrained(tmp_path / "m")
    np.testing.assert_array_equal(StaticModel.from_pretrained(tmp_path / "m").encode(TEXTS), stored.encode(TEXTS))
    copy = pickle.loads(pickle.dumps(stored))
    np.testing.assert_array_equal(copy.encode(TEXTS), stored.encode(TEXTS))
    assert copy.token_mapping is not None and "clusters=12" in repr(copy)


def test_the_constructor_checks_a_mapping(quantized):
    args = (quantized.embeddings, quantized.tokenizer)
    with pytest.raises(TypeError, match="token_mapping must be a numpy array"):
        StaticModel(*args, weights=quantized.weights, token_mapping=list(quantized.token_mapping))
    with pytest.raises(ValueError, match="'mapping' holds row 12, outside the table's 12 rows"):
        StaticModel(*args, weights=quantized.weights, token_mapping=np.full(quantized.vocab_size, 12))
    with pytest.raises(ValueError, match="has 49 token ids .* but the embeddings have 48 rows"):
        StaticModel(*args, token_mapping=quantized.token_mapping[:-1])
    with pytest.raises(ValueError, match=r"weights has shape \(12,\)"):
        StaticModel(*args, weights=quantized.weights[:12], token_mapping=quantized.token_mapping)


def test_a_model_without_the_mapping_drops_the_cluster_record(quantized):
    plain = StaticModel(quantized.embedding_matrix(), quantized.tokenizer, config=quantized.config)
    assert "vocabulary_clusters" not in plain.config and "vocabulary_quantization" not in plain.config


# --------------------------------------------------------------------------- other readers


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_model2vec_and_sentence_transformers_read_the_same_vectors(quantized, tmp_path, dtype):
    from model2vec import StaticModel as Model2VecModel
    from sentence_transformers import SentenceTransformer

    quantized.save_pretrained(tmp_path / "q", dtype=dtype)
    ours = StaticModel.from_pretrained(tmp_path / "q").encode(TEXTS[:4])
    m2v = Model2VecModel.from_pretrained(tmp_path / "q")
    assert m2v.token_mapping is not None and len(m2v.embedding) == 12
    atol = 1e-5 if dtype != "float16" else 1e-3  # Model2Vec and sentence-transformers average float16 in float16
    np.testing.assert_allclose(np.asarray(m2v.encode(TEXTS[:4]), dtype=np.float32), ours, atol=atol)
    st_vectors = SentenceTransformer(str(tmp_path / "q"), device="cpu").encode(TEXTS[:4])
    np.testing.assert_allclose(st_vectors, ours, atol=atol)
    m2v.save_pretrained(str(tmp_path / "m2v"))  # Model2Vec's own save of our folder reads back the same
    np.testing.assert_allclose(StaticModel.from_pretrained(tmp_path / "m2v").encode(TEXTS[:4]), ours, atol=1e-6)


def test_benchmark_encoders_count_what_is_stored(model, quantized, tmp_path):
    """The benchmarks' parameter count of a quantized folder, ours and Model2Vec's: the cluster rows, the per-token
    weights and the mapping (before: the table expanded to one row per token id, or Model2Vec's cluster rows alone);
    the expanded size is reported beside it, and in the suite's table."""
    from benchmarks.quality.encoders import Model2VecEncoder, StaticEncoder
    from benchmarks.quality.suite import quality_markdown

    quantized.save_pretrained(tmp_path / "q")
    model.save_pretrained(tmp_path / "plain")
    n, dim = model.vocab_size, model.dim
    stored = 12 * dim + n + n  # centres, weights, mapping
    for encoder in (StaticEncoder(str(tmp_path / "q")), Model2VecEncoder(str(tmp_path / "q"))):
        assert (encoder.num_parameters, encoder.expanded_parameters) == (stored, n * dim), type(encoder).__name__
        assert encoder.info()["num_parameters"] == stored and encoder.info()["expanded_parameters"] == n * dim
    plain = StaticEncoder(str(tmp_path / "plain"))
    assert (plain.num_parameters, plain.expanded_parameters) == (n * dim, None)
    summary = {"average": 50.0, "task_averages": {}}
    report = {"models": [{"name": name, "info": enc.info(), "summary": summary, "results": []}
                         for name, enc in (("q", StaticEncoder(str(tmp_path / "q"))), ("plain", plain))]}
    lines = quality_markdown(report).splitlines()
    assert f"| Parameters | {stored} | {n * dim} |" in lines
    assert f"| Parameters, expanded (token ids × dim) | {n * dim} | – |" in lines


def test_real_tokenizer_in_every_reader(real_quantized, tmp_path):
    from model2vec import StaticModel as Model2VecModel
    from sentence_transformers import SentenceTransformer

    real_quantized.save_pretrained(tmp_path / "real", dtype="float16")
    ours = StaticModel.from_pretrained(tmp_path / "real")
    expected = ours.encode(REAL_TEXTS)
    np.testing.assert_allclose(expected, real_quantized.quantize("float16").encode(REAL_TEXTS), atol=1e-6)
    m2v = Model2VecModel.from_pretrained(tmp_path / "real").encode(REAL_TEXTS)
    np.testing.assert_allclose(np.asarray(m2v, dtype=np.float32), expected, atol=1e-3)
    st_vectors = SentenceTransformer(str(tmp_path / "real"), device="cpu").encode(REAL_TEXTS)
    np.testing.assert_allclose(st_vectors, expected, atol=1e-3)


@pytest.mark.parametrize(("dtype", "contrast"), [("float32", 0.0), ("int8", 0.0), ("float16", 1.0)])
def test_onnx_runtime_gives_encode(real_quantized, tmp_path, dtype, contrast):
    from test_static_model_onnx import run_graph

    from static_model.onnx import export_onnx

    model = real_quantized.quantize(dtype)
    model.contrast = contrast
    folder = export_onnx(model, tmp_path / "onnx")
    got = run_graph(folder, REAL_TEXTS + TEXTS)["sentence_embedding"]
    np.testing.assert_allclose(got, model.encode(REAL_TEXTS + TEXTS), atol=2e-5, rtol=1e-4)
    import onnx

    names = {init.name for init in onnx.load(str(folder / "model.onnx")).graph.initializer}
    assert {"shared_rows", "token_mapping", "token_weights"} <= names and "rows" not in names


# --------------------------------------------------------------------------- untrusted folders


@pytest.fixture(scope="module")
def quantized_folder(tmp_path_factory):
    from helpers.tokenizers import make_wordpiece_tokenizer

    tokenizer = make_wordpiece_tokenizer()
    table = np.random.default_rng(1).normal(size=(tokenizer.get_vocab_size(), 8)).astype(np.float32)
    folder = tmp_path_factory.mktemp("vq") / "m"
    quantize_vocabulary(StaticModel(table, tokenizer, config={"normalize": True}), 6).save_pretrained(folder)
    return folder


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mapping=st.one_of(
        st.lists(st.integers(-3, 9), min_size=0, max_size=60).map(lambda v: np.asarray(v, dtype=np.int64)),
        st.lists(st.integers(0, 5), min_size=49, max_size=49).map(lambda v: np.asarray(v, dtype=np.int32)),
        st.sampled_from([np.zeros((7, 7), np.int32), np.arange(49, dtype=np.float32), np.zeros(49, np.uint8),
                         np.array([2**40] * 49, np.int64)]),
    ),
    weights=st.one_of(st.none(), st.integers(0, 60).map(lambda n: np.linspace(-2, 2, n, dtype=np.float32)),
                      st.sampled_from([np.full(49, np.nan, np.float32), np.full(49, 1e9, np.float32)])),
    rows=st.integers(1, 8),
)
def test_any_mapping_and_weights_load_right_or_fail_clearly(quantized_folder, mapping, weights, rows):
    tensors = load_file(str(quantized_folder / "model.safetensors"))
    tensors["embeddings"] = tensors["embeddings"][:rows] if rows <= 6 else np.vstack([tensors["embeddings"]] * 2)[:rows]
    tensors["mapping"] = mapping
    if weights is None:
        tensors.pop("weights")
    else:
        tensors["weights"] = weights
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m"
        folder.mkdir()
        for name in ("tokenizer.json", "modules.json"):
            (folder / name).write_bytes((quantized_folder / name).read_bytes())
        (folder / "config.json").write_text(json.dumps({"normalize": True}))
        save_file(tensors, str(folder / "model.safetensors"))
        try:
            model = StaticModel.from_pretrained(folder)
        except ValueError as exc:
            assert "model.safetensors" in str(exc) or "tokenizer.json" in str(exc)
            return
    # it loaded: then every token's vector is weight * its mapped row, and encode pools exactly those
    expected = tensors["embeddings"].astype(np.float32)[mapping]
    if weights is not None:
        expected = expected * weights[:, None]
    np.testing.assert_array_equal(model.embedding_matrix(), expected)
    np.testing.assert_allclose(model.encode(TEXTS), _manual_encode(model, TEXTS), atol=1e-5)


# --------------------------------------------------------------------------- the distill command


def test_distill_cli_writes_a_quantized_folder(tmp_path, capsys):
    from helpers.teachers import make_wordpiece_teacher

    from distill.__main__ import main

    teacher = make_wordpiece_teacher(tmp_path / "teacher")
    out = tmp_path / "model"
    rc = main([str(teacher), "--output", str(out), "--pca-dims", "8", "--vocabulary-clusters", "5", "--dtype",
               "float32", "--quiet"])
    assert rc == 0 and "vocabulary clusters 5 rows for" in capsys.readouterr().out
    model = StaticModel.from_pretrained(out)
    assert len(model.embeddings) == 5 and model.token_mapping is not None and model.dim == 8
    assert json.loads((out / "config.json").read_text())["vocabulary_clusters"]["clusters"] == 5
    assert "| vocabulary clusters | 5 rows" in (out / "README.md").read_text()
    for value, problem in (("0", "--vocabulary-clusters must be at least 1"),
                           ("100000", "--vocabulary-clusters 100000: n_clusters=100000 is more than")):
        rc = main([str(teacher), "--output", str(tmp_path / f"bad{value}"), "--pca-dims", "8",
                   "--vocabulary-clusters", value, "--quiet"])
        assert rc == 2 and problem in capsys.readouterr().err
        assert not (tmp_path / f"bad{value}").exists()
