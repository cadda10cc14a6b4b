"""Package datasets (benchmarks.quality.data.PackageSource): LP50 read from a tiny fake ``gensim`` distribution
laid out like the real wheel (found through importlib.metadata, never imported), and the unavailable path."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers.benchmark_data import hide_distribution

from benchmarks.quality import data, metrics, tasks
from benchmarks.quality.encoders import FunctionEncoder
from benchmarks.studies import protocol

DOCS = ["First document about the budget.", "Second one costs \u00a3400 million.", "Third: a storm.", "Fourth."]
# Upper triangle as gensim ships it: the diagonal 1, the lower triangle 0.
MATRIX = np.array([[1.0, 0.2, 0.4, 0.6],
                   [0.0, 1.0, 0.8, 0.3],
                   [0.0, 0.0, 1.0, 0.5],
                   [0.0, 0.0, 0.0, 1.0]])
PAIRS = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]  # row order above the diagonal


def write_matrix(path: Path, m: np.ndarray) -> None:
    path.write_text("".join("\t".join(f"{v:g}" for v in row) + "\n" for row in m))


def fake_gensim(site: Path, docs: list[str] = DOCS, matrix: np.ndarray = MATRIX) -> Path:
    """``site`` with a metadata-only ``gensim`` distribution holding LP50's two files (Latin-1, no final newline,
    as in the wheel); returns the test-data folder."""
    info = site / "gensim-4.4.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gensim\nVersion: 4.4.0\n")
    folder = site / "gensim" / "test" / "test_data"
    folder.mkdir(parents=True)
    (folder / "lee.cor").write_bytes("\n".join(docs).encode("latin-1"))
    write_matrix(folder / "similarities0-1.txt", matrix)
    return folder


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))  # found before any real gensim
    return site


def test_lp50_is_read_from_the_distribution_files(site, tmp_path):
    fake_gensim(site)
    specs = data.select(tmp_path, names=["LP50"])
    assert [(s.task, s.split, s.source) for s in specs] == [("sts", "all", data.PackageSource("gensim", "4.4.0"))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (lp50,) = data.load_available(specs, tmp_path / "no-data-folder-needed")
    assert isinstance(lp50, data.STSData) and lp50.name == "LP50"
    assert lp50.sentences1 == [DOCS[i] for i, _ in PAIRS] and lp50.sentences2 == [DOCS[j] for _, j in PAIRS]
    assert lp50.scores.tolist() == [MATRIX[i, j] for i, j in PAIRS]  # upper triangle, diagonal left out
    assert "\u00a3400" in lp50.sentences1[3]  # Latin-1 decoded


def test_a_symmetric_matrix_reads_the_same_and_a_bad_one_is_named(tmp_path):
    docs, mat = tmp_path / "docs.txt", tmp_path / "m.txt"
    docs.write_text("\n".join(DOCS) + "\n\n")  # trailing blank lines are not documents
    sym = np.triu(MATRIX, 1) + np.triu(MATRIX, 1).T + np.eye(4)
    write_matrix(mat, sym)
    got = data.load_document_similarity(docs, mat, "x")
    assert got.scores.tolist() == [MATRIX[i, j] for i, j in PAIRS] and len(got.sentences1) == 6
    bad = sym.copy()
    bad[3, 0] = 0.9  # lower triangle neither zero nor the mirror of the upper one
    write_matrix(mat, bad)
    with pytest.raises(ValueError, match=r"m\.txt: neither upper-triangular .* nor symmetric"):
        data.load_document_similarity(docs, mat, "x")
    write_matrix(mat, MATRIX[:3, :3])
    with pytest.raises(ValueError, match=r"a 4 x 4 matrix expected .* got 3 x 3"):
        data.load_document_similarity(docs, mat, "x")
    mat.write_text("1 0.5 x\n")
    with pytest.raises(ValueError, match="not a matrix of numbers"):
        data.load_document_similarity(docs, mat, "x")
    docs.write_text("a\n\nb\n")
    with pytest.raises(ValueError, match="line 2 is blank"):
        data.load_document_similarity(docs, mat, "x")


def test_without_the_package_the_dataset_is_skipped_naming_the_install_command(tmp_path, monkeypatch):
    hide_distribution(monkeypatch, "gensim")
    with pytest.warns(UserWarning, match=r"skipping sts/LP50: PackageMissingError: gensim is not installed; "
                                         r"pip install --no-deps gensim==4\.4\.0"):
        assert data.load_available(data.select(tmp_path, names=["LP50"]), tmp_path) == []
    missing = data.PackageSource("static-embeddings-no-such-distribution", "1.0")
    with pytest.raises(data.PackageMissingError, match="pip install --no-deps static-embeddings-no-such"):
        data.locate_package_path(missing, "x")


def test_an_installed_release_without_the_files_is_named(site, tmp_path):
    fake_gensim(site)
    (site / "gensim" / "test" / "test_data" / "lee.cor").unlink()
    with pytest.warns(UserWarning, match=r"skipping sts/LP50: FileNotFoundError: .*lee\.cor"):
        assert data.load_available(data.select(tmp_path, names=["LP50"]), tmp_path) == []
    with pytest.raises(FileNotFoundError, match=r"not in gensim 4\.4\.0; pip install --no-deps gensim==4\.4\.0"):
        data.locate_package_path(data.PackageSource("gensim", "4.4.0"), "gensim/no/such/folder")


def test_lp50_is_development_data(tmp_path):
    assert "LP50" not in {s.name for s in data.select(tmp_path)}  # not in the default suite
    assert "LP50" in {s.name for s in data.select(tmp_path, names=["dev"])}
    assert protocol.split_of("LP50") == "dev"


def test_sts_pearson_next_to_spearman():
    angles = np.linspace(0.1, 1.4, 8)
    e1 = np.tile([1.0, 0.0], (8, 1))
    e2 = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # cosine of pair k: cos(angles[k])
    gold = np.cos(angles) ** 3  # monotone, not linear
    assert metrics.sts_spearman(e1, e2, gold) == pytest.approx(100.0)
    assert metrics.sts_pearson(e1, e2, gold) == pytest.approx(100.0 * np.corrcoef(np.cos(angles), gold)[0, 1])
    assert metrics.sts_pearson(e1, e2, gold) < 99.9
    assert metrics.sts_pearson(e1, e2, 2 * np.cos(angles) + 1) == pytest.approx(100.0)
    assert metrics.sts_pearson(e1, e1, gold) == 0.0  # constant cosines: no association


def test_sts_results_carry_pearson(site, tmp_path):
    fake_gensim(site)
    (lp50,) = data.load_available(data.select(tmp_path, names=["LP50"]), tmp_path)
    vectors = {d: np.random.default_rng(k).normal(size=8) for k, d in enumerate(DOCS)}
    enc = FunctionEncoder("noise", lambda texts: np.stack([vectors[t] for t in texts]))
    res = tasks.evaluate(enc, lp50)
    emb1, emb2 = enc.encode(lp50.sentences1), enc.encode(lp50.sentences2)
    assert (res.metric, res.n) == ("spearman", 6)
    assert res.score == pytest.approx(metrics.sts_spearman(emb1, emb2, lp50.scores))
    assert res.extra["pearson"] == pytest.approx(metrics.sts_pearson(emb1, emb2, lp50.scores), abs=1e-4)
