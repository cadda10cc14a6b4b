"""Audit of the fine-tuned classifier: what StaticModelClassifier and its numpy StaticPipeline got wrong before (long
texts of a model without a token limit, multi-label scores, labels numpy cannot hold, unordered or missing X and y),
and the torch model and the pipeline answering from several threads at once."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from helpers.threads import run_in_threads  # noqa: E402
from helpers.tokenizers import random_texts  # noqa: E402

from distill.classifier import StaticModelClassifier  # noqa: E402
from static_model import StaticModel  # noqa: E402
from static_model.pipeline import HEAD_CONFIG_FILE, HEAD_FILE, StaticPipeline  # noqa: E402

FIT_TEXTS = [f"{w} {v} the" for w in ("cat", "dog", "money", "river") for v in ("sat", "runs", "fast", "slow")] * 2
TOPIC = {"cat": "pet", "dog": "pet", "money": "finance", "river": "nature"}
LABELS = [TOPIC[t.split()[0]] for t in FIT_TEXTS]
LABEL_SETS = [[TOPIC[t.split()[0]], *(["quick"] if "fast" in t else [])] for t in FIT_TEXTS]


def _clf(model, **params) -> StaticModelClassifier:
    settings = {"hidden_dim": 8, "max_epochs": 3, "verbose": 0, "random_state": 0, **params}
    return StaticModelClassifier(model, **settings)


# --------------------------------------------------------------------------- parity on long texts


def test_a_base_model_without_a_token_limit_gives_a_pipeline_without_one(tiny_table, wordpiece_tokenizer, tmp_path):
    """The network saw every token of a text; the exported model fell back to StaticModel's default of 512 tokens and
    cut long texts: other probabilities than the trained model's (measured 0.34/0.33/0.34 against 0.30/0.23/0.47)."""
    base = StaticModel(tiny_table, wordpiece_tokenizer, config={"normalize": True}, max_length=None)
    clf = _clf(base).fit(FIT_TEXTS, LABELS)
    long = ["cat " * 600 + "money " * 600, "river " * 700 + "dog", "cat sat"]
    expected = clf.predict_proba(long)
    pipeline = clf.to_pipeline()
    assert pipeline.model.max_length is None
    np.testing.assert_allclose(pipeline.predict_proba(long), expected, atol=1e-5)
    loaded = StaticPipeline.from_pretrained(clf.save_pretrained(tmp_path / "p"))
    assert loaded.model.max_length is None
    np.testing.assert_allclose(loaded.predict_proba(long), expected, atol=1e-5)
    assert loaded.predict(long).tolist() == clf.predict(long).tolist()


def test_set_params_of_max_length_after_fit_changes_neither_predictions_nor_the_export(tiny_model):
    """The README: set_params after fit changes nothing until the next fit. max_length did: predict and the exported
    pipeline both cut texts at the new limit, which the network was never trained with."""
    clf = _clf(tiny_model, max_length=6).fit(FIT_TEXTS, LABELS)
    texts = ["cat sat the dog runs money", "money tax law river bank cat dog sat", "river"]
    expected, labels = clf.predict_proba(texts), clf.predict(texts).tolist()
    clf.set_params(max_length=2)
    np.testing.assert_array_equal(clf.predict_proba(texts), expected)
    pipeline = clf.to_pipeline()
    assert pipeline.model.max_length == 6
    np.testing.assert_allclose(pipeline.predict_proba(texts), expected, atol=1e-5)
    assert pipeline.predict(texts).tolist() == labels
    clf.fit(FIT_TEXTS, LABELS)  # the next fit takes the new limit
    assert clf.to_pipeline().model.max_length == 2


# --------------------------------------------------------------------------- multi-label score


@pytest.fixture
def multilabel_clf(tiny_model) -> StaticModelClassifier:
    return _clf(tiny_model, max_epochs=30, learning_rate=0.05).fit(FIT_TEXTS, LABEL_SETS)


def test_a_true_label_the_model_does_not_know_makes_the_text_wrong_in_score(multilabel_clf):
    """A binarizer over classes_ dropped unknown true labels (with a warning) and counted those texts right: 0.875
    where no text was right."""
    predicted = multilabel_clf.predict(FIT_TEXTS)
    right = [set(p) == set(t) for p, t in zip(predicted, LABEL_SETS)]
    assert multilabel_clf.score(FIT_TEXTS, LABEL_SETS) == pytest.approx(np.mean(right))
    assert 0 < np.mean(right)
    with_unknown = [[*labels, "unknown"] for labels in LABEL_SETS]
    assert multilabel_clf.score(FIT_TEXTS, with_unknown) == 0.0
    weights = np.arange(1, len(FIT_TEXTS) + 1, dtype=float)
    assert multilabel_clf.score(FIT_TEXTS, LABEL_SETS, sample_weight=weights) == pytest.approx(
        np.average(right, weights=weights)
    )
    # tuples, sets and numpy label lists are label lists too
    as_arrays = np.empty(len(LABEL_SETS), dtype=object)
    as_arrays[:] = [np.array(labels) for labels in LABEL_SETS]
    for truth in ([tuple(labels) for labels in LABEL_SETS], [set(labels) for labels in LABEL_SETS], as_arrays):
        assert multilabel_clf.score(FIT_TEXTS, truth) == pytest.approx(np.mean(right))


def test_multilabel_score_refuses_plain_labels_and_a_length_mismatch(multilabel_clf):
    """A plain string label was read as the list of its characters ("pet" -> p, e, t): a score of 0.25, silently."""
    with pytest.raises(TypeError, match="one list of labels per text"):
        multilabel_clf.score(FIT_TEXTS, LABELS)
    with pytest.raises(ValueError, match="different lengths"):
        multilabel_clf.score(FIT_TEXTS, LABEL_SETS[:-1])


# --------------------------------------------------------------------------- labels numpy would change


@pytest.mark.parametrize("pair", [(2**64 - 1, 1), (2**53 + 1, 0.5)], ids=["uint64", "int beyond float53"])
def test_labels_a_numpy_array_would_change_keep_their_values(tiny_model, tmp_path, pair):
    """``np.array`` makes float64 of ``[2**64 - 1, 1]`` and rounds ``2**53 + 1`` beside ``0.5``: fit died with a bare
    KeyError, and a pipeline given such labels predicted floats that were never labels."""
    y = [pair[0] if TOPIC[t.split()[0]] == "pet" else pair[1] for t in FIT_TEXTS]
    if isinstance(pair[1], int):
        y = list(np.array(y, dtype=np.uint64))  # numpy's own uint64 values, as a label column would hold them
    clf = _clf(tiny_model).fit(FIT_TEXTS, y)
    assert clf.classes_.tolist() == sorted(pair)
    predicted = clf.predict(FIT_TEXTS).tolist()
    assert set(predicted) <= set(pair)
    loaded = StaticPipeline.from_pretrained(clf.save_pretrained(tmp_path / "p"))
    assert loaded.classes_.tolist() == sorted(pair)
    assert loaded.predict(FIT_TEXTS).tolist() == predicted
    assert [type(v) for v in loaded.predict(FIT_TEXTS).tolist()] == [type(v) for v in predicted]


def test_a_pipelines_classes_are_its_labels(tiny_model):
    layers = [(np.eye(2, tiny_model.dim, dtype=np.float32), np.zeros(2, np.float32))]
    pipeline = StaticPipeline(tiny_model, layers, labels=np.array([2**64 - 1, 1], dtype=np.uint64))
    assert pipeline.classes_.tolist() == [2**64 - 1, 1]
    assert set(pipeline.predict(["cat", "dog sat"]).tolist()) <= {2**64 - 1, 1}
    # labels numpy holds as they are keep numpy's dtype
    assert StaticPipeline(tiny_model, layers, labels=[3, 5]).classes_.dtype.kind == "i"
    assert StaticPipeline(tiny_model, layers, labels=["a", "bb"]).classes_.dtype.kind == "U"


# --------------------------------------------------------------------------- bad input at fit


@pytest.mark.parametrize(
    ("X", "y", "error", "problem"),
    [
        (
            FIT_TEXTS,
            None,
            TypeError,
            "y must be a sequence of labels .* got NoneType",
        ),  # "'NoneType' object is not ..."
        (FIT_TEXTS, 3, TypeError, "y must be a sequence of labels .* got int"),
        # a set or a dict has no order: texts were paired with labels (and predictions returned) in an arbitrary order
        (set(FIT_TEXTS), LABELS[:16], TypeError, "X is a set, which has no row order"),
        (dict.fromkeys(FIT_TEXTS[:16], 0), LABELS[:16], TypeError, "X is a dict, which has no row order"),
        (FIT_TEXTS[:3], {"pet", "finance", "nature"}, TypeError, "y is a set, which has no row order"),
        # a missing label is named as one (a TypeError still, and a ValueError): see the test of missing labels below
        (FIT_TEXTS, [None, "a"] * (len(FIT_TEXTS) // 2), TypeError, r"^y has a missing label at row 0 \(None"),
    ],
)
def test_missing_or_unordered_X_and_y_are_refused_naming_them(tiny_model, X, y, error, problem):
    clf = _clf(tiny_model)
    with pytest.raises(error, match=problem):
        clf.fit(X, y)
    assert not hasattr(clf, "classes_")


def test_predict_refuses_an_unordered_X_as_the_pipeline_does(tiny_model):
    clf = _clf(tiny_model).fit(FIT_TEXTS, LABELS)
    for method in (clf.predict, clf.predict_proba, clf.to_pipeline().predict):
        with pytest.raises(TypeError, match="no row order"):
            method(set(FIT_TEXTS[:4]))


def test_a_class_weight_that_is_not_a_number_is_refused_naming_it(tiny_model):
    """It failed with float()'s bare "could not convert string to float: 'x'"."""
    with pytest.raises(ValueError, match="class_weight values must be numbers; class 'pet' has 'x'"):
        _clf(tiny_model, class_weight={"pet": "x"}).fit(FIT_TEXTS, LABELS)
    assert _clf(tiny_model, class_weight={"pet": 2, "finance": np.float32(0.5)}).fit(FIT_TEXTS, LABELS)


def test_a_validation_count_that_leaves_nothing_to_train_on_is_refused(tiny_model):
    """A count of at least the number of texts was clamped, silently, to train on one single text."""
    with pytest.raises(ValueError, match="asks for 100 validation texts, but there are only 32 texts"):
        _clf(tiny_model, validation_fraction=100).fit(FIT_TEXTS, LABELS)
    with pytest.raises(ValueError, match="validation_fraction=32"):
        _clf(tiny_model, validation_fraction=len(FIT_TEXTS)).fit(FIT_TEXTS, LABELS)
    clf = _clf(tiny_model, validation_fraction=len(FIT_TEXTS) - 1).fit(FIT_TEXTS, LABELS)  # one left: allowed
    assert len(clf.history_["val_loss"]) == clf.n_epochs_


# --------------------------------------------------------------------------- a folder that lost a file


@pytest.mark.parametrize("name", [HEAD_FILE, HEAD_CONFIG_FILE, "model.safetensors"])
def test_a_pipeline_folder_that_lost_a_file_is_refused_naming_that_file(tiny_model, tmp_path, name):
    """A folder that lost one head file was called "not a classifier pipeline folder ... (a plain static model folder
    has neither)", naming no file."""
    layers = [(np.eye(3, tiny_model.dim, dtype=np.float32), np.zeros(3, np.float32))]
    folder = StaticPipeline(tiny_model, layers, labels=["a", "b", "c"]).save_pretrained(tmp_path / "p")
    (folder / name).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(folder / name)) + " is missing"):
        StaticPipeline.from_pretrained(folder)


# --------------------------------------------------------------------------- under load


def test_a_trained_classifier_and_its_pipeline_answer_the_same_from_eight_threads(tiny_model, tmp_path):
    clf = _clf(tiny_model, dropout=0.3, max_epochs=5).fit(FIT_TEXTS, LABEL_SETS)  # dropout: eval mode must hold
    pipeline = StaticPipeline.from_pretrained(clf.save_pretrained(tmp_path / "p"))
    texts = random_texts(400, seed=3) + ["", "zzz qqq"]
    expected = (clf.predict_proba(texts), clf.predict(texts), pipeline.predict_proba(texts), pipeline.predict(texts))
    assert expected[1] == expected[3]
    mismatches: list[int] = []

    def work(i: int) -> None:
        for _ in range(4):
            got = (clf.predict_proba(texts), clf.predict(texts), pipeline.predict_proba(texts), pipeline.predict(texts))
            if not (
                np.array_equal(got[0], expected[0])
                and got[1] == expected[1]
                and np.array_equal(got[2], expected[2])
                and got[3] == expected[3]
            ):
                mismatches.append(i)

    run_in_threads(work, 8)
    assert not mismatches


# --------------------------------------------------------------------------- the decision threshold


def test_a_threshold_set_after_fit_applies_at_once_and_an_invalid_one_is_refused(multilabel_clf, tiny_model):
    """``threshold`` is the decision rule, not the network: set after fit it applies to predict and the export at
    once. Set to 1 or more, predict returned no label for any text, silently; a pipeline's single-label predict took
    any threshold (5, "x") and ignored it."""
    texts = ["cat sat fast", "money runs slow", "river"]
    labels, proba = multilabel_clf.classes_.tolist(), multilabel_clf.predict_proba(texts)
    for threshold in (0.05, 0.95):
        multilabel_clf.set_params(threshold=threshold)
        expected = [{labels[j] for j in np.flatnonzero(row > threshold)} for row in proba]
        assert [set(row) for row in multilabel_clf.predict(texts)] == expected
    assert multilabel_clf.to_pipeline().predict(texts) == multilabel_clf.predict(texts)
    for bad in (1.0, 5, float("nan")):
        multilabel_clf.set_params(threshold=bad)
        with pytest.raises(ValueError, match="threshold must be between 0 and 1"):
            multilabel_clf.predict(texts)
    single = _clf(tiny_model).fit(FIT_TEXTS, LABELS).to_pipeline()
    assert single.predict(texts, threshold=0.9).tolist() == single.predict(texts).tolist()
    with pytest.raises(ValueError, match="threshold must be between 0 and 1"):
        single.predict(texts, threshold=5)
    with pytest.raises(TypeError, match="threshold must be a number"):
        single.predict(texts, threshold="x")


# --------------------------------------------------------------------------- epochs, torch threads, missing labels,
# balanced class weights with sample weights


def test_min_epochs_above_max_epochs_is_refused_naming_both(tiny_model):
    """``min_epochs=5, max_epochs=3`` was accepted and trained 3 epochs, silently."""
    from sklearn.base import clone

    from distill.classifier import InvalidParameterError

    clf = _clf(tiny_model, min_epochs=5, max_epochs=3)
    with pytest.raises(InvalidParameterError, match=r"min_epochs=5 is above max_epochs=3"):
        clf.fit(FIT_TEXTS, LABELS)
    assert not hasattr(clf, "classes_")
    assert clone(clf).get_params()["min_epochs"] == 5  # checked at fit, as the other parameters: clone still works
    assert _clf(tiny_model, min_epochs=3, max_epochs=3).fit(FIT_TEXTS, LABELS).n_epochs_ == 3


def _fresh_thread_threads() -> int:
    """torch's thread count as a thread started now sees it: with OpenMP each thread keeps its own count, and a new
    thread takes the process-wide one (the value a fit elsewhere leaves behind)."""
    import torch

    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


def test_two_fits_in_two_threads_at_once_leave_torchs_thread_count_as_it_was(tiny_model, monkeypatch):
    """Each fit saved the count it found and restored it: a fit that started while another trained found (and
    restored, last) the other's temporary count, so every thread started afterwards ran torch on that count."""
    import torch

    from distill.classifier import training

    before_main, before_fresh = torch.get_num_threads(), _fresh_thread_threads()
    n_threads = before_fresh + 1  # any count other than the one in force
    first_training, second_training, first_done = threading.Event(), threading.Event(), threading.Event()
    during: list[int] = []
    train = training.train

    def overlapping_train(*args, **kwargs):  # the first fit trains until the second trains; the second ends last
        during.append(torch.get_num_threads())
        if not first_training.is_set():
            first_training.set()
            assert second_training.wait(60)
        else:
            second_training.set()
            assert first_done.wait(60)
        return train(*args, **kwargs)

    monkeypatch.setattr(training, "train", overlapping_train)
    errors: list[BaseException] = []
    after: list[int] = []

    def fit(done: threading.Event | None) -> None:
        try:
            _clf(tiny_model, n_threads=n_threads).fit(FIT_TEXTS, LABELS)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            after.append(torch.get_num_threads())  # the fitting thread's own count
            if done is not None:
                done.set()

    first = threading.Thread(target=fit, args=(first_done,))
    first.start()
    assert first_training.wait(60)
    second = threading.Thread(target=fit, args=(None,))
    second.start()
    first.join(120)
    second.join(120)
    assert not errors, errors
    assert during == [n_threads, n_threads]
    assert after == [before_fresh, before_fresh]
    assert (torch.get_num_threads(), _fresh_thread_threads()) == (before_main, before_fresh)


def test_a_fit_that_fails_while_training_restores_torchs_thread_count(tiny_model, monkeypatch):
    import torch

    from distill.classifier import training

    before_main, before_fresh = torch.get_num_threads(), _fresh_thread_threads()
    n_threads = before_fresh + 1
    failures: list[BaseException] = []

    def failing_train(*args, **kwargs):
        assert torch.get_num_threads() == n_threads
        raise RuntimeError("training failed")

    def fit() -> None:  # in a new thread, which starts from the process-wide count (see _fresh_thread_threads)
        try:
            _clf(tiny_model, n_threads=n_threads).fit(FIT_TEXTS, LABELS)
        except BaseException as exc:  # noqa: BLE001 (checked below)
            failures.append(exc)
        seen.append(torch.get_num_threads())

    monkeypatch.setattr(training, "train", failing_train)
    seen: list[int] = []
    thread = threading.Thread(target=fit)
    thread.start()
    thread.join(120)
    assert [str(exc) for exc in failures] == ["training failed"]
    assert seen == [before_fresh]  # the fitting thread's own count too
    assert (torch.get_num_threads(), _fresh_thread_threads()) == (before_main, before_fresh)
    # None keeps torch's count: nothing is set, nothing restored
    monkeypatch.undo()
    _clf(tiny_model, n_threads=None).fit(FIT_TEXTS, LABELS)
    assert (torch.get_num_threads(), _fresh_thread_threads()) == (before_main, before_fresh)


def _with_missing(row: int, value: object) -> list[object]:
    labels: list[object] = list(LABELS)
    labels[row] = value
    return labels


@pytest.mark.parametrize(
    ("make_y", "problem"),
    [
        (lambda: _with_missing(3, None), r"row 3 \(None"),
        (lambda: _with_missing(5, float("nan")), r"row 5 \(NaN"),
        (lambda: np.array(_with_missing(5, np.nan), dtype=object), r"row 5 \(NaN"),
        (lambda: pytest.importorskip("pandas").Series(_with_missing(7, None), dtype=object), r"row 7 \(None"),
        (lambda: pytest.importorskip("pandas").Series(_with_missing(7, np.nan), dtype=object), r"row 7 \(NaN"),
        (lambda: pytest.importorskip("pandas").Series(_with_missing(2, None), dtype="string"), r"row 2 \(NA"),
        (lambda: np.where(np.arange(len(LABELS)) == 4, np.nan, np.arange(len(LABELS)) % 2), r"row 4 \(NaN"),
        (lambda: [[*labels, None] if i == 6 else labels for i, labels in enumerate(LABEL_SETS)], r"row 6 \(None"),
    ],
    ids=["None", "NaN", "object array", "Series None", "Series NaN", "Series NA", "float array", "label list"],
)
def test_a_missing_label_is_reported_as_missing_naming_its_row(tiny_model, make_y, problem):
    """A NaN among string labels (pandas' missing value) was reported as "y mixes label types (str: 'pet', float:
    nan)", and None as "Labels must be strings or numbers, got NoneType": neither said a label was missing, nor
    where."""
    clf = _clf(tiny_model)
    with pytest.raises(ValueError, match=r"^y has a missing label at row \d+ .*; drop or fill") as info:
        clf.fit(FIT_TEXTS, make_y())
    assert re.search(problem, str(info.value))
    assert "\n" not in str(info.value)
    assert not hasattr(clf, "classes_")


def _class_weights_fit_with(tiny_model, monkeypatch, y, sample_weight) -> np.ndarray:
    """The class weights a balanced fit trains with."""
    from distill.classifier import training

    seen: list[np.ndarray] = []

    def recording_train(*args, **kwargs):
        seen.append(kwargs["class_weights"])
        raise RuntimeError("recorded")

    monkeypatch.setattr(training, "train", recording_train)
    with pytest.raises(RuntimeError, match="recorded"):
        _clf(tiny_model, class_weight="balanced").fit(FIT_TEXTS, y, sample_weight=sample_weight)
    return seen[0]


@pytest.mark.parametrize("scale", [1.0, 1e-3])
def test_balanced_class_weights_count_texts_by_their_sample_weight_as_scikit_learn_does(tiny_model, monkeypatch, scale):
    """scikit-learn's "balanced" weights are ``sum(w) / (k * sum of w per class)`` with sample weights
    (``compute_class_weight(..., sample_weight=...)``, which LogisticRegression and the SVMs pass): a weight of 2
    counts a text twice, as two copies of it would. The classes were counted by texts, sample weights ignored."""
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array(LABELS)
    weights = np.where(y == "pet", 1.0, 3.0) * scale
    weights[0] = 0.0  # dropped, as if not in X
    expected = compute_class_weight("balanced", classes=np.unique(y), y=y, sample_weight=weights)
    got = _class_weights_fit_with(tiny_model, monkeypatch, LABELS, weights)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # multi-label pos_weight: weighted negatives over weighted positives of each label
    classes = sorted({label for labels in LABEL_SETS for label in labels})
    indicator = np.array([[c in labels for c in classes] for labels in LABEL_SETS], dtype=float)
    positives = weights @ indicator
    got = _class_weights_fit_with(tiny_model, monkeypatch, LABEL_SETS, weights)
    np.testing.assert_allclose(got, (weights.sum() - positives) / positives, rtol=1e-6)


# --------------------------------------------------------------------------- score checks y as fit does

NUMBERS = [i % 2 for i in range(len(FIT_TEXTS))]
INDICATOR = np.array([[TOPIC[t.split()[0]] == "pet", "fast" in t] for t in FIT_TEXTS], dtype=np.int64)
_TRAINED_ON = {"single": LABELS, "numbers": NUMBERS, "sets": LABEL_SETS, "indicator": INDICATOR}


def _replaced(labels, row: int, value: object) -> list[object]:
    out = list(labels)
    out[row] = value
    return out


def _nan_cell(row: int) -> np.ndarray:
    matrix = INDICATOR.astype(float)
    matrix[row, 1] = np.nan
    return matrix


@pytest.mark.parametrize(
    ("kind", "make_y", "problem"),
    [
        ("single", lambda: _replaced(LABELS, 3, None), r"row 3 \(None;"),  # was "'<' not supported between ..."
        ("single", lambda: _replaced(LABELS, 5, float("nan")), r"row 5 \(NaN;"),  # was a score, the row counted wrong
        ("single", lambda: pytest.importorskip("pandas").Series(_replaced(LABELS, 2, None), dtype="string"),
         r"row 2 \(NA;"),  # was "boolean value of NA is ambiguous"
        ("numbers", lambda: np.where(np.arange(len(NUMBERS)) == 4, np.nan, NUMBERS), r"row 4 \(NaN;"),
        ("sets", lambda: _replaced(LABEL_SETS, 6, ["pet", None]), r"row 6 \(None in its label list;"),
        ("sets", lambda: _replaced(LABEL_SETS, 6, ["pet", float("nan")]), r"row 6 \(NaN in its label list;"),
        ("sets", lambda: _replaced(LABEL_SETS, 3, None), r"row 3 \(None;"),  # was "item 3 is NoneType"
        ("indicator", lambda: _nan_cell(7), r"row 7 \(NaN in its indicator row;"),  # was "Input y_true contains NaN"
    ],
    ids=["None", "NaN", "Series NA", "float array", "None in list", "NaN in list", "None row", "indicator NaN"],
)
def test_score_reports_a_missing_label_as_fit_does_naming_its_row(tiny_model, kind, make_y, problem):
    """fit named a missing label's row (MissingLabelError); score gave other messages for the same y ("Labels must be
    finite", "'<' not supported", numpy's or scikit-learn's NaN errors) or, for a NaN among string labels, a score.
    Both now give one message, from one check."""
    from distill.classifier.data import MissingLabelError

    with pytest.raises(MissingLabelError) as at_fit:
        _clf(tiny_model).fit(FIT_TEXTS, make_y())
    clf = _clf(tiny_model).fit(FIT_TEXTS, _TRAINED_ON[kind])
    with pytest.raises(MissingLabelError, match=r"^y has a missing label at " + problem) as at_score:
        clf.score(FIT_TEXTS, make_y())
    assert str(at_score.value).endswith("; drop or fill those rows before scoring.")
    assert str(at_score.value) == str(at_fit.value).replace("before fitting.", "before scoring.")


@pytest.mark.parametrize(
    ("kind", "y", "error", "problem"),
    [
        # scikit-learn's "Found input variables with inconsistent numbers of samples: [31, 32]"
        ("single", LABELS[:-1], ValueError, "X and y have different lengths: 32 texts but 31 labels"),
        ("single", None, TypeError, "y must be a sequence of labels, got NoneType"),  # "The 'y_true' parameter ..."
        ("single", set(LABELS), TypeError, "y is a set, which has no row order"),
        ("single", LABEL_SETS, TypeError, r"one label per text \(this classifier was trained on single labels\)"),
        ("single", [3, *LABELS[1:]], TypeError, r"y mixes label types \(int: 3, str: 'pet'\)"),  # was a score
        ("single", [1] * len(LABELS), TypeError, r"y holds number labels \(1\), but this classifier was trained on "
                                                 r"str labels \('finance', 'nature', 'pet'\)"),
        ("sets", {("pet",)}, TypeError, "y is a set, which has no row order"),  # was a score of 0.0
        ("sets", _replaced(LABEL_SETS, 0, ["pet", 3]), TypeError, "y mixes label types"),  # was a score
        ("sets", [[1]] * len(LABEL_SETS), TypeError, "y holds number labels"),  # was a score of 0.0
        ("indicator", INDICATOR * 2, ValueError, "must hold only 0 and 1"),  # was a score of 0.0
        ("indicator", INDICATOR[:, :1], ValueError, r"indicator matrix of shape \(32, 2\) .* got shape \(32, 1\)"),
        ("indicator", LABELS, ValueError, r"indicator matrix of shape \(32, 2\) .* got shape \(32,\)"),
        ("indicator", None, TypeError, "y must be a 0/1 indicator matrix"),
    ],
    ids=["length", "None", "set", "label lists", "mixed types", "other type", "sets: set", "sets: mixed types",
         "sets: other type", "indicator: 2", "indicator: width", "indicator: labels", "indicator: None"],
)
def test_score_checks_y_as_fit_does_before_predicting(tiny_model, monkeypatch, kind, y, error, problem):
    """score handed y to scikit-learn unchecked: tracebacks about y_true, or a silent score for a y that fit refuses
    (labels of mixed types, of another type than the classes, values other than 0/1, an unordered set)."""
    clf = _clf(tiny_model).fit(FIT_TEXTS, _TRAINED_ON[kind])

    def not_yet(X):
        raise AssertionError("the texts were predicted before y was checked")

    monkeypatch.setattr(clf, "predict", not_yet)
    with pytest.raises(error, match=problem):
        clf.score(FIT_TEXTS[:1] if isinstance(y, set) and kind == "sets" else FIT_TEXTS, y)


def test_score_still_scores_every_form_of_y_fit_takes(tiny_model):
    pandas = pytest.importorskip("pandas")
    clf = _clf(tiny_model).fit(FIT_TEXTS, LABELS)
    right = clf.predict(FIT_TEXTS) == np.array(LABELS)
    weights = np.arange(1, len(LABELS) + 1, dtype=float)
    for y in (LABELS, tuple(LABELS), np.array(LABELS), np.array(LABELS, dtype=object), pandas.Series(LABELS)):
        assert clf.score(FIT_TEXTS, y) == pytest.approx(right.mean())
    assert clf.score(FIT_TEXTS, LABELS, sample_weight=weights) == pytest.approx(np.average(right, weights=weights))
    assert clf.score(FIT_TEXTS, _replaced(LABELS, 0, "unknown")) == pytest.approx((right.sum() - right[0]) / 32)
    numbers = _clf(tiny_model).fit(FIT_TEXTS, NUMBERS)
    expected = (numbers.predict(FIT_TEXTS) == np.array(NUMBERS)).mean()
    assert numbers.score(FIT_TEXTS, NUMBERS) == numbers.score(FIT_TEXTS, np.array(NUMBERS, dtype=float)) == expected
    indicator = _clf(tiny_model).fit(FIT_TEXTS, INDICATOR)
    expected = (indicator.predict(FIT_TEXTS) == INDICATOR).all(axis=1).mean()
    assert indicator.score(FIT_TEXTS, INDICATOR) == indicator.score(FIT_TEXTS, INDICATOR.tolist()) == expected
    assert indicator.score(FIT_TEXTS, INDICATOR.astype(bool)) == expected
    for fitted, empty in ((clf, []), (numbers, np.zeros(0)), (indicator, np.zeros((0, 2)))):  # scikit-learn's message
        with pytest.raises(ValueError, match="Found empty input array"):
            fitted.score([], empty)


@pytest.mark.parametrize("kind", ["single", "sets", "indicator"])
@pytest.mark.parametrize(
    ("weights", "problem"),
    [
        ([-1.0] * len(FIT_TEXTS), "sample_weight must be non-negative; item 0 is"),  # was a score
        ([1.0] * 3, "sample_weight has 3 values but X has 32 texts"),  # "inconsistent numbers of samples: [32, 32, 3]"
        ([0.0] * len(FIT_TEXTS), "sample_weight is zero for every text: there is nothing to score"),
    ],
    ids=["negative", "length", "zeros"],
)
def test_score_checks_sample_weight_as_fit_does(tiny_model, kind, weights, problem):
    """fit refused negative weights; score summed them into a weighted accuracy (0.31 with every weight -1), and named
    a wrong number of weights as scikit-learn's "inconsistent numbers of samples"."""
    clf = _clf(tiny_model).fit(FIT_TEXTS, _TRAINED_ON[kind])
    with pytest.raises(ValueError, match=problem):
        clf.score(FIT_TEXTS, _TRAINED_ON[kind], sample_weight=weights)


@pytest.mark.parametrize("key", [float("nan"), None, ("pet",)], ids=["NaN", "None", "tuple"])
def test_a_class_weight_key_that_cannot_be_a_class_is_refused_naming_class_weight(tiny_model, key):
    """It failed with the label checks' own "Labels must be finite; got nan." or "Labels must be strings or numbers",
    which named no argument: y was fine."""
    with pytest.raises((TypeError, ValueError), match=r"^class_weight names .*, which cannot be a class: "):
        _clf(tiny_model, class_weight={key: 2.0}).fit(FIT_TEXTS, LABELS)
