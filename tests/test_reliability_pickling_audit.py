"""How models travel between processes: pickle (every table variant, every protocol), copy.copy / copy.deepcopy,
sklearn's clone, spawned process pools, joblib, and a process whose numba cache folder is read-only.

Other files cover: a MiniLM pickle without its cache and a spawn ``Pool`` (test_static_model_concurrency), settings
in a pickle (test_reliability_serving), vocabulary-quantized pickles (test_vocabulary_quantization), a fitted
classifier's pickle and an unfitted clone (test_classifier)."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from helpers.tokenizers import SPECIAL, WORDS, random_texts

from static_model import StaticModel
from static_model.pipeline import StaticPipeline

V = len(SPECIAL) + len(WORDS)
ODD = ["unbelievable playing cafe 日本 😀 [MASK] hello", "", "   ", "dogs (ran) [fast]!"]


def _variants(tokenizer) -> dict[str, StaticModel]:
    rng = np.random.default_rng(0)
    table = rng.normal(size=(V, 32)).astype(np.float32)
    weights = rng.uniform(0.5, 1.5, size=V).astype(np.float32)
    mapping = rng.integers(0, 12, size=V).astype(np.int32)
    plain = StaticModel(table, tokenizer, weights=weights)
    settings = StaticModel(table, tokenizer)
    settings.normalize, settings.max_length, settings.contrast, settings.cache_bytes = True, 3, 0.7, 1 << 15
    no_cache = StaticModel(table, tokenizer, contrast=0.4)
    no_cache.cache_bytes = 0
    clustered = StaticModel(table[:12], tokenizer, weights=weights, token_mapping=mapping, normalize=True)
    return {"plain": plain, "float16": plain.quantize("float16"), "int8": plain.quantize("int8"),
            "settings": settings, "no_cache": no_cache, "clustered": clustered,
            "clustered_int8": clustered.quantize("int8")}


def _stored_bytes(model: StaticModel) -> int:
    return sum(a.nbytes for a in (model.embeddings, model.weights, model.token_mapping) if a is not None)


def _outputs(model: StaticModel, texts: list[str]) -> tuple:
    return (model.encode(texts), [t.tolist() for t in model.tokenize(texts)],
            [s.tolist() for s in model.encode_as_sequence(texts[:50])])


def _settings(model: StaticModel) -> tuple:
    return model.normalize, model.max_length, model.contrast, model.cache_bytes, model.dtype


@pytest.mark.parametrize("name", ["plain", "float16", "int8", "settings", "no_cache", "clustered", "clustered_int8"])
def test_pickle_of_every_variant_keeps_outputs_and_settings_and_carries_no_cache(wordpiece_tokenizer, name):
    model = _variants(wordpiece_tokenizer)[name]
    texts = random_texts(800, seed=1) + ODD
    fresh = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    expected = _outputs(model, texts)  # warms the chunk cache and the row norms (contrast)
    assert model.cache_bytes == 0 or model.cache_info().entries > 0
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        blob = pickle.dumps(model, protocol=protocol)
        assert b"numba" not in blob and b"ChunkCache" not in blob
        clone = pickle.loads(blob)
        assert clone.cache_info().entries == 0 and clone._row_norms is None
        assert _settings(clone) == _settings(model)
        np.testing.assert_array_equal(clone.embeddings, model.embeddings)
        got = _outputs(clone, texts)
        np.testing.assert_array_equal(got[0], expected[0])
        assert got[1:] == expected[1:]
    # the warm cache and the norms add nothing: the stored arrays, the tokenizer's JSON and a little framing
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(blob) == len(fresh)
    assert len(blob) < _stored_bytes(model) + len(model._encoder.tokenizer.to_str()) + 2048


def test_shallow_copy_has_its_own_settings_and_cache_and_shares_the_table(wordpiece_tokenizer):
    """copy.copy shared the text encoder: ``b.cache_bytes = x`` changed ``a.cache_bytes`` and ``b.clear_cache()``
    emptied ``a``'s cache; a clustered model's copy expanded its table again (a second full table in memory)."""
    texts = random_texts(1500, seed=2) + ODD
    for model in (_variants(wordpiece_tokenizer)["plain"], _variants(wordpiece_tokenizer)["clustered"]):
        expected = model.encode(texts)
        entries = model.cache_info().entries
        shallow, deep = copy.copy(model), copy.deepcopy(model)
        assert shallow._embeddings is model._embeddings  # no second table
        assert deep._embeddings is not model._embeddings
        for other in (shallow, deep):
            other.cache_bytes = 1 << 15
            other.clear_cache()
            other.normalize, other.max_length, other.contrast = not model.normalize, 4, 0.5
            assert (model.cache_bytes, model.cache_info().entries) == (64 << 20, entries)
            assert (model.normalize, model.max_length, model.contrast) != (other.normalize, 4, 0.5)
            other.normalize, other.max_length, other.contrast = model.normalize, model.max_length, model.contrast
        # the original and its copies encode at once on threads: same vectors as one model alone
        results: dict[int, list[np.ndarray]] = {}

        def run(i: int, m: StaticModel, out: dict[int, list[np.ndarray]]) -> None:
            out[i] = [m.encode(texts[k::3]) for k in range(3)]

        threads = [threading.Thread(target=run, args=(i, m, results)) for i, m in enumerate((model, shallow, deep) * 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for got in results.values():
            for k in range(3):
                np.testing.assert_array_equal(got[k], expected[k::3])


@pytest.fixture(scope="module")
def fitted():
    pytest.importorskip("torch")
    from test_classifier import _quick, _texts, _tokenizer

    tok = _tokenizer()
    rng = np.random.default_rng(0)
    model = StaticModel(rng.normal(size=(tok.get_vocab_size(), 16)).astype(np.float32), tok, normalize=True)
    (X, y), (X_test, _) = _texts(120, seed=1), _texts(40, seed=2)
    return _quick(model, max_epochs=8).fit(X, y), X_test


def test_pipeline_and_fitted_classifier_pickle_copy_and_clone(fitted):
    from sklearn.base import clone

    clf, X_test = fitted
    pipe = clf.to_pipeline()
    assert isinstance(pipe, StaticPipeline)
    assert "_weights_t" not in pipe.__getstate__()  # derived: rebuilt on load, not pickled twice
    for other in (pickle.loads(pickle.dumps(pipe)), copy.copy(pipe), copy.deepcopy(pipe)):
        np.testing.assert_array_equal(other.predict_proba(X_test), pipe.predict_proba(X_test))
        np.testing.assert_array_equal(other.predict(X_test), pipe.predict(X_test))
    for other in (pickle.loads(pickle.dumps(clf)), copy.deepcopy(clf)):
        np.testing.assert_array_equal(other.predict_proba(X_test), clf.predict_proba(X_test))
        np.testing.assert_array_equal(other.predict(X_test), clf.predict(X_test))
    unfitted = clone(clf)
    assert not hasattr(unfitted, "classes_") and unfitted.get_params()["hidden_dim"] == clf.get_params()["hidden_dim"]
    assert clone(unfitted).get_params().keys() == clf.get_params().keys()


def test_spawned_pool_and_joblib_encode_like_this_process(wordpiece_tokenizer, fitted):
    variants = _variants(wordpiece_tokenizer)
    settings, clustered = variants["settings"], variants["clustered_int8"]
    texts = random_texts(10_000, seed=3) + ODD
    chunks = [texts[i : i + 1000] for i in range(0, len(texts), 1000)]
    clf, X_test = fitted
    pipe = clf.to_pipeline()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(settings.encode, chunks))
        tokens = pool.submit(clustered.tokenize, texts).result()
        proba = pool.submit(pipe.predict_proba, X_test).result()
        clf_proba = pool.submit(clf.predict_proba, X_test).result()
    np.testing.assert_array_equal(np.concatenate(parts), settings.encode(texts))
    assert [t.tolist() for t in tokens] == [t.tolist() for t in clustered.tokenize(texts)]
    np.testing.assert_array_equal(proba, pipe.predict_proba(X_test))
    np.testing.assert_array_equal(clf_proba, clf.predict_proba(X_test))
    joblib = pytest.importorskip("joblib")
    parts = joblib.Parallel(n_jobs=2)(joblib.delayed(clustered.encode)(chunk) for chunk in chunks)
    np.testing.assert_array_equal(np.concatenate(parts), clustered.encode(texts))


_READ_ONLY_CHILD = """
set -e
for d in "$RO" "$PKG"; do mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"; done
exec env NUMBA_CACHE_DIR="$RO" XDG_CACHE_HOME="$RO" HOME="$RO" "$@"
"""
_DECODE = ("import pickle, sys; m, t = pickle.loads(sys.stdin.buffer.read()); "
           "sys.stdout.buffer.write(pickle.dumps((m.encode(t), [x.tolist() for x in m.tokenize(t)])))")


def test_unpickled_where_numba_cannot_write_a_cache(wordpiece_tokenizer, tmp_path):
    """The child sees the numba cache folder, the user's cache folder and the package (its ``__pycache__``) read-only
    (a mount namespace: needs root); the unpickled model compiles its kernels in memory and encodes the same."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare -m (root) to make read-only mounts")
    import static_model

    model = _variants(wordpiece_tokenizer)["clustered_int8"]
    model.contrast = 0.3
    texts = random_texts(300, seed=4) + ODD
    (tmp_path / "ro").mkdir()
    env = {"RO": str(tmp_path / "ro"), "PKG": str(Path(static_model.__file__).parent),
           "PYTHONPATH": str(Path(static_model.__file__).parent.parent), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["unshare", "-m", "sh", "-c", _READ_ONLY_CHILD, "sh", sys.executable, "-c", _DECODE],
                          input=pickle.dumps((model, texts)), capture_output=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"no writable folder" in done.stderr  # it really ran without a cache
    vectors, ids = pickle.loads(done.stdout)
    np.testing.assert_array_equal(vectors, model.encode(texts))
    assert ids == [t.tolist() for t in model.tokenize(texts)]
