"""StaticModelClassifier (scikit-learn API, torch training) and StaticPipeline (numpy inference)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers  # noqa: E402

from distill.classifier import StaticModelClassifier  # noqa: E402
from static_model import StaticModel  # noqa: E402
from static_model.pipeline import HEAD_CONFIG_FILE, HEAD_FILE, StaticPipeline  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

TOPICS = {
    "sport": ["ball", "goal", "team", "match", "score", "coach", "league", "player"],
    "food": ["pasta", "bread", "cheese", "soup", "salad", "cake", "spice", "sauce"],
    "tech": ["laptop", "code", "server", "chip", "cloud", "robot", "app", "screen"],
}
FILLER = ["the", "a", "is", "was", "very", "today", "and", "my", "new", "good", "big", "small"]


def _tokenizer() -> Tokenizer:
    words = sorted({w for ws in TOPICS.values() for w in ws} | set(FILLER))
    pieces = ["##s", "##ing", "##ed"]
    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words, *pieces])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tok


def _texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    names = sorted(TOPICS)
    texts, labels = [], []
    for i in range(n):
        label = names[i % len(names)]
        words = list(rng.choice(TOPICS[label], size=2)) + list(rng.choice(FILLER, size=int(rng.integers(2, 6))))
        if rng.random() < 0.15:  # a little noise from another topic
            words.append(str(rng.choice(TOPICS[names[(i + 1) % len(names)]])))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def tiny_static_model() -> StaticModel:
    tok = _tokenizer()
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(tok.get_vocab_size(), 16)).astype(np.float32)
    weights = rng.uniform(0.5, 1.5, size=tok.get_vocab_size()).astype(np.float32)
    return StaticModel(embeddings, tok, weights=weights, config={"normalize": True})


@pytest.fixture(scope="module")
def tiny_static_folder(tiny_static_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("static") / "tiny"
    tiny_static_model.save_pretrained(path, dtype="float16")  # a stored dtype the fine-tuned table won't keep
    return path


@pytest.fixture(scope="module")
def topic_data():
    return _texts(150, seed=1), _texts(60, seed=2)


def _quick(model, **kwargs) -> StaticModelClassifier:
    params = dict(hidden_dim=32, max_epochs=30, early_stopping_patience=5, verbose=0, learning_rate=1e-2)
    params.update(kwargs)
    return StaticModelClassifier(model, **params)


@pytest.fixture(scope="module")
def fitted(tiny_static_model, topic_data) -> StaticModelClassifier:
    (X, y), _ = topic_data
    return _quick(tiny_static_model).fit(X, y)


# ---------------------------------------------------------------- scikit-learn API
def test_init_stores_params_only(tiny_static_model):
    clf = StaticModelClassifier(tiny_static_model, hidden_dim=7, learning_rate=0.5)
    assert clf.get_params()["hidden_dim"] == 7 and clf.get_params()["model"] is tiny_static_model
    assert not [k for k in vars(clf) if k.endswith("_")]
    assert clf.set_params(hidden_dim=9) is clf and clf.hidden_dim == 9


def test_fit_predict_score(fitted, topic_data):
    (X, y), (X_test, y_test) = topic_data
    assert list(fitted.classes_) == ["food", "sport", "tech"]
    assert fitted.n_epochs_ >= fitted.best_epoch_ >= 1
    proba = fitted.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3) and np.allclose(proba.sum(axis=1), 1.0)
    predicted = fitted.predict(X_test)
    assert predicted.shape == (len(X_test),) and set(predicted) <= set(fitted.classes_)
    assert np.array_equal(predicted, fitted.classes_[proba.argmax(axis=1)])
    assert fitted.score(X_test, y_test) >= 0.9


def test_fit_from_folder_and_integer_labels(tiny_static_folder, topic_data):
    (X, y), (X_test, y_test) = topic_data
    codes = {"food": 10, "sport": 20, "tech": 30}
    clf = _quick(str(tiny_static_folder), max_epochs=5).fit(X, [codes[v] for v in y])
    assert clf.classes_.tolist() == [10, 20, 30] and clf.predict(X_test).dtype.kind == "i"
    pipeline = clf.to_pipeline()
    assert pipeline.model.embedding_matrix().dtype == np.float32
    assert np.array_equal(pipeline.predict(X_test), clf.predict(X_test))


def test_clone_and_grid_search(tiny_static_model, topic_data):
    (X, y), _ = topic_data
    clf = _quick(tiny_static_model, max_epochs=4)
    copy = clone(clf)
    assert copy.get_params()["hidden_dim"] == 32 and not hasattr(copy, "classes_")
    search = GridSearchCV(clf, {"hidden_dim": [8, 16], "n_layers": [0, 1]}, cv=2)
    search.fit(X[:60], y[:60])
    assert len(search.cv_results_["mean_test_score"]) == 4
    # the chosen parameters reached the refitted network: its head has the grid point's shape (16-dim table, 3 classes)
    best = search.best_params_
    shapes = [w.shape for w, _ in search.best_estimator_.network_.export()[1]]
    hidden = best["hidden_dim"]
    if best["n_layers"] == 0:
        assert shapes == [(3, 16)]
    else:
        assert shapes == [(hidden, 16)] + [(hidden, hidden)] * (best["n_layers"] - 1) + [(3, hidden)]
    assert search.best_estimator_.predict(X[:3]).shape == (3,)


def test_same_seed_same_model(tiny_static_model, topic_data):
    (X, y), (X_test, _) = topic_data
    a = _quick(tiny_static_model, max_epochs=5, dropout=0.1).fit(X, y).predict_proba(X_test)
    b = _quick(tiny_static_model, max_epochs=5, dropout=0.1).fit(X, y).predict_proba(X_test)
    c = _quick(tiny_static_model, max_epochs=5, dropout=0.1, random_state=7).fit(X, y).predict_proba(X_test)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_early_stopping_restores_best(tiny_static_model, topic_data):
    (X, y), _ = topic_data
    y = [label if i % 4 else "food" for i, label in enumerate(y)]  # label noise: the network overfits, then stops
    clf = _quick(tiny_static_model, max_epochs=40, early_stopping_patience=2, learning_rate=5e-2).fit(X, y)
    history = clf.history_
    keys = [(acc, -loss) for acc, loss in zip(history["val_accuracy"], history["val_loss"])]
    assert clf.best_epoch_ == int(np.argmax([k == max(keys) for k in keys])) + 1
    assert clf.n_epochs_ < 40 and history["stopped_early"]
    # The restored network scores exactly what the best epoch scored on the validation split.
    from distill.classifier.data import encode_targets, validation_split

    _, val_rows = validation_split(encode_targets(y, len(y)), clf.validation_fraction, clf.random_state)
    val_acc = np.mean(clf.predict([X[i] for i in val_rows]) == np.array(y)[val_rows])
    assert val_acc == pytest.approx(history["val_accuracy"][clf.best_epoch_ - 1])


def test_freeze_embeddings_and_fine_tune(tiny_static_model, topic_data):
    (X, y), _ = topic_data
    table = tiny_static_model.embedding_matrix()
    frozen = _quick(tiny_static_model, max_epochs=3, freeze_embeddings=True).fit(X, y)
    tuned = _quick(tiny_static_model, max_epochs=3).fit(X, y)
    assert np.array_equal(frozen.network_.export()[0], table)
    assert not np.array_equal(tuned.network_.export()[0], table)
    assert np.array_equal(tiny_static_model.embedding_matrix(), table)  # the input model is untouched


def test_class_weight(tiny_static_model, topic_data):
    """The weights are sklearn's 'balanced' formula and reach the loss: down-weighting the most frequent class
    ('balanced' here: food has 37 of 103 texts) makes the model predict it less, weighting it up (x3) more."""
    from sklearn.utils.class_weight import compute_class_weight

    from distill.classifier.data import check_class_weight, encode_targets

    (X, y), (X_test, _) = topic_data
    X, y = X[:100] + X[100:103], y[:100] + ["food"] * 3
    targets = encode_targets(y, len(y))
    np.testing.assert_allclose(check_class_weight("balanced", targets),
                               compute_class_weight("balanced", classes=targets.classes, y=np.asarray(y)), rtol=1e-6)
    assert check_class_weight({"food": 3.0}, targets).tolist() == [3.0, 1.0, 1.0]

    def food_predictions(class_weight) -> int:
        clf = _quick(tiny_static_model, max_epochs=2, class_weight=class_weight).fit(X, y)
        return int(np.sum(clf.predict(X_test) == "food"))

    # measured: 15 (balanced) < 24 (unweighted) < 60 (food x3) of 60 test texts
    assert food_predictions("balanced") < food_predictions(None) < food_predictions({"food": 3.0})
    with pytest.raises(ValueError, match="not in y"):
        _quick(tiny_static_model, class_weight={"drinks": 2.0}).fit(X, y)


# ---------------------------------------------------------------- sample weights
@pytest.mark.parametrize(("weights", "error", "problem"), [
    (np.ones(29), ValueError, "sample_weight has 29 values but X has 30 texts"),
    ([1.0] * 29 + [-0.5], ValueError, "sample_weight must be non-negative; item 29"),
    ([1.0] * 29 + [float("nan")], ValueError, "sample_weight must be finite; item 29"),
    ([float("inf")] * 30, ValueError, "sample_weight must be finite; item 0"),
    (np.zeros(30), ValueError, "sample_weight is zero for every text"),
    (np.ones((30, 1)), ValueError, "sample_weight must be a 1-D sequence"),
    (2.0, ValueError, "sample_weight must be a 1-D sequence"),
    (["1"] * 30, TypeError, "sample_weight must hold numbers"),
    ([True] * 30, TypeError, "sample_weight must hold numbers"),
])
def test_bad_sample_weight_is_refused(tiny_static_model, topic_data, weights, error, problem):
    (X, y), _ = topic_data
    clf = _quick(tiny_static_model, max_epochs=1)
    with pytest.raises(error, match=problem):
        clf.fit(X[:30], y[:30], sample_weight=weights)
    assert not hasattr(clf, "classes_")


def _mislabeled(X, y, n_bad: int = 45):
    """Texts with a block of ``n_bad`` wrongly labeled copies in front (each text labeled as the next topic)."""
    names = sorted(TOPICS)
    bad_y = [names[(names.index(label) + 1) % 3] for label in y[:n_bad]]
    return X[:n_bad] + X, bad_y + y


@pytest.mark.parametrize("multilabel", [False, True])
def test_zero_sample_weight_is_the_same_model_as_without_those_texts(tiny_static_model, topic_data, multilabel):
    (X, y), (X_test, _) = topic_data
    weights = np.random.default_rng(3).uniform(0.5, 2.0, size=len(X))  # not equal: the weighted loss runs
    X_all, y_all = _mislabeled(X, y)
    w_all = np.concatenate([np.zeros(len(X_all) - len(X)), weights])
    if multilabel:
        y, y_all = _multilabel(X, y), _multilabel(X_all, y_all)
    clean = _quick(tiny_static_model, max_epochs=8).fit(X, y, sample_weight=weights)
    zeroed = _quick(tiny_static_model, max_epochs=8).fit(X_all, y_all, sample_weight=w_all)
    noisy = _quick(tiny_static_model, max_epochs=8).fit(X_all, y_all, sample_weight=np.r_[w_all[w_all == 0] + 1,
                                                                                          weights])
    assert zeroed.classes_.tolist() == clean.classes_.tolist()
    np.testing.assert_array_equal(zeroed.predict_proba(X_test), clean.predict_proba(X_test))
    assert list(zeroed.predict(X_test)) == list(clean.predict(X_test))  # labels, or label tuples
    assert zeroed.history_ == clean.history_
    assert not np.array_equal(noisy.predict_proba(X_test), clean.predict_proba(X_test))  # the block does matter


def test_equal_sample_weights_are_no_weights(tiny_static_model, topic_data):
    (X, y), (X_test, _) = topic_data
    plain = _quick(tiny_static_model, max_epochs=5).fit(X, y)
    for weights in (np.full(len(X), 2.5), [1] * len(X)):
        weighted = _quick(tiny_static_model, max_epochs=5).fit(X, y, sample_weight=weights)
        assert np.array_equal(weighted.predict(X_test), plain.predict(X_test))
        np.testing.assert_array_equal(weighted.predict_proba(X_test), plain.predict_proba(X_test))


@pytest.mark.parametrize("multilabel", [False, True])
@pytest.mark.parametrize("class_weights", [None, [0.5, 2.0, 1.0]])
def test_the_weighted_loss_is_a_weighted_mean_of_the_unweighted_one(multilabel, class_weights):
    import torch

    from distill.classifier.training import make_loss, weighted_loss

    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(7, 3)).astype(np.float32))
    target = (torch.from_numpy((rng.random((7, 3)) < 0.4).astype(np.float32)) if multilabel
              else torch.from_numpy(rng.integers(0, 3, size=7)))
    cw = None if class_weights is None else np.asarray(class_weights, dtype=np.float32)
    plain = float(make_loss(multilabel, cw)(logits, target))
    for scale in (1.0, 3.0):  # equal weights of any size: the unweighted loss
        weight = torch.full((7,), scale)
        assert float(weighted_loss(logits, target, weight, multilabel=multilabel, class_weights=cw)) == (
            pytest.approx(plain, rel=1e-6))
    # integer weights: the loss of the texts repeated that often
    counts = np.array([1, 2, 3, 1, 1, 2, 1])
    rows = torch.from_numpy(np.repeat(np.arange(7), counts))
    repeated = float(make_loss(multilabel, cw)(logits[rows], target[rows]))
    weighted = float(weighted_loss(logits, target, torch.from_numpy(counts.astype(np.float32)),
                                   multilabel=multilabel, class_weights=cw))
    assert weighted == pytest.approx(repeated, rel=1e-6)


def test_sample_weight_reaches_training_and_early_stopping(tiny_static_model, topic_data):
    """Up-weighting one class makes the model predict it more; the validation accuracy that picks the kept epoch is
    the weighted one."""
    from distill.classifier.data import encode_targets, validation_split

    (X, y), (X_test, _) = topic_data
    X, y = X[:100], y[:100]
    food = np.array([label == "food" for label in y])

    def food_predictions(weights) -> int:
        clf = _quick(tiny_static_model, max_epochs=2).fit(X, y, sample_weight=weights)
        return int(np.sum(clf.predict(X_test) == "food"))

    assert food_predictions(np.where(food, 0.2, 1.0)) < food_predictions(None) < food_predictions(
        np.where(food, 5.0, 1.0))

    weights = np.random.default_rng(5).uniform(0.1, 3.0, size=len(X))
    noisy_y = [label if i % 4 else "food" for i, label in enumerate(y)]
    clf = _quick(tiny_static_model, max_epochs=6, early_stopping_patience=None).fit(X, noisy_y, sample_weight=weights)
    _, val_rows = validation_split(encode_targets(noisy_y, len(y)), clf.validation_fraction, clf.random_state)
    right = clf.predict([X[i] for i in val_rows]) == np.array(noisy_y)[val_rows]
    assert clf.history_["val_accuracy"][clf.best_epoch_ - 1] == pytest.approx(
        np.average(right, weights=weights[val_rows]))
    assert np.average(right, weights=weights[val_rows]) != pytest.approx(right.mean())  # the weights do count


def test_pickle_and_empty_input(fitted, topic_data):
    import pickle

    _, (X_test, _) = topic_data
    restored = pickle.loads(pickle.dumps(fitted))
    assert np.array_equal(restored.predict_proba(X_test), fitted.predict_proba(X_test))
    assert fitted.predict([]).shape == (0,) and fitted.predict_proba([]).shape == (0, 3)
    assert fitted.to_pipeline().predict([]).shape == (0,)


def test_texts_without_known_tokens_give_finite_output(fitted):
    proba = fitted.predict_proba(["§§§ ¤¤", "zzzz qqqq", "ball"])
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0)


# ---------------------------------------------------------------- multi-label
def _multilabel(X, y):
    sets = []
    for text, label in zip(X, y):
        labels = [label]
        if "today" in text.split():
            labels.append("news")
        sets.append(labels)
    return sets


def test_multilabel_label_lists(tiny_static_model, topic_data, tmp_path):
    (X, y), (X_test, y_test) = topic_data
    clf = _quick(tiny_static_model, max_epochs=40).fit(X, _multilabel(X, y))
    assert clf.multilabel_ and clf.classes_.tolist() == ["food", "news", "sport", "tech"]
    predicted = clf.predict(X_test)
    assert isinstance(predicted, list) and all(isinstance(p, tuple) for p in predicted)
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 4) and ((proba >= 0) & (proba <= 1)).all()
    assert clf.score(X_test, _multilabel(X_test, y_test)) > 0.6
    pipeline = StaticPipeline.from_pretrained(clf.save_pretrained(tmp_path / "ml"))
    assert pipeline.predict(X_test) == predicted
    np.testing.assert_allclose(pipeline.predict_proba(X_test), proba, atol=1e-5)


def test_multilabel_indicator_matrix(tiny_static_model, topic_data, tmp_path):
    (X, y), (X_test, y_test) = topic_data
    names = ["food", "sport", "tech"]
    Y = np.array([[int(label == n) for n in names] for label in y])
    clf = _quick(tiny_static_model, max_epochs=20, class_weight="balanced").fit(X, Y)
    assert clf.classes_.tolist() == [0, 1, 2]
    predicted = clf.predict(X_test)
    assert predicted.shape == (len(X_test), 3) and set(np.unique(predicted)) <= {0, 1}
    Y_test = np.array([[int(label == n) for n in names] for label in y_test])
    assert clf.score(X_test, Y_test) > 0.8
    pipeline = StaticPipeline.from_pretrained(clf.save_pretrained(tmp_path / "ind"))
    assert np.array_equal(pipeline.predict(X_test), predicted)


# ---------------------------------------------------------------- numpy pipeline
def test_pipeline_matches_torch_model(fitted, topic_data, tmp_path):
    _, (X_test, _) = topic_data
    X_test = X_test + ["", "§§§", "ball ball ball goal"]
    folder = fitted.save_pretrained(tmp_path / "pipe")
    names = sorted(p.name for p in folder.iterdir())
    assert HEAD_FILE in names and HEAD_CONFIG_FILE in names and "model.safetensors" in names
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".pt", ".bin"))]
    config = json.loads((folder / HEAD_CONFIG_FILE).read_text())
    assert config["labels"] == ["food", "sport", "tech"] and config["multilabel"] is False
    assert config["layers"] == [[16, 32], [32, 3]] and config["activation"] == "relu" and config["normalize"] is True

    pipeline = StaticPipeline.from_pretrained(folder)
    assert np.array_equal(pipeline.predict(X_test), fitted.predict(X_test))
    np.testing.assert_allclose(pipeline.predict_proba(X_test), fitted.predict_proba(X_test), atol=1e-5)
    in_memory = fitted.to_pipeline()
    assert np.array_equal(in_memory.predict(X_test), fitted.predict(X_test))
    # The folder is a plain static model too: its vectors are exactly what the head sees.
    static = StaticModel.from_pretrained(folder)
    np.testing.assert_allclose(static.encode(X_test), pipeline.features(X_test), atol=1e-6)
    # the static model's rules for texts, and one text is not a batch: a str, or a 0-d array of one, is refused
    for one in (X_test[0], np.array(X_test[0])):
        with pytest.raises(TypeError, match="not a single string"):
            pipeline.predict(one)
    with pytest.raises(TypeError, match="pass a list"):
        pipeline.predict(set(X_test))
    assert np.array_equal(pipeline.predict(iter(X_test)), fitted.predict(X_test))  # any iterable of str


def test_pipeline_pools_as_the_network_did_when_the_base_model_uses_contrast(tiny_static_model, topic_data, tmp_path):
    (X, y), (X_test, _) = topic_data
    base = StaticModel(tiny_static_model.embeddings, tiny_static_model.tokenizer, weights=tiny_static_model.weights,
                       config={"normalize": True}, contrast=1.5)
    clf = _quick(base, max_epochs=5).fit(X, y)
    folder = clf.save_pretrained(tmp_path / "pipe")
    pipeline = StaticPipeline.from_pretrained(folder)
    assert pipeline.model.contrast == 0.0  # the network averages with a plain mean (EmbeddingBag)
    np.testing.assert_allclose(pipeline.predict_proba(X_test), clf.predict_proba(X_test), atol=1e-5)


def test_pipeline_runs_without_torch(fitted, topic_data, tmp_path):
    _, (X_test, _) = topic_data
    folder = fitted.save_pretrained(tmp_path / "pipe")
    script = (
        "import json, sys\n"
        "from static_model.pipeline import StaticPipeline\n"
        f"p = StaticPipeline.from_pretrained({str(folder)!r})\n"
        f"texts = json.loads({json.dumps(json.dumps(X_test))})\n"
        "out = {'pred': p.predict(texts).tolist(), 'proba': p.predict_proba(texts).tolist(),\n"
        "       'modules': sorted(m for m in ('torch', 'sklearn', 'distill', 'transformers') if m in sys.modules)}\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["modules"] == []
    assert out["pred"] == fitted.predict(X_test).tolist()
    np.testing.assert_allclose(out["proba"], fitted.predict_proba(X_test), atol=1e-5)


def test_pipeline_save_is_atomic(fitted, topic_data, tmp_path, monkeypatch):
    _, (X_test, _) = topic_data
    folder = tmp_path / "pipe"
    fitted.save_pretrained(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    pipeline = fitted.to_pipeline()
    import static_model.persistence as module

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(module, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        pipeline.save_pretrained(folder, overwrite=True)
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temp folder left behind
    monkeypatch.undo()
    pipeline.save_pretrained(folder, overwrite=True)  # overwriting a pipeline folder works
    assert np.array_equal(StaticPipeline.from_pretrained(folder).predict(X_test), fitted.predict(X_test))


def test_pipeline_rejects_plain_static_folder(tiny_static_folder):
    with pytest.raises(FileNotFoundError, match="head_config.json"):
        StaticPipeline.from_pretrained(tiny_static_folder)


# ---------------------------------------------------------------- bad input
def test_bad_input_errors(tiny_static_model, topic_data):
    (X, y), _ = topic_data
    clf = _quick(tiny_static_model, max_epochs=1)
    with pytest.raises(ValueError, match="different lengths"):
        clf.fit(X, y[:-1])
    with pytest.raises(ValueError, match="single class"):
        clf.fit(X[:10], ["sport"] * 10)
    with pytest.raises(ValueError, match="empty"):
        clf.fit(X[:9] + ["   "], y[:10])
    with pytest.raises(ValueError, match="zero texts"):
        clf.fit([], [])
    with pytest.raises(TypeError, match="mixes label types"):
        clf.fit(X[:4], ["a", 1, "b", 2])
    with pytest.raises(TypeError, match="mixes single labels and label lists"):
        clf.fit(X[:3], ["a", ["b"], "c"])
    with pytest.raises(TypeError, match="single str"):
        clf.fit("one text", ["a"])
    with pytest.raises(TypeError, match="only strings"):
        clf.fit(X[:2] + [None], y[:3])
    with pytest.raises(ValueError, match="only 0 and 1"):
        clf.fit(X[:3], np.array([[0, 2], [1, 0], [0, 1]]))
    with pytest.raises(ValueError, match="needs a static model"):
        StaticModelClassifier().fit(X, y)
    with pytest.raises(ValueError, match="hidden_dim"):
        _quick(tiny_static_model, hidden_dim=0).fit(X, y)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        clf.predict(X[:2])
    with pytest.raises(NotFittedError, match="not fitted yet"):
        clf.to_pipeline()


@pytest.mark.parametrize(("name", "value"), [("learning_rate", float("inf")), ("learning_rate", float("nan")),
                                             ("learning_rate", "fast"), ("weight_decay", float("inf")),
                                             ("weight_decay", True)])
def test_a_non_finite_rate_is_refused_not_trained_into_nan_weights(tiny_static_model, topic_data, name, value):
    """learning_rate=inf once trained a network of NaN weights whose every probability was NaN, silently."""
    (X, y), _ = topic_data
    with pytest.raises(ValueError, match=rf"{name} must be a finite number"):
        _quick(tiny_static_model, max_epochs=1, **{name: value}).fit(X[:30], y[:30])


# ---------------------------------------------------------------- benchmark command
def test_classify_benchmark_smoke(tiny_static_folder, topic_data, tmp_path):
    from benchmarks.__main__ import main

    (X, y), (X_test, y_test) = topic_data
    folder = tmp_path / "data" / "classification" / "sst2"
    folder.mkdir(parents=True)
    names = sorted(set(y))
    for split, texts, labels in (("train", X, y), ("test", X_test, y_test)):
        rows = [json.dumps({"text": t, "label": names.index(v), "label_text": v}) for t, v in zip(texts, labels)]
        (folder / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    out = tmp_path / "classify.md"
    assert main(["classify", "--model", str(tiny_static_folder), "--data", str(tmp_path / "data"), "--datasets", "sst2",
                 "--methods", "tfidf", "static-lr", "finetune", "--train-sizes", "60", "full", "--speed-texts", "200",
                 "--out", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    text = out.read_text()
    assert "| SST-2 | 60 |" in text and "| SST-2 | 150 |" in text and "static fine-tune" in text
    rows = json.loads((tmp_path / "classify.json").read_text())  # the report's JSON lands beside it
    assert sorted((r["train_size"], r["method"]) for r in rows) == sorted(
        (size, method) for size in ("60", "full") for method in ("tfidf", "static-lr", "finetune"))
