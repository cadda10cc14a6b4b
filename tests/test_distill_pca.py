"""``pca_dims`` as an int, a float in (0, 1) (explained variance), ``"auto"`` (all dims, rotated) or ``None``: the
same components as Model2Vec's own PCA, the fewest components for a fraction, checks that name the argument."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.teachers import make_wordpiece_teacher
from hypothesis import given, settings
from hypothesis import strategies as st

import distill.teacher as teacher_mod
from distill import distill
from distill.__main__ import main
from distill.pca import check_pca_dims, components_for_variance, pca, pca_basis, pca_basis_from_blocks

RAW = dict(sif_coefficient=None, remove_common_component=False, dtype="float32", show_progress_bar=False)


@pytest.fixture(scope="module")
def wp_dir(tmp_path_factory):
    return make_wordpiece_teacher(tmp_path_factory.mktemp("wp"))


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    """Token-like vectors with a decaying spectrum (distinct eigenvalues: the components are well defined)."""
    rng = np.random.default_rng(3)
    return (rng.normal(size=(500, 24)) * np.linspace(3.0, 0.1, 24)) @ np.linalg.qr(rng.normal(size=(24, 24)))[0] + 0.7


@pytest.mark.parametrize("dims", [0.5, 0.9, 0.999, "auto", 5])
def test_pca_matches_model2vec(vectors, dims):
    from model2vec.distill.inference import apply_pca

    ours, ratio = pca(vectors, dims)
    theirs = apply_pca(vectors.copy(), dims)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    if isinstance(dims, float):
        assert ratio >= dims
    if dims == "auto":  # a rotation: every dim kept, dot products of the centred vectors unchanged
        centred = vectors - vectors.mean(0)
        assert ours.shape == vectors.shape and ratio == pytest.approx(1.0)
        np.testing.assert_allclose(ours @ ours.T, centred @ centred.T, atol=1e-3)


@pytest.mark.parametrize("dims", [5, 0.9])
def test_the_basis_from_blocks_of_any_size_has_positive_largest_scores(vectors, dims):
    """The one PCA (``pca_basis`` on an array, ``fit_pca`` on memory-mapped chunks) does not depend on how the
    rows are cut into blocks, and fixes each component's sign: its largest-magnitude score is positive."""
    mean, comps, ratio = pca_basis(vectors, dims, chunk=64)
    assert comps.shape[1] == 5 if dims == 5 else 1 < comps.shape[1] < 24
    uneven = [vectors[:1], vectors[1:333], vectors[333:]]
    again, again_ratio = pca_basis_from_blocks(lambda: iter(uneven), len(vectors), mean, dims)
    np.testing.assert_allclose(again, comps, rtol=0, atol=1e-9)
    assert again_ratio == pytest.approx(ratio, abs=1e-12)
    for data, basis in ((vectors, comps), (2 * mean - vectors, None)):  # the data, and its mirror image
        if basis is None:
            basis, _ = pca_basis_from_blocks(lambda: iter([2 * mean - vectors]), len(vectors), mean, dims)
            np.testing.assert_allclose(basis, -comps, rtol=0, atol=1e-9)  # the same axes, signs flipped
        scores = (data - mean) @ basis
        assert (scores[np.argmax(np.abs(scores), axis=0), np.arange(basis.shape[1])] > 0).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1e3), min_size=1, max_size=40), st.floats(1e-6, 1 - 1e-6))
def test_fewest_components_reaching_the_fraction(values, fraction):
    eigvals = np.sort(np.asarray(values))[::-1]
    k = components_for_variance(eigvals, fraction, n=10_000)
    assert 1 <= k <= eigvals.size
    total = eigvals.sum()
    if total > 0:
        share = np.cumsum(eigvals) / total
        assert share[k - 1] >= fraction or k == eigvals.size  # reached (or every component kept)
        assert k == 1 or share[k - 2] < fraction  # and one fewer does not reach it


def test_distill_with_a_variance_fraction(wp_dir, tmp_path):
    raw = distill(str(wp_dir), pca_dims=None, **RAW)
    kept = raw.config["distill"]["embedded_tokens"]
    rows = raw.embedding_matrix()[np.abs(raw.embedding_matrix()).sum(1) > 0].astype(np.float64)
    assert rows.shape[0] == kept
    eigvals = np.clip(np.linalg.eigvalsh(np.cov(rows, rowvar=False))[::-1], 0, None)
    share = np.cumsum(eigvals) / eigvals.sum()
    expected = int(np.argmax(share >= 0.8)) + 1  # the fewest components explaining 80 %, independently
    model = distill(str(wp_dir), pca_dims=0.8, **RAW)
    info = model.config["distill"]
    assert model.dim == expected == info["pca_components"] < 32
    assert info["explained_variance"] == pytest.approx(share[expected - 1], abs=1e-5)
    assert info["parameters"]["pca_dims"] == model.config["apply_pca"] == 0.8
    model.save_pretrained(tmp_path / "m")
    assert "| PCA dims | 0.8 |" in (tmp_path / "m" / "README.md").read_text()


def test_distill_auto_keeps_every_dim(wp_dir):
    model = distill(str(wp_dir), pca_dims="auto", **RAW)
    assert model.dim == 32 == model.config["distill"]["pca_components"]
    assert model.config["apply_pca"] == "auto"
    assert model.config["distill"]["explained_variance"] == pytest.approx(1.0)


@pytest.fixture
def no_heavy_work(monkeypatch):
    def boom(self):
        raise AssertionError("the teacher weights were loaded before the input was checked")

    monkeypatch.setattr(teacher_mod.Teacher, "model", property(boom))


@pytest.mark.parametrize("bad", [0, -3, 0.0, 1.0, 1.5, 256.0, float("nan"), True, "all", "AUTO", [8]])
def test_bad_pca_dims_named_before_the_teacher_loads(wp_dir, no_heavy_work, bad):
    with pytest.raises(ValueError, match="pca_dims"):
        check_pca_dims(bad)
    with pytest.raises(ValueError, match="pca_dims"):
        distill(str(wp_dir), pca_dims=bad, **RAW)


def test_auto_needs_as_many_tokens_as_dims(tmp_path, no_heavy_work):
    folder = make_wordpiece_teacher(tmp_path / "t")
    tok = json.loads((folder / "tokenizer.json").read_text())
    keep = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "##a", "##b"]
    tok["model"]["vocab"] = {t: i for i, t in enumerate(keep)}
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ValueError, match=r"pca_dims='auto' keeps all 32 dims .* \(5 tokens\)"):
        distill(str(folder), pca_dims="auto", **RAW)


def test_cli_pca_dims(wp_dir, tmp_path, capsys):
    assert main([str(wp_dir), "-o", str(tmp_path / "f"), "--pca-dims", "0.8", "--quiet"]) == 0
    config = json.loads((tmp_path / "f" / "config.json").read_text())
    assert config["apply_pca"] == 0.8 and config["dim"] < 32
    assert main([str(wp_dir), "-o", str(tmp_path / "a"), "--pca-dims", "auto", "--quiet"]) == 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["dim"] == 32
    capsys.readouterr()
    assert main([str(wp_dir), "-o", str(tmp_path / "b"), "--pca-dims", "1.5"]) == 2
    assert "error: --pca-dims: pca_dims=1.5: a float is the fraction of variance" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([str(wp_dir), "-o", str(tmp_path / "c"), "--pca-dims", "many"])
    assert exc.value.code == 2 and "--pca-dims: expected an int (dims), a float in (0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
