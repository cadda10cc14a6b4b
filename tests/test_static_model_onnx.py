"""ONNX export: onnxruntime gives StaticModel.encode's vectors and StaticPipeline's predictions on real text."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers.onnx_graph import run_graph

from static_model import StaticModel
from static_model.onnx import LABELS_FILE, export_onnx
from static_model.pipeline import HEAD_CONFIG_FILE, StaticPipeline

TEXTS = [
    "The cat sat on the mat.", "", "zzzqqq xylophone!", "hello world " * 40,
    "free text, café and 日本 (with punctuation)", "a dog runs fast", "😀",
]


@pytest.mark.parametrize("contrast", [0.0, 1.0])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_graph_gives_the_runtimes_vectors(minilm_input_model, tmp_path, contrast, normalize, dtype):
    model = minilm_input_model.quantize(dtype) if dtype != "float32" else minilm_input_model
    model = StaticModel(model.embeddings, model.tokenizer, weights=model.weights, config=model.config,
                        normalize=normalize, max_length=32, contrast=contrast)
    export_onnx(model, tmp_path / "onnx")
    expected = model.encode(TEXTS)
    for special in (True, False):
        got = run_graph(tmp_path / "onnx", TEXTS, special_tokens=special)["sentence_embedding"]
        np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


def test_pipeline_graph_gives_its_predictions(tiny_model, tmp_path):
    rng = np.random.default_rng(0)
    layers = [(rng.normal(size=(6, tiny_model.dim)).astype(np.float32), rng.normal(size=6).astype(np.float32)),
              (rng.normal(size=(3, 6)).astype(np.float32), rng.normal(size=3).astype(np.float32))]
    pipeline = StaticPipeline(tiny_model, layers, labels=["a", "b", "c"], activation="tanh")
    export_onnx(pipeline, tmp_path / "onnx")
    out = run_graph(tmp_path / "onnx", TEXTS)
    np.testing.assert_allclose(out["probabilities"], pipeline.predict_proba(TEXTS), atol=1e-5)
    assert [pipeline.labels[i] for i in out["label_index"]] == list(pipeline.predict(TEXTS))
    multi = StaticPipeline(tiny_model, layers, labels=["a", "b", "c"], multilabel=True)
    export_onnx(multi, tmp_path / "multi")
    out = run_graph(tmp_path / "multi", TEXTS)
    np.testing.assert_allclose(out["probabilities"], multi.predict_proba(TEXTS), atol=1e-5)
    assert "label_index" not in out


@pytest.mark.parametrize(("labels", "multilabel", "label_format"), [
    ([10, 20, 30], False, None), (["10", "20", "30"], False, None), ([0.5, 1.0, 2.5], False, None),
    ([0, 1, 2], True, "indicator"), ([0, 1, 2], True, "sets"), (["x", "y", "z"], True, "sets"),
])
def test_labels_json_records_the_labels_as_the_pipeline_folder_does(tiny_model, tmp_path, labels, multilabel,
                                                                     label_format):
    """labels.json lacked the label format: an indicator pipeline (0/1 rows) and a label-sets one (tuples of labels)
    exported the same file, so an ONNX consumer could not answer as the pipeline does."""
    rng = np.random.default_rng(0)
    layers = [(rng.normal(size=(3, tiny_model.dim)).astype(np.float32), rng.normal(size=3).astype(np.float32))]
    pipeline = StaticPipeline(tiny_model, layers, labels=labels, multilabel=multilabel, label_format=label_format)
    folder = pipeline.save_pretrained(tmp_path / "p")
    export_onnx(pipeline, tmp_path / "onnx")
    head = json.loads((folder / HEAD_CONFIG_FILE).read_text(encoding="utf-8"))
    exported_text = (tmp_path / "onnx" / LABELS_FILE).read_text(encoding="utf-8")
    exported = json.loads(exported_text)
    assert exported == {key: head[key] for key in ("labels", "multilabel", "label_format", "threshold")}
    assert exported["label_format"] == pipeline.label_format
    assert [type(v) for v in exported["labels"]] == [type(v) for v in labels]  # 10 stays 10, "10" stays "10"
    loaded = StaticPipeline.from_pretrained(folder)
    assert [type(v) for v in loaded.labels] == [type(v) for v in exported["labels"]]
    if not multilabel:  # ONNX's label_index through labels.json: the pipeline's own predictions, of its type
        index = run_graph(tmp_path / "onnx", TEXTS)["label_index"]
        from_onnx = np.array(exported["labels"])[index]
        assert from_onnx.dtype == pipeline.predict(TEXTS).dtype
        np.testing.assert_array_equal(from_onnx, pipeline.predict(TEXTS))


def test_an_indicator_pipelines_folder_refuses_the_export_of_a_label_sets_twin(tiny_model, tmp_path):
    rng = np.random.default_rng(0)
    layers = [(rng.normal(size=(3, tiny_model.dim)).astype(np.float32), rng.normal(size=3).astype(np.float32))]
    indicator = StaticPipeline(tiny_model, layers, labels=[0, 1, 2], multilabel=True, label_format="indicator")
    sets = StaticPipeline(tiny_model, layers, labels=[0, 1, 2], multilabel=True, label_format="sets")
    own = indicator.save_pretrained(tmp_path / "p")
    before = _files(own)
    with pytest.raises(FileExistsError, match="another model"):  # same graph, but it answers in another form
        export_onnx(sets, own, overwrite=True)
    assert _files(own) == before
    export_onnx(indicator, own, overwrite=True)
    assert json.loads((own / LABELS_FILE).read_text())["label_format"] == "indicator"


def test_export_never_harms_a_folder_and_the_cli_reports_errors(tiny_model, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(FileExistsError, match="holds other files"):
        export_onnx(tiny_model, tmp_path / "mine")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    tiny_model.save_pretrained(tmp_path / "model")
    ok = subprocess.run([sys.executable, "-m", "static_model.onnx", str(tmp_path / "model"), str(tmp_path / "out")],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and (tmp_path / "out" / "model.onnx").is_file(), ok.stderr
    bad = subprocess.run([sys.executable, "-m", "static_model.onnx", str(tmp_path / "nope"), str(tmp_path / "o2")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_graph_on_corpus_lines(minilm_input_model, corpus_lines, tmp_path):
    """300 real corpus lines (lines that spell out a special token such as '[SEP]' are the documented exception)."""
    texts = [t for t in corpus_lines[:400] if t and "[" not in t][:300]
    model = StaticModel(minilm_input_model.embeddings, minilm_input_model.tokenizer, config={"normalize": True},
                        contrast=1.0)
    export_onnx(model, tmp_path / "onnx")
    got = run_graph(tmp_path / "onnx", texts)["sentence_embedding"]
    np.testing.assert_allclose(got, model.encode(texts), atol=2e-5, rtol=1e-4)


# --------------------------------------------------------------------------- the save guarantees


def _files(folder):
    """name → bytes of every file in ``folder`` (subfolders included)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _other_model(tiny_model):
    """A model with the same tokenizer (so the same number of rows) and another table."""
    table = np.random.default_rng(1).normal(size=(tiny_model.vocab_size, tiny_model.dim)).astype(np.float32)
    return StaticModel(table, tiny_model.tokenizer, config={"normalize": True})


def test_exporting_another_model_into_a_model_folder_is_refused(tiny_model, tmp_path):
    """The export once wrote its tokenizer.json over the model's: the folder then loaded a table with another
    model's tokenizer (same size, no error)."""
    from helpers.tokenizers import WORDS, make_wordpiece_tokenizer

    tiny_model.save_pretrained(tmp_path / "m")
    before = _files(tmp_path / "m")
    other_tokenizer = make_wordpiece_tokenizer([*WORDS[:-1], "zz"])  # as many ids, another vocabulary
    for other in (_other_model(tiny_model), StaticModel(tiny_model.embeddings, other_tokenizer)):
        with pytest.raises(FileExistsError, match="holds another model"):
            export_onnx(other, tmp_path / "m", overwrite=True)
        assert _files(tmp_path / "m") == before
    with pytest.raises(FileExistsError, match="holds a model; pass overwrite=True"):
        export_onnx(tiny_model, tmp_path / "m")
    assert _files(tmp_path / "m") == before


def test_a_models_own_folder_gets_its_export_beside_its_files(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    before = _files(tmp_path / "m")
    done = subprocess.run([sys.executable, "-m", "static_model.onnx", str(tmp_path / "m"), str(tmp_path / "m"),
                           "--overwrite"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    after = _files(tmp_path / "m")
    assert {name: after[name] for name in before} == before  # the model's files as they were
    assert set(after) - set(before) == {"model.onnx"}
    loaded = StaticModel.from_pretrained(tmp_path / "m")
    got = run_graph(tmp_path / "m", TEXTS)["sentence_embedding"]
    np.testing.assert_allclose(got, loaded.encode(TEXTS), atol=2e-5, rtol=1e-4)
    export_onnx(loaded, tmp_path / "m", overwrite=True)  # again: the export is replaced, the model stays
    assert _files(tmp_path / "m") == after
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_a_pipelines_own_folder_gets_its_export_and_another_model_is_refused(tiny_model, tmp_path):
    rng = np.random.default_rng(0)
    layers = [(rng.normal(size=(3, tiny_model.dim)).astype(np.float32), rng.normal(size=3).astype(np.float32))]
    StaticPipeline(tiny_model, layers, labels=["a", "b", "c"]).save_pretrained(tmp_path / "p")
    before = _files(tmp_path / "p")
    with pytest.raises(FileExistsError, match="holds another model"):  # its encoder alone is another graph
        export_onnx(StaticModel.from_pretrained(tmp_path / "p"), tmp_path / "p", overwrite=True)
    assert _files(tmp_path / "p") == before
    pipeline = StaticPipeline.from_pretrained(tmp_path / "p")
    export_onnx(pipeline, tmp_path / "p", overwrite=True)
    after = _files(tmp_path / "p")
    assert set(after) - set(before) == {"model.onnx", "labels.json"}
    assert [pipeline.labels[i] for i in run_graph(tmp_path / "p", TEXTS)["label_index"]] == list(
        pipeline.predict(TEXTS))


def test_an_earlier_export_is_replaced_only_with_overwrite(tiny_model, tmp_path):
    export_onnx(tiny_model, tmp_path / "onnx")
    first = _files(tmp_path / "onnx")
    other = _other_model(tiny_model)
    with pytest.raises(FileExistsError, match="already holds an ONNX export; pass overwrite=True"):
        export_onnx(other, tmp_path / "onnx")
    assert _files(tmp_path / "onnx") == first
    export_onnx(other, tmp_path / "onnx", overwrite=True)
    np.testing.assert_allclose(run_graph(tmp_path / "onnx", TEXTS)["sentence_embedding"], other.encode(TEXTS),
                               atol=2e-5)
    (tmp_path / "empty").mkdir()
    export_onnx(tiny_model, tmp_path / "empty")  # an empty folder needs no overwrite
    assert sorted(_files(tmp_path / "empty")) == ["model.onnx", "tokenizer.json"]


def test_a_folder_holding_other_files_is_never_written_even_with_overwrite(tiny_model, tmp_path):
    export_onnx(tiny_model, tmp_path / "onnx")
    (tmp_path / "onnx" / "notes.txt").write_text("keep", encoding="utf-8")
    tiny_model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "notes.txt").write_text("keep", encoding="utf-8")
    for folder in (tmp_path / "onnx", tmp_path / "m"):
        before = _files(folder)
        with pytest.raises(FileExistsError, match=r"holds other files .*\(notes.txt\).*not even with overwrite=True"):
            export_onnx(_other_model(tiny_model), folder, overwrite=True)
        assert _files(folder) == before
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(NotADirectoryError):
        export_onnx(tiny_model, tmp_path / "file", overwrite=True)
    done = subprocess.run([sys.executable, "-m", "static_model.onnx", str(tmp_path / "m"), str(tmp_path / "onnx"),
                           "--overwrite"], capture_output=True, text=True)
    assert done.returncode == 2 and "holds other files" in done.stderr and "Traceback" not in done.stderr


def test_a_failed_export_leaves_the_folder_as_it_was(tiny_model, tmp_path, monkeypatch):
    """The files were replaced one by one: a failure after model.onnx left the new graph with the old tokenizer."""
    export_onnx(tiny_model, tmp_path / "onnx")
    before = _files(tmp_path / "onnx")
    other = _other_model(tiny_model)

    class Unwritable:
        def to_str(self):
            raise OSError("disk full")

    monkeypatch.setattr(StaticModel, "tokenizer", property(lambda self: Unwritable()))
    with pytest.raises(OSError, match="disk full"):
        export_onnx(other, tmp_path / "onnx", overwrite=True)
    assert _files(tmp_path / "onnx") == before


CRASHING_EXPORT = """
import builtins, io, os, signal, sys
sys.path.insert(0, sys.argv[2])
import numpy as np
from helpers.tokenizers import SPECIAL, WORDS, make_wordpiece_tokenizer
from static_model import StaticModel
from static_model.onnx import export_onnx

table = np.random.default_rng(1).normal(size=(len(SPECIAL) + len(WORDS), 8)).astype(np.float32)
model = StaticModel(table, make_wordpiece_tokenizer(), config={"normalize": True})
real_open = builtins.open

def open_or_die(file, *args, **kwargs):  # kill -9 as the export starts writing its tokenizer.json
    if "tokenizer.json" in os.fspath(file) and "w" in (args[0] if args else kwargs.get("mode", "r")):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_open(file, *args, **kwargs)

builtins.open = io.open = open_or_die  # io.open: what pathlib's write_text calls
export_onnx(model, sys.argv[1], overwrite=True)
"""


def test_kill_9_during_an_export_leaves_the_old_export(tiny_model, tmp_path):
    from helpers.paths import REPO

    export_onnx(tiny_model, tmp_path / "onnx")
    before = _files(tmp_path / "onnx")
    killed = subprocess.run([sys.executable, "-c", CRASHING_EXPORT, str(tmp_path / "onnx"), str(REPO / "tests")],
                            capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    assert _files(tmp_path / "onnx") == before  # the old export, whole
    other = _other_model(tiny_model)
    export_onnx(other, tmp_path / "onnx", overwrite=True)  # the next export removes what the killed one left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]
    np.testing.assert_allclose(run_graph(tmp_path / "onnx", TEXTS)["sentence_embedding"], other.encode(TEXTS),
                               atol=2e-5)


def test_a_model_folder_changed_during_the_export_is_left_as_it_is(tiny_model, tmp_path, monkeypatch):
    import static_model.onnx as onnx_export

    tiny_model.save_pretrained(tmp_path / "m")
    copy = onnx_export._copy_entries

    def copy_then_save_another(source, destination, skip):
        copy(source, destination, skip)
        _other_model(tiny_model).save_pretrained(tmp_path / "m", overwrite=True)  # a save meanwhile

    monkeypatch.setattr(onnx_export, "_copy_entries", copy_then_save_another)
    with pytest.raises(FileExistsError, match="changed while the export was written"):
        export_onnx(tiny_model, tmp_path / "m", overwrite=True)
    saved = StaticModel.from_pretrained(tmp_path / "m")
    np.testing.assert_array_equal(saved.embeddings, _other_model(tiny_model).embeddings)
    assert not (tmp_path / "m" / "model.onnx").exists()


def test_a_nested_model_folder_gets_the_tokenizer_and_a_stray_one_is_refused(tiny_model, tmp_path):
    """sentence-transformers' layout keeps the model in 0_StaticEmbedding/; a top-level tokenizer.json is the
    export's, so it must be the model's."""
    from helpers.tokenizers import WORDS, make_wordpiece_tokenizer

    tiny_model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "0_StaticEmbedding").mkdir()
    for name in ("model.safetensors", "tokenizer.json"):
        (tmp_path / "m" / name).rename(tmp_path / "m" / "0_StaticEmbedding" / name)
    model = StaticModel.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "tokenizer.json").write_text(make_wordpiece_tokenizer([*WORDS[:-1], "zz"]).to_str())
    before = _files(tmp_path / "m")
    with pytest.raises(FileExistsError, match="tokenizer.json is not the tokenizer of the model"):
        export_onnx(model, tmp_path / "m", overwrite=True)
    assert _files(tmp_path / "m") == before
    (tmp_path / "m" / "tokenizer.json").unlink()
    export_onnx(model, tmp_path / "m", overwrite=True)
    assert set(_files(tmp_path / "m")) - set(before) == {"model.onnx"}  # and tokenizer.json, now the model's
    np.testing.assert_allclose(run_graph(tmp_path / "m", TEXTS)["sentence_embedding"], model.encode(TEXTS), atol=2e-5)


# --------------------------------------------------------------------------- a quantized table stays quantized


def _bytes_bound(model, extra: int = 0) -> int:
    """The most a graph storing the table in its own dtype holds: the table's bytes, float32 per-token weights (int8
    keeps its row scales there), an int32 token mapping, the float32 kept-token mask and row norms (one each per
    token id), ``extra``, and 64 KiB for the nodes and small constants. The graph held the table as float32, 2x a
    float16 table and 4x an int8 one: MiniLM's 30,522 x 384 gave 46.9 MB against this bound's 23.9 MB / 12.3 MB."""
    vocab = model.vocab_size
    size = model.embeddings.nbytes + 2 * vocab * 4 + extra + 2**16
    if model.weights is not None:
        size += vocab * 4
    if model.token_mapping is not None:
        size += vocab * 4  # was stored as int64: 122 KB more for MiniLM's 30,522 ids
    return size


def _initializers(folder):
    """name → numpy array of the graph's initializers."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(folder / "model.onnx")).graph
    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def _vocabulary_quantized(model, rows: int = 2000, seed: int = 3) -> StaticModel:
    """``model``'s vocabulary mapped onto ``rows`` of its rows, with signed per-token weights."""
    rng = np.random.default_rng(seed)
    shared = model.embeddings[rng.choice(model.vocab_size, size=rows, replace=False)]
    return StaticModel(shared, model.tokenizer, weights=rng.uniform(-2, 2, size=model.vocab_size).astype(np.float32),
                       token_mapping=rng.integers(0, rows, size=model.vocab_size), config={"normalize": True},
                       contrast=1.0, max_length=32)


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_a_quantized_models_graph_keeps_its_tables_dtype(minilm_input_model, tmp_path, dtype):
    """A float16 or int8 model exported to a graph holding its table as float32: MiniLM's 23.4 MB float16 table and
    11.7 MB int8 one both gave a 47 MB model.onnx (2x and 4x), where a user quantized to make the model small."""
    model = minilm_input_model.quantize(dtype)
    folder = export_onnx(model, tmp_path / "onnx")
    size = (folder / "model.onnx").stat().st_size
    assert size < _bytes_bound(model), (size, _bytes_bound(model))
    stored = {a.dtype for a in _initializers(folder).values() if a.shape == model.embeddings.shape}
    assert stored == {model.embeddings.dtype}
    got = run_graph(folder, TEXTS)["sentence_embedding"]
    np.testing.assert_allclose(got, model.encode(TEXTS), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("contrast", [0.0, 1.0])
def test_a_vocabulary_quantized_int8_graph_keeps_its_shared_int8_rows(minilm_input_model, tmp_path, normalize,
                                                                      contrast):
    model = _vocabulary_quantized(minilm_input_model).quantize("int8")
    model = StaticModel(model.embeddings, model.tokenizer, weights=model.weights, config=model.config,
                        token_mapping=model.token_mapping, normalize=normalize, contrast=contrast, max_length=32)
    folder = export_onnx(model, tmp_path / "onnx")
    size = (folder / "model.onnx").stat().st_size
    assert size < _bytes_bound(model), (size, _bytes_bound(model))  # the shared rows were 4x (3.1 MB of 4.0 MB)
    assert _initializers(folder)["token_mapping"].dtype == np.int32
    expected = model.encode(TEXTS)
    for special in (True, False):
        got = run_graph(folder, TEXTS, special_tokens=special)["sentence_embedding"]
        np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


def test_a_quantized_pipelines_graph_keeps_its_tables_dtype(minilm_input_model, tmp_path):
    model = minilm_input_model.quantize("int8")
    rng = np.random.default_rng(0)
    layers = [(rng.normal(size=(6, model.dim)).astype(np.float32), rng.normal(size=6).astype(np.float32)),
              (rng.normal(size=(3, 6)).astype(np.float32), rng.normal(size=3).astype(np.float32))]
    pipeline = StaticPipeline(model, layers, labels=["a", "b", "c"], activation="tanh")
    folder = export_onnx(pipeline, tmp_path / "onnx")
    head = sum(w.nbytes + b.nbytes for w, b in layers)
    assert (folder / "model.onnx").stat().st_size < _bytes_bound(model, head)
    out = run_graph(folder, TEXTS)
    np.testing.assert_allclose(out["probabilities"], pipeline.predict_proba(TEXTS), atol=1e-5)
    assert [pipeline.labels[i] for i in out["label_index"]] == list(pipeline.predict(TEXTS))


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8", "mapped int8"])
def test_the_graphs_row_norms_are_the_effective_rows_norms(minilm_input_model, tmp_path, dtype):
    """Contrast pooling divides by each token's row norm: whatever the table's storage, the graph's are the norms of
    the float32 rows the runtime averages (``embedding_matrix``; a vocabulary-quantized model's, its shared rows'
    times each token's weight, as before); a float32 table is stored as those rows."""
    base = _vocabulary_quantized(minilm_input_model) if dtype == "mapped int8" else minilm_input_model
    model = base.quantize(dtype.split()[-1])
    model = StaticModel(model.embeddings, model.tokenizer, weights=model.weights, config=model.config,
                        token_mapping=model.token_mapping, contrast=1.0)
    inits = _initializers(export_onnx(model, tmp_path / "onnx"))
    rows = model.embedding_matrix()
    norms = np.linalg.norm(rows, axis=1).astype(np.float32)
    if model.token_mapping is not None:  # a shared row's norm, times each token's |weight|
        shared = np.linalg.norm(model.embeddings.astype(np.float32), axis=1)
        norms = (shared[model.token_mapping] * np.abs(model.weights)).astype(np.float32)
    np.testing.assert_array_equal(inits["row_norms"], norms)
    if dtype == "float32":
        np.testing.assert_array_equal(inits["rows"], rows)
