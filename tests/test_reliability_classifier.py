"""Trust audit of the classifier: StaticModelClassifier (fit's input checks, what it exports), StaticPipeline (threads,
fork, tampered folders, kill -9 during a save) and the ONNX export of both (the same numbers as numpy)."""

from __future__ import annotations

import builtins
import json
import os
import re
import shutil
import signal

import numpy as np
import onnxruntime as ort
import pytest
from helpers.threads import run_in_threads
from helpers.tokenizers import SPECIAL, TRICKY, WORDS, make_wordpiece_tokenizer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer

from distill.classifier import StaticModelClassifier
from static_model import StaticModel
from static_model.onnx import LABELS_FILE, export_onnx
from static_model.pipeline import HEAD_CONFIG_FILE, HEAD_FILE, StaticPipeline

TEXTS = ["the cat sat on the mat", "a dog runs fast", "money tax law", "bank river", "hello world", "zzz qqq", "",
         *TRICKY]


def _layers(dim: int, sizes: tuple[int, ...], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    dims = [dim, *sizes]
    return [(rng.normal(size=(o, i)).astype(np.float32), rng.normal(size=o).astype(np.float32))
            for i, o in zip(dims[:-1], dims[1:])]


@pytest.fixture
def pipeline(tiny_model) -> StaticPipeline:
    return StaticPipeline(tiny_model, _layers(tiny_model.dim, (6, 3)), labels=["a", "b", "c"], activation="tanh")


# --------------------------------------------------------------------------- serving under load


def test_eight_threads_at_once_give_the_single_threaded_results(pipeline):
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(0, 30)))) for _ in range(300)] + TEXTS
    expected_proba, expected = pipeline.predict_proba(texts), pipeline.predict(texts)
    results: dict[int, list] = {}

    def work(i: int) -> None:
        out = []
        for k in range(15):
            lo = (i * 13 + k * 7) % 100
            out.append((lo, pipeline.predict_proba(texts[lo:]), pipeline.predict(texts[lo:])))
        results[i] = out

    run_in_threads(work, 8)
    assert len(results) == 8
    for out in results.values():
        for lo, proba, labels in out:
            np.testing.assert_array_equal(proba, expected_proba[lo:])
            np.testing.assert_array_equal(labels, expected[lo:])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_predicts_what_its_parent_does(pipeline, tmp_path):
    expected = pipeline.predict_proba(TEXTS)  # the parent has used the pipeline (and its kernels) before the fork
    out = tmp_path / "child.npy"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            signal.alarm(60)  # a hang in the child fails the test instead of blocking it
            np.save(out, pipeline.predict_proba(TEXTS))
            code = 0 if list(pipeline.predict(TEXTS)) == list(pipeline.classes_[expected.argmax(axis=1)]) else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    np.testing.assert_array_equal(np.load(out), expected)


# --------------------------------------------------------------------------- tampered folders


def _config(folder, **changes):
    config = json.loads((folder / HEAD_CONFIG_FILE).read_text())
    config.update(changes)
    (folder / HEAD_CONFIG_FILE).write_text(json.dumps(config))


def _tensors(folder, change):
    tensors = load_file(str(folder / HEAD_FILE))
    change(tensors)
    save_file(tensors, str(folder / HEAD_FILE))


TAMPERINGS = {
    "truncated head": (lambda f: (f / HEAD_FILE).write_bytes((f / HEAD_FILE).read_bytes()[:-10]), "corrupt"),
    "empty head": (lambda f: (f / HEAD_FILE).write_bytes(b""), "corrupt"),
    "fewer labels": (lambda f: _config(f, labels=["a", "b"]), "3 outputs but there are 2 labels"),
    "more labels": (lambda f: _config(f, labels=["a", "b", "c", "d"]), "3 outputs but there are 4 labels"),
    # these used to load, and predict a label twice, "1" for 1, None, a dict...
    "a label twice": (lambda f: _config(f, labels=["a", "a", "c"]), "labels 0 and 1 are both 'a'"),
    "mixed label types": (lambda f: _config(f, labels=[1, "b", "c"]), "labels mix types"),
    "true and numbers": (lambda f: _config(f, labels=[True, 2, 3]), "labels mix types"),
    "null label": (lambda f: _config(f, labels=[None, "b", "c"]), "label 0 is NoneType"),
    "nested label": (lambda f: _config(f, labels=[[1], "b", "c"]), "label 0 is list"),
    "NaN label": (lambda f: _config(f, labels=[float("nan"), 2.0, 3.0]), "label 0 is nan"),
    # a head file of another config: more layers than it names, integer or boolean tensors
    "extra layer": (lambda f: _tensors(f, lambda t: t.update({"layers.2.weight": np.zeros((3, 3), np.float32),
                                                              "layers.2.bias": np.zeros(3, np.float32)})),
                    "holds tensor 'layers.2.bias'"),
    "fewer layers in config": (lambda f: _config(f, layers=[[8, 6]]), "does not name"),
    "int head": (lambda f: _tensors(f, lambda t: t.update({k: v.astype(np.int32) for k, v in t.items()})),
                 "is int32, not a float tensor"),
    "bool head": (lambda f: _tensors(f, lambda t: t.update({k: v != 0 for k, v in t.items()})),
                  "is bool, not a float tensor"),
    "float layer sizes": (lambda f: _config(f, layers=[[8.0, 6], [6, 3]]), "pair of integers"),
    "version true": (lambda f: _config(f, version=True), "not a supported"),
    "NaN weight": (lambda f: _tensors(f, lambda t: t["layers.0.weight"].__setitem__((0, 0), np.nan)),
                   "NaN or infinite"),
    # logits beyond float32: NaN probabilities (and an arbitrary label) with only a RuntimeWarning
    "huge weight": (lambda f: _tensors(f, lambda t: t["layers.0.weight"].__setitem__((0, 0), 3e38)),
                    "so large that its outputs can reach"),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_a_tampered_pipeline_folder_is_refused_naming_its_file(pipeline, tmp_path, name):
    folder = pipeline.save_pretrained(tmp_path / "p")
    tamper, problem = TAMPERINGS[name]
    tamper(folder)
    with pytest.raises(ValueError, match=problem) as error:
        StaticPipeline.from_pretrained(folder)
    assert str(folder / HEAD_FILE) in str(error.value) or str(folder / HEAD_CONFIG_FILE) in str(error.value)


def test_the_constructor_checks_labels_and_head_size_too(tiny_model):
    layers = _layers(tiny_model.dim, (3,))
    with pytest.raises(TypeError, match="labels mix types"):
        StaticPipeline(tiny_model, layers, labels=[1, "a", "b"])
    with pytest.raises(ValueError, match="both 'a'"):
        StaticPipeline(tiny_model, layers, labels=["a", "a", "b"])
    with pytest.raises(TypeError, match="list of labels"):
        StaticPipeline(tiny_model, layers, labels="abc")
    huge = [(layers[0][0] * 1e38, layers[0][1])]
    with pytest.raises(ValueError, match="so large"):
        StaticPipeline(tiny_model, huge, labels=["a", "b", "c"])
    # numpy labels, ints and floats together (numbers), large but sane weights: fine
    assert StaticPipeline(tiny_model, layers, labels=np.array([3, 5, 7])).labels == [3, 5, 7]
    assert StaticPipeline(tiny_model, layers, labels=[1, 2.5, 3]).labels == [1, 2.5, 3]
    unnormalized = StaticPipeline(tiny_model, [(layers[0][0] * 1e20, layers[0][1])], labels=["a", "b", "c"],
                                  normalize=False)
    assert np.isfinite(unnormalized.predict_proba(TEXTS)).all()


# --------------------------------------------------------------------------- kill -9 during a save

KILL_POINTS = ["model.safetensors", "tokenizer.json", "config.json", "README.md", "head.safetensors",
               "head_config.json"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
@pytest.mark.parametrize("file", KILL_POINTS)
def test_kill_9_during_a_pipeline_save_keeps_the_old_one_whole_and_leaves_nothing(tiny_model, tmp_path, file):
    old = StaticPipeline(tiny_model, _layers(tiny_model.dim, (3,), seed=1), labels=["a", "b", "c"])
    new = StaticPipeline(tiny_model.quantize("float16"), _layers(tiny_model.dim, (4, 2), seed=2), labels=[7, 9])
    target = old.save_pretrained(tmp_path / "p")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: killed as the save starts writing `file`
        real_open = builtins.open

        def open_or_die(path, *args, **kwargs):
            if os.path.basename(str(path)) == file and "w" in (args[0] if args else kwargs.get("mode", "r")):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_open(path, *args, **kwargs)

        try:
            signal.alarm(60)
            builtins.open = open_or_die
            new.save_pretrained(target, overwrite=True)
        finally:
            os._exit(0)  # not reached when killed
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
    loaded = StaticPipeline.from_pretrained(target)
    assert loaded.labels == ["a", "b", "c"] and loaded.model.dtype == "float32"
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), old.predict_proba(TEXTS))
    # the next save removes what the killed one left (it used to leave a nested staging folder, a whole model, for
    # ever: named after the outer staging folder, no save ever recognized it)
    new.save_pretrained(target, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["p"]
    reloaded = StaticPipeline.from_pretrained(target)
    assert reloaded.labels == [7, 9] and reloaded.model.dtype == "float16"
    np.testing.assert_array_equal(reloaded.predict_proba(TEXTS), new.predict_proba(TEXTS))


def test_a_save_with_a_dtype_writes_one_folder_and_reloads(pipeline, tmp_path):
    folder = pipeline.save_pretrained(tmp_path / "p", dtype="int8")
    assert sorted(os.listdir(tmp_path)) == ["p"]
    loaded = StaticPipeline.from_pretrained(folder)
    assert loaded.model.dtype == "int8" and loaded.labels == pipeline.labels
    assert StaticModel.from_pretrained(folder).dtype == "int8"  # still a plain static model folder
    with pytest.raises(ValueError, match="dtype"):
        pipeline.save_pretrained(tmp_path / "q", dtype="float8")
    assert sorted(os.listdir(tmp_path)) == ["p"]


# --------------------------------------------------------------------------- ONNX export against numpy

ONNX_WORDS = [*WORDS, "zzz", "qq", "CAT", "Dog", "日本", "", " ", "!?"]
onnx_texts = st.lists(
    st.one_of(st.text(max_size=24), st.lists(st.sampled_from(ONNX_WORDS), max_size=14).map(" ".join)),
    min_size=1, max_size=6,
).filter(lambda texts: not any("[" in t for t in texts))  # a spelled-out "[MASK]": the one documented difference


def _onnx_run(session, tokenizer, texts: list[str], special: bool) -> dict[str, np.ndarray]:
    encodings = tokenizer.encode_batch(texts, add_special_tokens=special)
    feeds = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
             "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Pipelines (single- and multi-label, normalized or not, contrast pooling, max_length) and their models, each
    exported once, with an onnxruntime session and the exported tokenizer."""
    rng = np.random.default_rng(3)
    out = []
    for i, (normalize, contrast, multilabel) in enumerate([(True, 0.0, False), (False, 1.0, True),
                                                           (True, 1.0, True), (False, 0.0, False)]):
        table = rng.normal(size=(len(SPECIAL) + len(WORDS), 8)).astype(np.float32)
        model = StaticModel(table, make_wordpiece_tokenizer(), normalize=normalize, contrast=contrast, max_length=7)
        pipeline = StaticPipeline(model, _layers(8, (5, 3), seed=i), labels=[30, 10, 20], multilabel=multilabel,
                                  normalize=normalize, activation="tanh" if i % 2 else "relu")
        for thing in (pipeline, model):
            folder = export_onnx(thing, tmp_path_factory.mktemp("onnx") / "export")
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            tokenizer.enable_padding(pad_id=0)
            session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
            out.append((thing, session, tokenizer))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=onnx_texts, special=st.booleans())
def test_onnx_graphs_give_numpys_outputs_on_any_text(exported, texts, special):
    for thing, session, tokenizer in exported:
        out = _onnx_run(session, tokenizer, texts, special)
        if isinstance(thing, StaticModel):
            np.testing.assert_allclose(out["sentence_embedding"], thing.encode(texts), atol=2e-5, rtol=1e-4)
            continue
        np.testing.assert_allclose(out["logits"], thing.decision_function(texts), atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(out["probabilities"], thing.predict_proba(texts), atol=1e-5)
        if not thing.multilabel:
            assert [thing.labels[i] for i in out["label_index"]] == thing.predict(texts).tolist()


def test_texts_without_a_known_token_give_the_same_in_onnx(exported):
    texts = ["zzz qqq", "", "   ", "xyzzy", "ZZZ QQ"]  # no token of the vocabulary: the zero vector, as numpy
    for thing, session, tokenizer in exported:
        out = _onnx_run(session, tokenizer, texts, True)
        if isinstance(thing, StaticModel):
            np.testing.assert_array_equal(out["sentence_embedding"], thing.encode(texts))
            assert not out["sentence_embedding"].any()
        else:
            np.testing.assert_allclose(out["probabilities"], thing.predict_proba(texts), atol=1e-6)


def test_an_export_onto_an_existing_folder(tiny_model, tmp_path):
    first = StaticPipeline(tiny_model, _layers(tiny_model.dim, (3,), seed=1), labels=["a", "b", "c"])
    second = StaticPipeline(tiny_model, _layers(tiny_model.dim, (2,), seed=2), labels=[1, 2], multilabel=True)
    folder = export_onnx(first, tmp_path / "onnx")
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_onnx(second, folder)
    assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before
    export_onnx(second, folder, overwrite=True)
    assert json.loads((folder / LABELS_FILE).read_text()) == {"labels": [1, 2], "multilabel": True,
                                                               "label_format": "sets", "threshold": 0.5}
    assert sorted(os.listdir(tmp_path)) == ["onnx"]
    # a pipeline's own folder gets the export beside its files, and still loads as the same pipeline
    own = first.save_pretrained(tmp_path / "p")
    export_onnx(StaticPipeline.from_pretrained(own), own, overwrite=True)
    np.testing.assert_array_equal(StaticPipeline.from_pretrained(own).predict_proba(TEXTS), first.predict_proba(TEXTS))
    # another pipeline is refused there, and the folder is left as it was
    files = {name: (own / name).read_bytes() for name in os.listdir(own) if (own / name).is_file()}
    with pytest.raises(FileExistsError, match="another model"):
        export_onnx(second, own, overwrite=True)
    assert {name: (own / name).read_bytes() for name in os.listdir(own) if (own / name).is_file()} == files
    shutil.rmtree(own)


# --------------------------------------------------------------------------- StaticModelClassifier

FIT_TEXTS = [f"{w} {v} the" for w in ("cat", "dog", "money", "river") for v in ("sat", "runs", "fast", "slow")] * 2
TOPIC = {"cat": "pet", "dog": "pet", "money": "finance", "river": "nature"}


def _clf(model, **params) -> StaticModelClassifier:
    settings = {"hidden_dim": 8, "max_epochs": 3, "verbose": 0, "random_state": 0, **params}
    return StaticModelClassifier(model, **settings)


@pytest.mark.parametrize(("X", "y", "error", "problem"), [
    (FIT_TEXTS, ["a"] * len(FIT_TEXTS), ValueError, "single class"),
    ([], [], ValueError, "zero texts"),
    (FIT_TEXTS, ([1, "a"] * len(FIT_TEXTS))[: len(FIT_TEXTS)], TypeError, "mixes label types"),
    (FIT_TEXTS, ([1, True] * len(FIT_TEXTS))[: len(FIT_TEXTS)], TypeError, "mixes label types"),
    (FIT_TEXTS, ["a", "b"] * (len(FIT_TEXTS) // 2 - 1), ValueError, "different lengths"),
    (FIT_TEXTS, ([1.0, float("nan")] * len(FIT_TEXTS))[: len(FIT_TEXTS)], ValueError, "NaN or infinite labels"),
    # inf was a class: written as Infinity, which is not JSON (labels.json of the ONNX export too)
    (FIT_TEXTS, ([1.0, float("inf")] * len(FIT_TEXTS))[: len(FIT_TEXTS)], ValueError, "NaN or infinite labels"),
    (FIT_TEXTS, [["a", float("inf")]] * len(FIT_TEXTS), TypeError, "mixes label types"),
    (FIT_TEXTS, [[1.0, float("inf")]] * len(FIT_TEXTS), ValueError, "NaN or infinite labels"),
    (FIT_TEXTS, [None, "a"] * (len(FIT_TEXTS) // 2), TypeError, "strings or numbers"),
    (FIT_TEXTS, np.zeros((len(FIT_TEXTS), 2)), ValueError, "no positive labels"),
    # an indicator matrix as lists: read as label lists, every row named both classes 0 and 1
    (FIT_TEXTS, [[1, 0], [0, 1]] * (len(FIT_TEXTS) // 2), TypeError, "pass np.asarray"),
    (FIT_TEXTS, [[True, False, True]] * len(FIT_TEXTS), TypeError, "indicator matrix"),
])
def test_bad_training_input_is_refused_before_training(tiny_model, X, y, error, problem):
    with pytest.raises(error, match=problem):
        _clf(tiny_model).fit(X, y)


@pytest.mark.parametrize(("name", "value"), [
    ("hidden_dim", True), ("hidden_dim", 8.0), ("hidden_dim", 2.5), ("hidden_dim", "8"), ("hidden_dim", 0),
    ("n_layers", True), ("n_layers", 1.0), ("n_layers", -1),
    ("batch_size", True), ("batch_size", 16.0), ("batch_size", 0),
    ("max_epochs", True), ("max_epochs", 3.0), ("max_epochs", 2.5), ("max_epochs", np.float64(3)),
    ("min_epochs", False), ("min_epochs", 1.0),
    ("early_stopping_patience", True), ("early_stopping_patience", 2.0),
    ("max_length", True), ("max_length", 64.0),
    ("random_state", True), ("random_state", 1.0), ("random_state", -1), ("random_state", 2**32),
    ("n_threads", True), ("n_threads", 1.0),
    ("verbose", 1.0), ("verbose", -1), ("verbose", "yes"),
    ("normalize", "no"), ("normalize", 1), ("freeze_embeddings", 0),
    ("dropout", True), ("dropout", "0.1"), ("dropout", 1.0),
    ("threshold", "0.5"), ("threshold", True),
    ("validation_fraction", True), ("validation_fraction", 3.0), ("validation_fraction", -1),
])
def test_a_parameter_of_the_wrong_type_is_refused_at_fit_naming_it(tiny_model, name, value):
    """``True`` and ``3.0`` used to pass as ints (``int(True) == 1``), "0.1" as a dropout, "no" as normalize=True."""
    from sklearn.base import clone

    clf = clone(_clf(tiny_model, **{name: value}))  # stored as given: scikit-learn checks parameters at fit
    assert clf.get_params()[name] is value
    labels = [TOPIC[t.split()[0]] for t in FIT_TEXTS]
    with pytest.raises(ValueError, match=rf"^{name} must be .*, got {re.escape(repr(value))}\.$") as error:
        clf.fit(FIT_TEXTS, labels)
    assert isinstance(error.value, TypeError)  # as scikit-learn's InvalidParameterError: either except catches it
    assert not hasattr(clf, "classes_")


def test_numpy_ints_bools_and_none_are_valid_parameters(tiny_model):
    labels = [TOPIC[t.split()[0]] for t in FIT_TEXTS]
    clf = _clf(tiny_model, hidden_dim=np.int64(4), n_layers=np.int32(2), max_epochs=np.int64(2), batch_size=8,
               min_epochs=0, early_stopping_patience=None, random_state=None, verbose=False, normalize=np.bool_(False),
               dropout=0, threshold=np.float32(0.4), validation_fraction=3, max_length=np.int64(16))
    assert clf.fit(FIT_TEXTS, labels) is clf
    assert [w.shape for w, _ in clf.network_.export()[1]] == [(4, 8), (4, 4), (3, 4)]
    assert clf.n_epochs_ == 2 and len(clf.history_["val_loss"]) == 2


def test_an_indicator_matrix_given_as_an_array_or_label_lists_of_numbers_still_fit(tiny_model):
    rows = [[1, 0], [0, 1]] * (len(FIT_TEXTS) // 2)
    assert _clf(tiny_model).fit(FIT_TEXTS, np.asarray(rows)).classes_.tolist() == [0, 1]
    sets = [[0], [1, 2]] * (len(FIT_TEXTS) // 2)  # rows of different lengths: label lists, unambiguously
    assert _clf(tiny_model).fit(FIT_TEXTS, sets).classes_.tolist() == [0, 1, 2]


def test_nan_sample_weights_are_refused(tiny_model):
    labels = [TOPIC[t.split()[0]] for t in FIT_TEXTS]
    clf = _clf(tiny_model).fit(FIT_TEXTS, labels)
    with pytest.raises(ValueError, match="NaN"):
        clf.score(FIT_TEXTS, labels, sample_weight=[float("nan")] * len(FIT_TEXTS))
    with pytest.raises(ValueError, match="sample_weight must be finite"):  # fit's weights too: never a NaN loss
        clf.fit(FIT_TEXTS, labels, sample_weight=[float("nan")] * len(FIT_TEXTS))


@pytest.mark.parametrize("kind", ["str", "int", "str digits", "float", "bool"])
def test_labels_keep_their_type_through_save_and_load(tiny_model, tmp_path, kind):
    names = sorted(set(TOPIC.values()))
    mapping = {"str": {n: n for n in names}, "int": {n: i * 10 for i, n in enumerate(names)},
               "str digits": {n: str(i * 10) for i, n in enumerate(names)},
               "float": {n: i + 0.5 for i, n in enumerate(names)}, "bool": {n: n == "pet" for n in names}}[kind]
    y = [mapping[TOPIC[t.split()[0]]] for t in FIT_TEXTS]
    clf = _clf(tiny_model).fit(FIT_TEXTS, y)
    clf.save_pretrained(tmp_path / "p")
    loaded = StaticPipeline.from_pretrained(tmp_path / "p")
    expected = clf.predict(TEXTS)
    got = loaded.predict(TEXTS)
    assert got.tolist() == expected.tolist()
    assert [type(v) for v in got.tolist()] == [type(v) for v in expected.tolist()]
    assert {type(v) for v in got.tolist()} == {type(y[0])}  # "10" stays a string, 10 an int
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-5)


@pytest.mark.parametrize("kind", ["int", "str digits"])
def test_a_trained_classifiers_labels_come_back_from_its_onnx_export_as_the_pipeline_gives_them(tiny_model, tmp_path,
                                                                                                   kind):
    y = [(10 if kind == "int" else "10") if TOPIC[t.split()[0]] == "pet" else (2 if kind == "int" else "2")
         for t in FIT_TEXTS]
    pipeline = _clf(tiny_model).fit(FIT_TEXTS, y).to_pipeline()
    folder = export_onnx(pipeline, tmp_path / "onnx")
    labels = json.loads((folder / LABELS_FILE).read_text(encoding="utf-8"))
    assert labels["labels"] == pipeline.labels and labels["label_format"] == "single"
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0)
    texts = [*FIT_TEXTS[::3], "hello world", "zzz qqq", ""]
    index = _onnx_run(session, tokenizer, texts, True)["label_index"]
    got, expected = [labels["labels"][i] for i in index], pipeline.predict(texts).tolist()
    assert got == expected and {type(v) for v in got} == {type(y[0])}  # 10 is not "10", nor "10" 10


@pytest.mark.parametrize("form", ["indicator", "sets"])
def test_multilabel_with_an_all_zero_row_trains_and_exports(tiny_model, tmp_path, form):
    rows = [[TOPIC[t.split()[0]] == "pet", "fast" in t] for t in FIT_TEXTS]
    rows[0] = [False, False]
    assert not any(rows[0])
    if form == "indicator":
        y = np.array(rows, dtype=np.int64)
    else:
        y = [[name for name, on in zip(("pet", "quick"), row) if on] for row in rows]
    clf = _clf(tiny_model, max_epochs=5).fit(FIT_TEXTS, y)
    clf.save_pretrained(tmp_path / "p")
    loaded = StaticPipeline.from_pretrained(tmp_path / "p")
    expected, got = clf.predict(TEXTS), loaded.predict(TEXTS)
    if form == "indicator":
        np.testing.assert_array_equal(got, expected)
    else:
        assert got == expected and all(isinstance(labels, tuple) for labels in got)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-5)


def test_set_params_after_fit_does_not_change_the_exported_network(tiny_model):
    labels = [TOPIC[t.split()[0]] for t in FIT_TEXTS]
    clf = _clf(tiny_model, activation="tanh", normalize=True).fit(FIT_TEXTS, labels)
    clf.set_params(activation="relu", normalize=False)  # e.g. a grid's next point, before its fit
    # the export used these parameters instead of the trained network's: other probabilities, silently
    np.testing.assert_allclose(clf.to_pipeline().predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-5)


def test_a_diverging_fit_raises_instead_of_a_nan_model(tiny_model):
    labels = [TOPIC[t.split()[0]] for t in FIT_TEXTS]
    with pytest.raises(ValueError, match="diverged"):  # used to fit, then predict NaN probabilities
        _clf(tiny_model, learning_rate=1e30, validation_fraction=None).fit(FIT_TEXTS, labels)
    with pytest.raises(ValueError, match="diverged"):
        _clf(tiny_model, learning_rate=1e30).fit(FIT_TEXTS, labels)
