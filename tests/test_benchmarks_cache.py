"""The embedding cache's keys: an ``st:`` model is keyed by its content (the teacher fingerprint distill uses, or a
hash of the loaded model), never by its name, so a changed model never reads another's cached vectors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from helpers.teachers import make_wordpiece_teacher

from benchmarks.quality.encoders import CachedEncoder, SentenceTransformerEncoder, TeacherEncoder, st_fingerprint

TEXTS = ["the cat sat on the mat", "a dog is playing in the park", "hello world"]


def test_st_models_with_one_name_and_other_weights_get_other_keys(tmp_path):
    a = make_wordpiece_teacher(tmp_path / "a" / "tiny", seed=0)
    b = make_wordpiece_teacher(tmp_path / "b" / "tiny", seed=1)  # same folder name, other weights
    enc_a, enc_b = SentenceTransformerEncoder(str(a)), SentenceTransformerEncoder(str(b))
    assert enc_a.name == enc_b.name == "tiny"
    assert enc_a.fingerprint != enc_b.fingerprint
    assert SentenceTransformerEncoder(str(a)).fingerprint == enc_a.fingerprint  # the same folder twice
    copy = shutil.copytree(a, tmp_path / "elsewhere" / "renamed")
    assert SentenceTransformerEncoder(str(copy)).fingerprint == enc_a.fingerprint  # content, not the path
    # distill reads these folders whole: the key is the teacher fingerprint, under its own prefix
    teacher_fp = TeacherEncoder(str(a)).fingerprint
    assert enc_a.fingerprint == "st-" + teacher_fp.removeprefix("teacher-") and teacher_fp != enc_a.fingerprint


def test_a_changed_st_model_at_one_path_does_not_read_the_old_vectors(tmp_path):
    folder = tmp_path / "models" / "tiny"
    make_wordpiece_teacher(folder, seed=0)
    cache = tmp_path / "cache"
    old = CachedEncoder(SentenceTransformerEncoder(str(folder)), cache, progress=False).encode(TEXTS)
    shutil.rmtree(folder)
    make_wordpiece_teacher(folder, seed=1)  # replaced in place: same path, same name
    fresh = SentenceTransformerEncoder(str(folder))
    cached = CachedEncoder(fresh, cache, progress=False).encode(TEXTS)
    np.testing.assert_allclose(cached, fresh.encode(TEXTS), atol=1e-6)
    assert not np.allclose(cached, old, atol=1e-3)
    assert len(list(cache.iterdir())) == 2  # one cache folder per model content


def _dense_model(base: Path, out: Path, seed: int) -> Path:
    """A sentence-transformers folder with a Dense module (which distill does not read)."""
    import torch
    from sentence_transformers import SentenceTransformer, models

    transformer = models.Transformer(str(base))
    torch.manual_seed(seed)
    dense = models.Dense(32, 8)
    SentenceTransformer(modules=[transformer, models.Pooling(32), dense], device="cpu").save(str(out))
    return out


def test_st_models_distill_cannot_read_are_keyed_by_their_loaded_content(tmp_path):
    base = make_wordpiece_teacher(tmp_path / "base", seed=0)
    a = _dense_model(base, tmp_path / "a" / "dense", seed=0)
    b = _dense_model(base, tmp_path / "b" / "dense", seed=1)  # only the Dense layer differs
    enc_a, enc_b = SentenceTransformerEncoder(str(a)), SentenceTransformerEncoder(str(b))
    assert enc_a.fingerprint != enc_b.fingerprint
    assert SentenceTransformerEncoder(str(a)).fingerprint == enc_a.fingerprint
    assert st_fingerprint(tmp_path / "not-a-folder", enc_a.model) == enc_a.fingerprint.removeprefix("st-")
