"""SIF's common-component removal (distill.common_component): the math, assemble's default, the CLI flag."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.teachers import SENTENCES, make_wordpiece_teacher
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from distill import Teacher, assemble, distill, embed_vocabulary, prepare
from distill.__main__ import main
from distill.common_component import common_direction, remove_component
from distill.frequencies import sif_probabilities
from static_model import StaticModel


@pytest.fixture(scope="module")
def wp_dir(tmp_path_factory):
    return make_wordpiece_teacher(tmp_path_factory.mktemp("wp"))


@pytest.fixture(scope="module")
def shared(wp_dir):
    plan = prepare(Teacher(wp_dir, device="cpu"))
    return plan, embed_vocabulary(plan, show_progress_bar=False)


finite = st.floats(-10, 10, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(rows=arrays(np.float32, (12, 5), elements=finite),
       weights=arrays(np.float64, 12, elements=st.floats(0.01, 1.0)),
       texts=st.lists(st.lists(st.integers(0, 11), min_size=1, max_size=8), min_size=1, max_size=6))
def test_removal_from_rows_is_removal_from_every_mean_of_rows(rows, weights, texts):
    u = common_direction(rows, weights / weights.sum())
    assert np.linalg.norm(u) == pytest.approx(1.0) or not u.any()
    cleaned = remove_component(rows, u).astype(np.float64)
    for ids in texts:
        before = rows[ids].astype(np.float64).mean(0)
        after = cleaned[ids].mean(0)
        # the pooled vector loses exactly its projection on u, whatever the text
        assert np.allclose(after, before - (before @ u) * u, atol=1e-4)
        assert abs(after @ u) < 1e-4


def test_the_weighted_mean_row_is_zero_after_removal_and_a_zero_mean_changes_nothing():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(50, 8)) + 3.0
    p = rng.dirichlet(np.ones(50))
    cleaned = remove_component(rows, common_direction(rows, p))
    assert np.allclose(p @ cleaned, 0.0, atol=1e-12)
    balanced = np.array([[1.0, 2.0], [-1.0, -2.0]])  # a mean of exactly zero: no direction, nothing removed
    assert not common_direction(balanced, np.array([0.5, 0.5])).any()
    assert np.array_equal(remove_component(balanced, np.zeros(2)), balanced)
    with pytest.raises(ValueError, match="one probability a row"):
        common_direction(rows, p[:-1])
    with pytest.raises(ValueError, match="direction has shape"):
        remove_component(rows, np.ones(3))


def test_assemble_removes_the_component_by_default_and_keeps_the_old_recipe_when_asked(shared):
    plan, vectors = shared
    removed = assemble(plan, vectors, pca_dims=8, dtype="float32")
    kept = assemble(plan, vectors, pca_dims=8, dtype="float32", remove_common_component=False)
    p = sif_probabilities(None, plan.kept_ids)
    rows_removed = removed.embedding_matrix()[plan.kept_ids].astype(np.float64)
    rows_kept = kept.embedding_matrix()[plan.kept_ids].astype(np.float64)
    # the mean row under the SIF frequency model is gone, and nothing else changed
    assert np.linalg.norm(p @ rows_removed) < 1e-3 * np.linalg.norm(p @ rows_kept)
    u = common_direction(rows_kept, p)
    assert np.allclose(rows_removed, remove_component(rows_kept, u), rtol=1e-5, atol=1e-7)
    # every encoded text is the old vector minus its projection on u
    a = removed.encode(SENTENCES, normalize=False).astype(np.float64)
    b = kept.encode(SENTENCES, normalize=False).astype(np.float64)
    assert np.allclose(a, b - np.outer(b @ u, u), atol=1e-4)
    assert removed.config["distill"]["parameters"]["remove_common_component"] is True
    assert kept.config["distill"]["parameters"]["remove_common_component"] is False
    with pytest.raises(TypeError, match="remove_common_component"):
        assemble(plan, vectors, pca_dims=8, remove_common_component="yes")  # type: ignore[arg-type]


def test_distill_and_its_cli_take_the_setting(wp_dir, tmp_path, capsys):
    whole = distill(wp_dir, pca_dims=8, remove_common_component=False, show_progress_bar=False)
    assert whole.config["distill"]["parameters"]["remove_common_component"] is False
    with pytest.raises(TypeError, match="remove_common_component"):
        distill(wp_dir, pca_dims=8, remove_common_component=1, show_progress_bar=False)  # type: ignore[arg-type]
    for flags, word, recorded in (([], "removed", True), (["--keep-common-component"], "kept", False)):
        out = tmp_path / word
        assert main([str(wp_dir), "-o", str(out), "--pca-dims", "8", "--quiet", *flags]) == 0
        assert f"common component    {word}" in capsys.readouterr().out
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["distill"]["parameters"]["remove_common_component"] is recorded
    kept = StaticModel.from_pretrained(tmp_path / "kept")
    assert np.array_equal(kept.embedding_matrix(), whole.embedding_matrix())


def test_all_but_the_top_drops_the_leading_principal_axes():
    from distill.common_component import drop_top_components, top_components_rule
    from distill.pca import pca

    assert (top_components_rule(384), top_components_rule(768), top_components_rule(32)) == (4, 8, 0)
    rng = np.random.default_rng(1)
    rows, _ = pca(rng.normal(size=(300, 12)) * np.linspace(6, 1, 12), "auto")
    dropped = drop_top_components(rows, 3)
    assert np.abs(dropped[:, :3]).max() < 1e-5  # rows on their principal axes: the first columns go
    assert np.allclose(dropped[:, 3:], rows[:, 3:], atol=1e-5)
    assert drop_top_components(rows, 0) is rows
    for bad in (-1, 13, 1.5, True):
        with pytest.raises(ValueError, match="count must be"):
            drop_top_components(rows, bad)


def test_assemble_drops_top_components_as_asked(shared, wp_dir, tmp_path, capsys):
    plan, vectors = shared
    none = assemble(plan, vectors, pca_dims=16, dtype="float32", drop_components=0, remove_common_component=False)
    two = assemble(plan, vectors, pca_dims=16, dtype="float32", drop_components=2, remove_common_component=False)
    auto = assemble(plan, vectors, pca_dims=16, dtype="float32", remove_common_component=False)
    kept = plan.kept_ids
    a, b = none.embedding_matrix()[kept], two.embedding_matrix()[kept]
    assert np.abs(b[:, :2]).max() < 1e-6 < np.abs(a[:, :2]).max()  # after SIF scaling, still the first two axes
    assert np.allclose(a[:, 2:], b[:, 2:], atol=1e-6)
    assert two.config["distill"]["parameters"]["dropped_components"] == 2
    assert auto.config["distill"]["parameters"]["dropped_components"] == 0  # round(16 / 100)
    assert np.array_equal(auto.embedding_matrix(), none.embedding_matrix())
    with pytest.raises(ValueError, match="more than the model's 16 dims"):
        assemble(plan, vectors, pca_dims=16, drop_components=17)
    with pytest.raises(ValueError, match="drop_components"):
        assemble(plan, vectors, pca_dims=16, drop_components="all")  # type: ignore[arg-type]
    assert main([str(wp_dir), "-o", str(tmp_path / "m"), "--pca-dims", "8", "--drop-components", "2", "--quiet"]) == 0
    assert "2 dropped" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(wp_dir), "-o", str(tmp_path / "bad"), "--drop-components", "-1"])
